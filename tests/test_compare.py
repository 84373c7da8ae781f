"""compare() and diff(): the pure rules, and the laws every report obeys (hypothesis)."""

from __future__ import annotations

import dataclasses
import hashlib
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hashpar.compare import Move, Report, compare, diff
from hashpar.errors import ManifestError
from hashpar.models import (
    Algorithm,
    FileEntry,
    Manifest,
    Problem,
    ProblemKind,
    Snapshot,
    SpecialKind,
)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def entry(content: str, size: int | None = -1) -> FileEntry:
    return FileEntry(len(content) if size == -1 else size, digest(content), 1)


def manifest(snapshot: Snapshot, algorithm: Algorithm = Algorithm.BLAKE3) -> Manifest:
    return Manifest(algorithm, "root", "2026-01-01T00:00:00Z", "hashpar test", snapshot)


BASE = Snapshot(
    files={"a": entry("a"), "d/b": entry("b"), "d/c": entry("c")},
    symlinks={"link": "a"},
    skipped={"fifo": SpecialKind.FIFO},
)


def test_a_snapshot_compared_with_itself_is_all_ok() -> None:
    report = compare(manifest(BASE), BASE)
    assert report == Report(verified=5, ok=5)
    assert not report.differs


def test_an_empty_manifest_verifies_zero_entries() -> None:
    report = compare(manifest(Snapshot()), Snapshot())
    assert (report.verified, report.ok, report.differs) == (0, 0, False)


def test_every_category_in_one_report() -> None:
    unreadable = Problem(ProblemKind.UNREADABLE, "Permission denied")
    observed = Snapshot(
        files={"a": entry("A"), "moved/b": entry("b"), "new": entry("n"), "fifo": entry("f")},
        symlinks={"link": "elsewhere"},
        errors={"d/c": unreadable},
    )
    report = compare(manifest(BASE), observed)
    assert report == Report(
        verified=5,
        ok=0,
        modified=("a", "link"),
        missing=(),
        new=("new",),
        moved=(Move("d/b", "moved/b"),),
        errors={
            "d/c": unreadable,
            "fifo": Problem(ProblemKind.TYPE_CHANGED, "was a fifo, is now a regular file"),
        },
    )


def test_a_size_difference_is_modified_even_with_the_same_digest() -> None:
    observed = dataclasses.replace(BASE, files={**BASE.files, "a": entry("a", size=99)})
    assert compare(manifest(BASE), observed).modified == ("a",)


def test_an_unknown_size_compares_the_digest_only() -> None:
    sums = Snapshot(files={"a": entry("a", size=None), "b": entry("b", size=None)})
    observed = Snapshot(files={"a": entry("a"), "b": entry("B")})
    report = compare(manifest(sums), observed)
    assert (report.ok, report.modified) == (1, ("b",))


def test_an_unreadable_file_is_an_error_never_modified() -> None:
    problem = Problem(ProblemKind.CHANGED, "changed while it was being read")
    observed = Snapshot(files={"d/b": entry("b"), "d/c": entry("c")}, errors={"a": problem})
    report = compare(manifest(Snapshot(files=BASE.files)), observed)
    assert report == Report(verified=3, ok=2, errors={"a": problem})


def test_entries_in_an_unlistable_directory_are_errors_not_missing() -> None:
    problem = Problem(ProblemKind.UNREADABLE, "cannot list directory: Permission denied")
    observed = Snapshot(files={"a": entry("a")}, errors={"d": problem})
    report = compare(manifest(Snapshot(files=BASE.files)), observed)
    inherited = Problem(
        ProblemKind.UNREADABLE, "not checked: d: cannot list directory: Permission denied"
    )
    assert report.missing == ()
    assert report.errors == {"d": problem, "d/b": inherited, "d/c": inherited}
    assert report.verified == report.ok + len(report.errors) - 1


def test_an_unlistable_root_makes_every_entry_an_error() -> None:
    problem = Problem(ProblemKind.UNREADABLE, "cannot list directory: Permission denied")
    report = compare(manifest(BASE), Snapshot(errors={".": problem}))
    assert report.ok == 0 and not report.missing and len(report.errors) == 6
    assert report.errors["d/b"].message.startswith("not checked: the root: ")


@pytest.mark.parametrize(
    ("observed", "message"),
    [
        (Snapshot(symlinks={"a": "x"}), "was a regular file, is now a symbolic link"),
        (Snapshot(skipped={"a": SpecialKind.FIFO}), "was a regular file, is now a fifo"),
        (Snapshot(files={"a/inner": entry("i")}), "was a regular file, is now a directory"),
        (Snapshot(skipped={"a/x": SpecialKind.SOCKET}), "was a regular file, is now a directory"),
    ],
)
def test_a_changed_type_is_an_error(observed: Snapshot, message: str) -> None:
    report = compare(manifest(Snapshot(files={"a": entry("a")})), observed)
    assert report.errors["a"] == Problem(ProblemKind.TYPE_CHANGED, message)
    assert report.modified == report.missing == ()


def test_a_vanished_symlink_is_missing_and_a_retargeted_one_modified() -> None:
    expected = Snapshot(symlinks={"gone": "t", "changed": "t", "same": "t"})
    observed = Snapshot(symlinks={"changed": "u", "same": "t"})
    report = compare(manifest(expected), observed)
    assert (report.ok, report.modified, report.missing) == (1, ("changed",), ("gone",))


def test_entries_the_manifest_records_as_unreadable_are_errors() -> None:
    recorded = Problem(ProblemKind.UNREADABLE, "Permission denied")
    report = compare(manifest(Snapshot(errors={"x": recorded})), Snapshot(files={"x": entry("x")}))
    assert report.new == ()
    assert report.errors == {
        "x": Problem(
            ProblemKind.UNREADABLE,
            "not checked: the manifest records it as unreadable (Permission denied)",
        )
    }


def test_what_lies_below_a_directory_recorded_as_unreadable_is_not_new() -> None:
    """The manifest could not list it; the directory is an error already."""
    recorded = Problem(ProblemKind.UNREADABLE, "cannot list directory: Permission denied")
    found = {"sub/b": entry("b"), "sub/deeper/c": entry("c"), "subway": entry("w")}
    report = compare(manifest(Snapshot(errors={"sub": recorded})), Snapshot(files=found))
    assert report.new == ("subway",)  # a sibling whose name only starts the same: new
    assert list(report.errors) == ["sub"]
    root = compare(manifest(Snapshot(errors={".": recorded})), Snapshot(files=found))
    assert (root.new, list(root.errors)) == ((), ["."])  # the root: nothing is new


def test_below_a_file_recorded_as_unreadable_and_now_a_directory_everything_is_new() -> None:
    """Only a directory's listing error covers what lies below it: a file (or a link loop)
    recorded as unreadable could not have hidden anything from the manifest."""
    problems = {
        "secret": Problem(ProblemKind.UNREADABLE, "Permission denied"),
        "loop": Problem(ProblemKind.LOOP, "symbolic link loop (other)"),
    }
    found = {"secret/planted": entry("p"), "loop/x": entry("x")}
    report = compare(manifest(Snapshot(errors=problems)), Snapshot(files=found))
    assert report.new == ("loop/x", "secret/planted")


def test_new_files_count_unless_ignored() -> None:
    observed = Snapshot(files={**BASE.files, "extra": entry("e")}, symlinks=BASE.symlinks)
    observed = dataclasses.replace(observed, skipped=BASE.skipped)
    assert compare(manifest(BASE), observed).differs
    ignored = compare(manifest(BASE), observed, ignore_new=True)
    assert ignored.new == ("extra",) and not ignored.differs


def test_duplicates_pair_by_base_name_first_then_in_sorted_order() -> None:
    same = entry("same")
    expected = Snapshot(files={"a.txt": same, "z.txt": same, "k/q.txt": same, "y": same})
    observed = Snapshot(files={"m/a.txt": same, "b/z.txt": same, "n/1": same, "n/2": same})
    report = compare(manifest(expected), observed)
    assert report.moved == (
        Move("a.txt", "m/a.txt"),
        Move("k/q.txt", "n/1"),
        Move("y", "n/2"),
        Move("z.txt", "b/z.txt"),
    )
    assert report.missing == report.new == ()


def test_a_move_needs_equal_sizes_when_both_are_known() -> None:
    expected = Snapshot(files={"a": entry("a", size=5)})
    report = compare(manifest(expected), Snapshot(files={"b": entry("a")}))
    assert (report.missing, report.new, report.moved) == (("a",), ("b",), ())


def test_thousands_of_identical_empty_files_pair_quickly() -> None:
    empty = entry("")
    expected = Snapshot(files={f"old/{i:05}": empty for i in range(20000)})
    observed = Snapshot(files={f"new/{i:05}": empty for i in range(20000)})
    report = compare(manifest(expected), observed)
    assert len(report.moved) == 20000 and report.moved[7] == Move("old/00007", "new/00007")


def test_diff_reports_type_changes_as_modified() -> None:
    old = manifest(BASE)
    new = manifest(dataclasses.replace(BASE, files={**BASE.files, "link": entry("l")}, symlinks={}))
    report = diff(old, new)
    assert (report.modified, report.errors) == (("link",), {})


def test_diff_names_unreadable_entries_of_the_new_manifest() -> None:
    problem = Problem(ProblemKind.UNREADABLE, "Permission denied")
    new = manifest(dataclasses.replace(BASE, files={"a": entry("a"), "d/b": entry("b")}))
    new = manifest(dataclasses.replace(new.snapshot, errors={"d/c": problem}))
    report = diff(manifest(BASE), new)
    assert report.errors == {
        "d/c": Problem(ProblemKind.UNREADABLE, "unreadable in the new manifest: Permission denied")
    }


def test_diff_refuses_different_algorithms() -> None:
    with pytest.raises(ManifestError, match="cannot compare a blake3 manifest with a sha256"):
        diff(manifest(BASE), manifest(BASE, Algorithm.SHA256))


# -- the laws ---------------------------------------------------------------------------------

NAMES = st.text(alphabet="abcé\n -", min_size=1, max_size=4)
PATHS = st.lists(st.tuples(st.sampled_from(["", "d/", "d/e/", "f/"]), NAMES), unique=True)


@st.composite
def scenario(draw: st.DrawFn) -> tuple[Snapshot, Snapshot, Report]:
    """A manifest, a tree with random changes injected, and the report those changes imply."""
    paths = sorted({prefix + name for prefix, name in draw(PATHS)} - {"d", "f", "d/e"})
    files = {path: entry(f"content of {path}") for path in paths}
    actions = draw(
        st.lists(
            st.sampled_from(["keep", "modify", "delete", "move", "unreadable", "retype"]),
            min_size=len(paths),
            max_size=len(paths),
        )
    )
    observed: dict[str, FileEntry] = {}
    links: dict[str, str] = {}
    errors: dict[str, Problem] = {}
    modified, missing, moved, type_changed = [], [], [], []
    for path, action in zip(paths, actions, strict=True):
        if action == "keep":
            observed[path] = files[path]
        elif action == "modify":
            observed[path] = entry(f"changed {path}")
            modified.append(path)
        elif action == "delete":
            missing.append(path)
        elif action == "move":
            observed[f"moved/{path}"] = files[path]
            moved.append(Move(path, f"moved/{path}"))
        elif action == "unreadable":
            errors[path] = Problem(ProblemKind.UNREADABLE, "Permission denied")
        else:
            links[path] = "somewhere"
            type_changed.append(path)
    added = draw(st.lists(NAMES, unique=True, max_size=3))
    new = [f"new/{name}" for name in added]
    observed.update({path: entry(f"new {path}") for path in new})
    problem = Problem(ProblemKind.TYPE_CHANGED, "was a regular file, is now a symbolic link")
    all_errors = {**errors, **dict.fromkeys(type_changed, problem)}
    expected = Report(
        verified=len(paths),
        ok=actions.count("keep"),
        modified=tuple(modified),
        missing=tuple(missing),
        new=tuple(sorted(new)),
        moved=tuple(moved),
        errors=dict(sorted(all_errors.items())),
    )
    return Snapshot(files=files), Snapshot(observed, links, {}, errors), expected


@settings(max_examples=200, deadline=None)
@given(scenario())
def test_every_injected_change_is_reported_exactly(case: tuple[Snapshot, Snapshot, Report]) -> None:
    before, after, expected = case
    report = compare(manifest(before), after)
    assert report == expected
    accounted = report.ok + len(report.modified) + len(report.missing) + len(report.moved)
    assert accounted + len(report.errors) == report.verified


@settings(max_examples=100, deadline=None)
@given(scenario())
def test_a_manifest_compared_with_its_own_snapshot_is_clean(
    case: tuple[Snapshot, Snapshot, Report],
) -> None:
    before, after, _ = case
    for snapshot in (before, after):
        report = compare(manifest(snapshot), snapshot)
        assert report == Report(verified=report.verified, ok=report.verified, errors=report.errors)
        assert report.errors == snapshot.errors


@settings(max_examples=100, deadline=None)
@given(scenario())
def test_diff_is_compare_when_nothing_changes_type(case: tuple[Snapshot, Snapshot, Report]) -> None:
    before, after, _ = case
    after = dataclasses.replace(after, symlinks={}, errors={})
    old, new = manifest(before), manifest(after)
    assert diff(old, new).moved == compare(old, after).moved
    assert diff(new, new) == Report(verified=len(after.files), ok=len(after.files))


def test_diff_of_hostile_deep_paths_stays_linear_in_memory() -> None:
    """NEW is hostile: 30,000 components in one 60 kB path. A set of its ancestors (the
    first implementation) peaked near 1 GB; a sorted copy of the keys costs kilobytes."""
    deep = "a/" * 30_000 + "x"
    errors = {"e/" * 5000 + "e": Problem(ProblemKind.UNREADABLE, "x")}
    new = manifest(Snapshot(files={deep: entry("x"), "b/c": entry("c")}, errors=errors))
    old = manifest(
        Snapshot(files={"a": entry("a"), "b": entry("b"), "d/" * 3000 + "x": entry("d")})
    )
    tracemalloc.start()
    try:
        report = diff(old, new)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert report.modified == ("a", "b")  # files in OLD, directories in NEW
    assert report.missing == ("d/" * 3000 + "x",)
    assert peak < 20 << 20
