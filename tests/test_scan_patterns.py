"""--exclude patterns: gitignore semantics from pathspec, matched by RE2 in linear time."""

from __future__ import annotations

import warnings
from pathlib import Path

import pathspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import run_hashpar
from hashpar import make_manifest
from hashpar.scan import compile_patterns

# Patterns that send a backtracking engine into exponential time on a long name.
BACKTRACKING = "*a" * 8 + "*b"


@pytest.mark.timeout(20)  # Python's engine: 7 s for four '*a', far beyond for eight
def test_a_pattern_that_makes_a_backtracking_engine_explode_is_matched_at_once() -> None:
    excluded = compile_patterns((BACKTRACKING,))
    assert excluded is not None
    assert not excluded("a" * 255, False)
    assert excluded("d/" + "a" * 200 + "b", False)
    assert excluded("\udcff" + "a" * 8 + "b", False)  # not UTF-8: Python's engine, still right


@pytest.mark.timeout(60)
def test_a_manifest_whose_excludes_would_backtrack_verifies_at_once(tmp_path: Path) -> None:
    root = tmp_path / "t"
    root.mkdir()
    (root / ("a" * 200)).write_bytes(b"x")
    (root / "keep").write_bytes(b"k")
    made = run_hashpar("make", root, "--exclude", BACKTRACKING, "-o", tmp_path / "m.json")
    assert (made.returncode, made.stderr) == (0, b"")
    verified = run_hashpar("verify", tmp_path / "m.json")
    assert (verified.returncode, verified.stderr) == (0, b"")


def _python_engine(patterns: tuple[str, ...]) -> pathspec.GitIgnoreSpec:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return pathspec.GitIgnoreSpec.from_lines(patterns, backend="simple")


PATTERN = st.text(alphabet="ab*?/![]-.\\", min_size=1, max_size=8)
PATH = st.lists(st.text(alphabet="ab.-[]", min_size=1, max_size=5), min_size=1, max_size=4)


@settings(max_examples=400, deadline=None)
@given(patterns=st.lists(PATTERN, min_size=1, max_size=3), paths=st.lists(PATH, max_size=6))
def test_re2_matches_exactly_what_pythons_engine_matches(
    patterns: list[str], paths: list[list[str]]
) -> None:
    try:
        reference = _python_engine(tuple(patterns))
    except Exception:  # a pattern both refuse: nothing to compare
        return
    excluded = compile_patterns(tuple(patterns))
    assert excluded is not None
    for parts in paths:
        path = "/".join(parts)
        for is_dir in (False, True):
            expected = bool(reference.match_file(path + "/" if is_dir else path))
            assert excluded(path, is_dir) == expected, (patterns, path, is_dir)


def test_make_applies_gitignore_semantics_through_re2(tmp_path: Path) -> None:
    root = tmp_path / "t"
    for name in ("a.tmp", "keep.tmp", "d/x", "d/y.tmp", "e/f/g", "[x]", "b"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")
    patterns = ["*.tmp", "!keep.tmp", "d/", "[[]x]", "e/**/g"]
    assert list(make_manifest(root, excludes=patterns, jobs=1).files) == ["b", "keep.tmp"]
