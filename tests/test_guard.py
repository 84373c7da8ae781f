"""guard.reject_entries_below_leaves: its all-at-once shortcut never passes what the
neighbour-by-neighbour rule refuses, and refuses with the same message."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashpar import FileEntry, ManifestError, Problem, ProblemKind, Snapshot, SpecialKind
from hashpar.guard import _any_below_another, reject_entries_below_leaves
from hashpar.names import key_for

LEAVES = {"files": "the file", "symlinks": "the symlink", "skipped": "the skipped entry"}


def oracle(snapshot: Snapshot) -> str | None:
    """The rule as first written: sort (path with '/' as NUL, section, path), check pairs."""
    sections = {
        "files": snapshot.files,
        "symlinks": snapshot.symlinks,
        "skipped": snapshot.skipped,
        "errors": snapshot.errors,
    }
    order = sorted(
        (path.replace("/", "\0"), section, path)
        for section, entries in sections.items()
        for path in entries
    )
    for (key, section, path), (following, below_section, below) in itertools.pairwise(order):
        if section in LEAVES and following.startswith(key + "\0"):
            return (
                f"unsafe path in manifest: {below_section}[{json.dumps(key_for(below))}]: "
                f"lies below {LEAVES[section]} {json.dumps(key_for(path))}"
            )
    return None


paths = st.lists(st.sampled_from(["a", "b", "a.b", "a-", "é"]), min_size=1, max_size=3).map(
    "/".join
)


@settings(max_examples=500)
@given(st.lists(st.tuples(paths, st.sampled_from(["files", *LEAVES, "errors"])), max_size=8))
def test_shortcut_agrees_with_the_pairwise_rule(placed: list[tuple[str, str]]) -> None:
    sections: dict[str, dict[str, object]] = {name: {} for name in ("files", *LEAVES, "errors")}
    seen: set[str] = set()
    for path, section in placed:
        if path not in seen:  # a path is in one section only (decoding guarantees it)
            seen.add(path)
            sections[section][path] = None
    snapshot = Snapshot(
        files={p: FileEntry(0, "0" * 64, 0) for p in sections["files"]},
        symlinks={p: "t" for p in sections["symlinks"]},
        skipped={p: SpecialKind.FIFO for p in sections["skipped"]},
        errors={p: Problem(ProblemKind.UNREADABLE, "m") for p in sections["errors"]},
    )
    expected = oracle(snapshot)
    if expected is None:
        reject_entries_below_leaves(snapshot)
    else:
        with pytest.raises(ManifestError) as raised:
            reject_entries_below_leaves(snapshot)
        assert str(raised.value) == expected


@settings(max_examples=1000)
@given(
    st.lists(
        st.lists(st.sampled_from(["a", "a-", "a.", "a0", "ab", "b"]), min_size=1, max_size=3).map(
            "/".join
        ),
        max_size=8,
        unique=True,
    )
)
def test_any_below_another_is_exactly_the_brute_force_answer(found: list[str]) -> None:
    """'-', '.' sort before '/' and '0' after it: the neighbours of a path need not be its
    descendants, the case the bisect exists for."""
    brute = any(d.startswith(p + "/") for p in found for d in found)
    assert _any_below_another(sorted(found)) == brute


def test_first_non_directory_gives_the_same_answer_in_any_order(tmp_path: Path) -> None:
    """Answers are cached per prefix; asking in another order must not change any of them."""
    import os
    import random

    from hashpar.guard import DiskProbe

    root = tmp_path / "t"
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "a" / "f").write_bytes(b"")
    os.symlink("b", root / "a" / "l")
    os.symlink("/", root / "out")
    paths = ["a", "a/b", "a/b/c", "a/b/c/d", "a/f", "a/f/x", "a/l", "a/l/c", "out/x", "z/y/x"]
    fresh = {path: DiskProbe(str(root)).first_non_directory(path) for path in paths}
    assert fresh["a/b/c"] is None and fresh["a/f/x"] == ("a/f", fresh["a/f"][1])  # type: ignore[index]
    assert fresh["a/l/c"][0] == "a/l" and fresh["z/y/x"] == ("z", None)  # type: ignore[index]
    for seed in range(20):
        order = paths[:]
        random.Random(seed).shuffle(order)
        probe = DiskProbe(str(root))
        assert {path: probe.first_non_directory(path) for path in order} == fresh
