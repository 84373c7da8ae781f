"""--exclude patterns: gitignore semantics from pathspec, matched by RE2 in linear time."""

from __future__ import annotations

import dataclasses
import re
import types
import warnings
from pathlib import Path

import pathspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hashpar
from conftest import run_hashpar
from hashpar import make_manifest
from hashpar.scan import _run_by_re2, compile_patterns

# Patterns that send a backtracking engine into exponential time on a long name.
BACKTRACKING = "*a" * 8 + "*b"


@pytest.mark.timeout(20)  # Python's engine: 7 s for four '*a', far beyond for eight
def test_a_pattern_that_makes_a_backtracking_engine_explode_is_matched_at_once() -> None:
    excluded = compile_patterns((BACKTRACKING,))
    assert excluded is not None
    assert not excluded("a" * 255, False)
    assert excluded("d/" + "a" * 200 + "b", False)
    assert excluded("\udcff" + "a" * 8 + "b", False)  # a name that is not UTF-8: RE2 too
    assert not excluded("a" * 255 + "\udcff", False)
    with_a_byte = compile_patterns((BACKTRACKING, "z\udcff"))  # a pattern that is not UTF-8
    assert with_a_byte is not None and not with_a_byte("a" * 255, False)
    assert not excluded("\U000f0080" + "a" * 250, False)  # the mapping's block: RE2 as well


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


NOT_UTF8 = "\udcff"  # the byte 0xff of a name, as os.fsdecode gives it
PATTERN = st.text(alphabet=f"ab*?/![]-.\\: {NOT_UTF8}", min_size=1, max_size=8)
# Not the mapping's block (U+F0080-U+F00FF) in names: with a pattern holding a byte that
# is not UTF-8, a name's real character of that block is taken for the byte (documented).
PATH = st.lists(st.text(alphabet=f"ab.-[]: é😀{NOT_UTF8}", min_size=1, max_size=5), max_size=4)


@settings(max_examples=400, deadline=None)
@given(patterns=st.lists(PATTERN, min_size=1, max_size=3), paths=st.lists(PATH, max_size=6))
def test_re2_matches_exactly_what_pythons_engine_matches(
    patterns: list[str], paths: list[list[str]]
) -> None:
    try:
        excluded = compile_patterns(tuple(patterns))
    except ValueError:  # refused: a bad pattern, or a POSIX class
        return
    assert excluded is not None
    reference = _python_engine(tuple(patterns))
    for parts in paths:
        path = "/".join(parts) or "a"
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


def test_a_posix_class_is_refused_rather_than_misread() -> None:
    """pathspec's expression for one means something else to Python's engine, to RE2 and
    to git: ``[[:alpha:]]*`` matched neither ``abc`` (Python) nor ``1x`` (RE2)."""
    with pytest.raises(ValueError, match=r"^'\[\[:alpha:\]\]\*': POSIX character classes"):
        compile_patterns(("*.tmp", "[[:alpha:]]*"))
    result = run_hashpar("make", ".", "--exclude", "[[:digit:]]")
    assert result.returncode == 2 and b"POSIX character classes" in result.stderr
    assert result.stderr.count(b"\n") == 1  # one line: RE2 printed nothing either


def test_an_expression_re2_does_not_accept_is_refused_rather_than_run_slowly() -> None:
    """pathspec writes none that RE2 refuses today (a backreference stands in for one)."""
    refused = types.SimpleNamespace(pattern="x", regex=re.compile(r"(a)\1"))
    with pytest.raises(ValueError, match=r"^'x': not supported: .* RE2"):
        _run_by_re2(refused)
    assert refused.regex.pattern == r"(a)\1"  # left as it was


@pytest.mark.parametrize(
    "pattern",
    [
        "[][:digit:]*.log",
        "[!][:alpha:]]*",
        "x[[:space:]]",
        "[a-\udcff]",
        "[😀-😍]",
        "[a-\uffff\\]",  # pathspec closes at the first ], even after a backslash
        "[a-\uffff[:]:]",
    ],
)
def test_what_the_mapping_or_pathspec_would_get_wrong_is_refused(pattern: str) -> None:
    with pytest.raises(ValueError, match="not supported"):
        compile_patterns((pattern,))


def test_what_is_not_a_posix_class_is_accepted() -> None:
    """``[:ab:]`` is a plain set to git; an escaped bracket and a comment hold none."""
    excluded = compile_patterns(("[:ab:]", "\\[:x:]", "#[:alpha:] a comment", "\\[[:y:]]"))
    assert excluded is not None and excluded("a", False) and excluded("[:x:]", False)
    assert excluded("[y]", False)  # an escaped bracket, then the plain set [:y:], then ]


def test_a_manifest_with_excludes_a_walk_cannot_match_still_exports(tmp_path: Path) -> None:
    """Such excludes are valid to pathspec (a manifest of an older hashpar may hold them):
    export and diff read it; verify, which would have to match them, names the manifest."""
    root = tmp_path / "t"
    root.mkdir()
    (root / "a").write_bytes(b"a")
    manifest = make_manifest(root, jobs=1)
    old = dataclasses.replace(manifest, excludes=("[[:digit:]]*",))
    (tmp_path / "m.json").write_bytes(hashpar.encode_manifest(old))
    exported = run_hashpar("export", tmp_path / "m.json", "--format", "sums")
    assert (exported.returncode, exported.stderr) == (0, b"")
    verified = run_hashpar("verify", tmp_path / "m.json")
    assert verified.returncode == 2
    assert verified.stderr.decode().startswith(
        f"hashpar: error: {tmp_path / 'm.json'}: excludes: '[[:digit:]]*': POSIX character"
    )


def test_a_pattern_that_is_not_utf8_matches_the_name_it_was_made_from() -> None:
    excluded = compile_patterns((f"skip{NOT_UTF8}", "d/**/x"))
    assert excluded is not None
    assert excluded(f"skip{NOT_UTF8}", False) and excluded(f"d/{NOT_UTF8}/x", False)
    assert not excluded("skip", False) and not excluded(f"skip{NOT_UTF8}x", False)


def test_a_name_in_the_mappings_block_is_matched_exactly_by_patterns_of_text() -> None:
    """Only a pattern holding a byte that is not UTF-8 could mistake such a name's
    character for that byte; any other pattern sees two different characters."""
    names = ["\U000f00ff", "\U000f00ffx", f"{NOT_UTF8}\U000f0080", "a/\U000f0080b"]
    for patterns in (("?",), ("[!a]",), ("*x",), ("a",), ("**/?b", "!a/*")):
        excluded = compile_patterns(patterns)
        assert excluded is not None
        reference = _python_engine(patterns)
        for name in names:
            assert excluded(name, False) == bool(reference.match_file(name)), (patterns, name)
