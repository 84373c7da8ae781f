"""verify_tree on real trees: random changes are reported exactly, with jobs=1 and jobs=2."""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import shutil
import tempfile
import tracemalloc
from pathlib import Path

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hashpar
from conftest import build_tree
from hashpar import Move, Report, Tuning, make_manifest, verify_tree
from hashpar.errors import ManifestError, UsageError
from hashpar.guard import reject_entries_below_leaves
from hashpar.models import FileEntry, Snapshot

NAMES = st.text(alphabet="abé\n", min_size=1, max_size=3).map(lambda n: n + ".f")
ACTIONS = st.sampled_from(["keep", "flip", "truncate", "append", "delete", "rename"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    tree=st.dictionaries(
        st.tuples(st.sampled_from(["", "d/", "d/e/"]), NAMES), st.binary(min_size=1), max_size=6
    ),
    data=st.data(),
)
def test_verify_reports_exactly_the_injected_changes(
    tree: dict[tuple[str, str], bytes], data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        contents = {
            prefix + name: f"{prefix}{name}:".encode() + body
            for (prefix, name), body in tree.items()
        }
        root = build_tree(Path(tmp) / "tree", contents)
        manifest = make_manifest(root, jobs=1)
        modified, missing, moved = [], [], []
        for path in sorted(contents):
            action = data.draw(ACTIONS, label=path)
            full = root / path
            if action == "flip":
                raw = bytearray(full.read_bytes())
                raw[-1] ^= 0x80
                full.write_bytes(bytes(raw))
            elif action == "truncate":
                os.truncate(full, len(contents[path]) - 1)
            elif action == "append":
                with open(full, "ab") as f:
                    f.write(b"+")
            elif action == "delete":
                full.unlink()
                missing.append(path)
            elif action == "rename":
                (root / "renamed").mkdir(exist_ok=True)
                full.rename(root / "renamed" / path.replace("/", "_"))
                moved.append(Move(path, "renamed/" + path.replace("/", "_")))
            if action in ("flip", "truncate", "append"):
                modified.append(path)
        added = data.draw(st.lists(NAMES, unique=True, max_size=2), label="added")
        for name in added:
            (root / f"new-{name}").write_bytes(b"new " + name.encode())
        report = verify_tree(manifest, jobs=1)
        assert report == Report(
            verified=len(contents),
            ok=len(contents) - len(modified) - len(missing) - len(moved),
            modified=tuple(modified),
            missing=tuple(missing),
            new=tuple(sorted(f"new-{name}" for name in added)),
            moved=tuple(moved),
        )


@pytest.mark.timeout(60)
def test_jobs_1_and_a_real_pool_give_the_same_report(tmp_path: Path) -> None:
    root = build_tree(tmp_path / "t", {f"d{i % 5}/{i}": b"file %d\n" % i for i in range(300)})
    manifest = make_manifest(root, jobs=1)
    (root / "d1" / "1").write_bytes(b"changed")
    (root / "d2" / "2").unlink()
    (root / "d3" / "3").rename(root / "moved")
    pool = Tuning(inline_max_files=0)  # never hash in-process: start two workers
    reports = [verify_tree(manifest, jobs=1), verify_tree(manifest, jobs=2, tuning=pool)]
    assert reports[0] == reports[1]
    assert reports[0] == Report(
        verified=300,
        ok=297,
        modified=("d1/1",),
        missing=("d2/2",),
        moved=(Move("d3/3", "moved"),),
    )


def test_the_manifest_file_is_left_out_even_when_it_lists_itself(tmp_path: Path) -> None:
    root = build_tree(tmp_path / "t", {"a": b"a", "m.json": b""})
    manifest = make_manifest(root, jobs=1)
    assert "m.json" in manifest.files
    (root / "m.json").write_bytes(hashpar.encode_manifest(manifest))
    report = verify_tree(manifest, manifest_path=root / "m.json", jobs=1)
    assert report == Report(verified=1, ok=1)


def test_the_manifest_files_place_is_left_out_of_a_copy_checked_with_root(
    tmp_path: Path,
) -> None:
    root = build_tree(tmp_path / "t", {"a": b"a", "sub/m.json": b""})
    manifest = make_manifest(root, jobs=1, skip=[root / "sub/m.json"])
    (root / "sub/m.json").write_bytes(hashpar.encode_manifest(manifest))
    copy = build_tree(tmp_path / "copy", {"a": b"a"})
    shutil.copytree(root / "sub", copy / "sub")
    report = verify_tree(manifest, root=copy, manifest_path=root / "sub/m.json", jobs=1)
    assert report == Report(verified=1, ok=1)
    (copy / "sub/m.json").write_bytes(b"another file at its place")
    changed = verify_tree(manifest, root=copy, manifest_path=root / "sub/m.json", jobs=1)
    assert changed.new == ("sub/m.json",)  # not a copy of the manifest: a new file
    (tmp_path / "m.json").write_bytes(hashpar.encode_manifest(manifest))
    elsewhere = verify_tree(manifest, root=copy, manifest_path=tmp_path / "m.json", jobs=1)
    assert elsewhere.new == ("sub/m.json",)  # a manifest kept outside its tree: no place


def test_only_a_true_copy_of_the_manifest_is_left_out_of_a_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative root resolves against the current directory, which need not be where
    make ran: the place it gives may hold a listed file, which must still be compared."""
    data = build_tree(tmp_path / "data", {"m.json": b"important", "a": b"x"})
    (tmp_path / "out").mkdir()
    monkeypatch.chdir(data)
    manifest = make_manifest(".", jobs=1)  # root "."
    (tmp_path / "out" / "m.json").write_bytes(hashpar.encode_manifest(manifest))
    copy = build_tree(tmp_path / "copy", {"m.json": b"TAMPERED", "a": b"x"})
    monkeypatch.chdir(tmp_path / "out")  # "." is now out/, which holds m.json
    report = verify_tree(manifest, root=copy, manifest_path="m.json", jobs=1)
    assert (report.modified, report.new) == (("m.json",), ())


def test_verify_leaves_the_manifest_as_it_was_unless_told_to_consume_it(tmp_path: Path) -> None:
    root = build_tree(tmp_path / "t", {"a": b"a", "b": b"b", "c": b"c"})
    loaded = hashpar.decode_manifest(hashpar.encode_manifest(make_manifest(root, jobs=1)))
    assert type(loaded.files) is dict  # as load_manifest gives it: no copy is forced
    (root / "b").write_bytes(b"changed")
    before = dict(loaded.files)
    report = verify_tree(loaded, jobs=1)
    assert report == Report(verified=3, ok=2, modified=("b",))
    assert loaded.files == before
    assert verify_tree(loaded, jobs=1, consume=True) == report
    assert loaded.files == {"b": before["b"]}  # what matched was settled out of it


def test_a_single_file_manifest_verifies(tmp_path: Path) -> None:
    build_tree(tmp_path, {"one.txt": b"1", "other": b"2"})
    manifest = make_manifest(tmp_path / "one.txt", jobs=1)
    assert verify_tree(manifest, jobs=1) == Report(verified=1, ok=1)
    (tmp_path / "one.txt").write_bytes(b"changed")
    assert verify_tree(manifest, jobs=1).modified == ("one.txt",)


def test_a_file_replaced_by_an_excluded_directory_is_a_type_change(tmp_path: Path) -> None:
    root = build_tree(tmp_path / "t", {"cache": b"a file", "keep": b"k"})
    manifest = make_manifest(root, jobs=1, excludes=["cache/"])
    (root / "cache").unlink()
    (root / "cache").mkdir()
    report = verify_tree(manifest, jobs=1)
    assert report.missing == ()
    assert str(report.errors["cache"].kind) == "type-changed"


def test_a_symlinked_directory_inside_the_root_is_not_followed(tmp_path: Path) -> None:
    root = build_tree(tmp_path / "t", {"real/x": b"x"})
    manifest = make_manifest(root, jobs=1)
    (root / "real").rename(root / "elsewhere")
    (root / "real").symlink_to("elsewhere")
    report = verify_tree(manifest, jobs=1)
    assert (report.missing, report.new, report.moved) == (
        (),
        ("real",),
        (Move("real/x", "elsewhere/x"),),
    )


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_directory_replaced_by_a_symlink_leading_outside_is_missing_and_new(
    tmp_path: Path, jobs: int
) -> None:
    """Data moved to another disk, a link left in its place: the tree changed, not the
    manifest. What it lists below the link is missing and the link is new, as for a link
    inside the root; the manifest is not refused (it was: exit 2, nothing reported)."""
    root = build_tree(tmp_path / "t", {"data/x": b"x", "y": b"y"})
    build_tree(root / "e", {f"{i}": b"e" for i in range(40)})
    manifest = make_manifest(root, jobs=1)
    (tmp_path / "ext").mkdir()
    (root / "data").rename(tmp_path / "ext" / "data")
    (root / "data").symlink_to(Path("..", "ext", "data"))
    tuning = Tuning(inline_max_files=1, batch_files=4)  # a pool even for this small tree
    report = verify_tree(manifest, jobs=jobs, tuning=tuning)
    assert report == Report(verified=42, ok=41, missing=("data/x",), new=("data",))
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_followed_link_re_pointed_outside_the_root_is_missing_and_new(
    tmp_path: Path, jobs: int
) -> None:
    """With follow_symlinks, a link that now leads outside is not followed: what the
    manifest recorded through it is missing (the same bytes outside are never read)."""
    root = build_tree(tmp_path / "t", {"real/z": b"z", "y": b"y"})
    (root / "link").symlink_to("real")
    manifest = make_manifest(root, jobs=1, follow_symlinks=True)
    assert sorted(manifest.files) == ["link/z", "real/z", "y"]
    build_tree(tmp_path / "ext", {"z": b"z"})
    (root / "link").unlink()
    (root / "link").symlink_to(tmp_path / "ext")
    report = verify_tree(manifest, jobs=jobs)
    assert report == Report(verified=3, ok=2, missing=("link/z",), new=("link",))


def test_a_copy_whose_link_leads_out_of_the_copy_is_checked_as_that_copy(tmp_path: Path) -> None:
    """``root=`` (--root): the root is the copy's. An absolute link copied as it was leads
    into the original, outside the copy, so it is not followed there."""
    root = build_tree(tmp_path / "t", {"real/z": b"z"})
    (root / "link").symlink_to(root / "real")
    manifest = make_manifest(root, jobs=1, follow_symlinks=True)
    copy = tmp_path / "copy"
    shutil.copytree(root, copy, symlinks=True)
    assert verify_tree(manifest, jobs=1) == Report(verified=2, ok=2)
    report = verify_tree(manifest, root=copy, jobs=1)
    assert report == Report(verified=2, ok=1, missing=("link/z",), new=("link",))


@pytest.mark.parametrize("jobs", [1, 2])
def test_the_disk_is_asked_only_about_entries_the_walk_did_not_find(
    tmp_path: Path, jobs: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk is asked only about what is missing once the walk is done: nothing for a
    tree that matches its manifest, only the missing file and its directories otherwise."""
    from hashpar.guard import DiskProbe

    files = {f"d{i % 7}/e{i % 3}/{i}": b"%d" % i for i in range(200)}
    root = build_tree(tmp_path / "t", files)
    manifest = make_manifest(root, jobs=1)
    asked: list[str] = []
    real_mode = DiskProbe._mode

    def mode(self: DiskProbe, path: str) -> int | None:
        asked.append(path)
        return real_mode(self, path)

    monkeypatch.setattr(DiskProbe, "_mode", mode)
    tuning = Tuning(inline_max_files=1, batch_files=16)  # a pool even for this small tree
    assert verify_tree(manifest, jobs=jobs, tuning=tuning).ok == 200
    assert asked == []
    (root / "d3" / "e1" / "10").unlink()
    report = verify_tree(manifest, jobs=jobs, tuning=tuning)
    assert report.missing == ("d3/e1/10",)
    assert sorted(set(asked)) == ["d3", "d3/e1", "d3/e1/10"]


def test_a_missing_root_is_a_usage_error(tmp_path: Path) -> None:
    manifest = make_manifest(build_tree(tmp_path / "t", {"a": b"a"}), jobs=1)
    with pytest.raises(UsageError, match="No such file or directory"):
        verify_tree(manifest, root=tmp_path / "nope")


def test_load_manifest_round_trips_and_names_the_file(tmp_path: Path) -> None:
    manifest = make_manifest(build_tree(tmp_path / "t", {"a": b"a"}), jobs=1)
    path = tmp_path / "m.json"
    path.write_bytes(hashpar.encode_manifest(manifest))
    assert hashpar.load_manifest(str(path)) == manifest
    path.write_bytes(b"{}")
    with pytest.raises(ManifestError, match=r"^.*m\.json: invalid manifest: Object missing"):
        hashpar.load_manifest(str(path))


def test_a_manifest_path_may_be_a_path_object_and_one_named_dash_is_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = make_manifest(build_tree(tmp_path / "t", {"a": b"a"}), jobs=1)
    (tmp_path / "-").write_bytes(hashpar.encode_manifest(manifest))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", None)  # reading stdin instead would fail
    assert hashpar.load_manifest(Path("-")) == manifest
    with hashpar.open_manifest(tmp_path / "-") as opened:
        assert opened.read() == manifest


def test_the_public_names_are_exported() -> None:
    for name in ("verify_tree", "diff_manifests", "load_manifest", "compare", "Report", "Move"):
        assert name in hashpar.__all__ and hasattr(hashpar, name)


def test_any_manifest_object_verifies_even_without_sizes(tmp_path: Path) -> None:
    """As a manifest imported from a sums file: digests only, no sizes or mtimes."""
    root = build_tree(tmp_path / "t", {"a": b"a", "b": b"b", "c": b"c"})
    made = make_manifest(root, jobs=1, algorithm="sha256")
    files = {p: FileEntry(None, e.digest, None) for p, e in made.files.items()}
    manifest = dataclasses.replace(made, snapshot=Snapshot(files=files))
    assert verify_tree(manifest, jobs=1) == Report(verified=3, ok=3)
    (root / "a").write_bytes(b"A")
    (root / "b").rename(root / "b2")
    report = verify_tree(manifest, jobs=1)
    assert (report.modified, report.moved) == (("a",), (Move("b", "b2"),))


def test_the_manifests_excludes_and_symlink_policy_are_used(tmp_path: Path) -> None:
    root = build_tree(tmp_path / "t", {"a": b"a", "real/x": b"x"})
    (root / "link").symlink_to("real")
    manifest = make_manifest(root, jobs=1, excludes=["*.tmp"], follow_symlinks=True)
    assert "link/x" in manifest.files
    (root / "scratch.tmp").write_bytes(b"ignored")
    assert verify_tree(manifest, jobs=1) == Report(verified=3, ok=3)


def test_an_entry_below_a_leaf_is_found_past_siblings_that_sort_between() -> None:
    digest = "0" * 64
    files = {"a": FileEntry(1, digest, 1), "a!": FileEntry(1, digest, 1)}
    files["a/b"] = FileEntry(1, digest, 1)
    with pytest.raises(ManifestError, match=r'files\["a/b"\]: lies below the file "a"$'):
        reject_entries_below_leaves(Snapshot(files=files))
    reject_entries_below_leaves(Snapshot(files={"a!": files["a"], "a/b": files["a"]}))


def test_a_very_deep_manifest_path_costs_linear_memory(tmp_path: Path) -> None:
    """50,000 components (100 kB): one string per ancestor took 12 s and 2.4 GiB."""
    deep = "a/" * 50_000 + "x"
    root = build_tree(tmp_path / "t", {"a/b": b"b"})
    made = make_manifest(root, jobs=1)
    files = {**made.files, deep: FileEntry(1, "0" * 64, 1)}
    manifest = dataclasses.replace(made, snapshot=Snapshot(files=files, symlinks={"l": "x"}))
    tracemalloc.start()
    try:
        report = verify_tree(manifest, jobs=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (report.ok, report.missing) == (1, (deep, "l"))
    assert peak < 20 << 20


def test_settling_matches_during_the_walk_reports_what_comparing_afterwards_does(
    tmp_path: Path,
) -> None:
    """verify_tree drops matching files as they are hashed; the report must not change."""
    root = build_tree(
        tmp_path / "t",
        {f"d{i}/f{j}": f"{i}-{j}".encode() for i in range(3) for j in range(40)}
        | {"a": b"moved", "b": b"edited", "c": b"gone", "d/x": b"now a dir", "e": b"link"},
    )
    manifest = make_manifest(root, jobs=1)
    (root / "a").rename(root / "a2")
    (root / "b").write_bytes(b"edited!")
    (root / "c").unlink()
    (root / "d" / "x").unlink()
    (root / "d" / "x").mkdir()
    (root / "d" / "x" / "inside").write_bytes(b"new")
    (root / "e").unlink()
    (root / "e").symlink_to("a2")
    (root / "d0" / "f0").write_bytes(b"changed")
    whole = hashpar.compare(manifest, hashpar.scan_tree(str(root), algorithm=manifest.algorithm))
    for jobs in (1, 2):
        assert verify_tree(manifest, jobs=jobs) == whole
    assert whole.ok == 119 and whole.verified == 125 and whole.moved == (Move("a", "a2"),)


def test_settled_files_leave_the_snapshot_but_count_as_done(tmp_path: Path) -> None:
    root = build_tree(tmp_path / "t", {f"f{i}": b"x" * i for i in range(10)})
    seen: list[hashpar.Progress] = []
    snapshot = hashpar.scan_tree(
        str(root),
        algorithm=hashpar.Algorithm.SHA256,
        jobs=1,
        on_progress=seen.append,
        settle=lambda paths, entries: [e.size is not None and e.size % 2 == 0 for e in entries],
    )
    assert sorted(snapshot.files) == [f"f{i}" for i in range(1, 10, 2)]
    assert seen[-1].files_done == 10


@pytest.mark.timeout(60)
@pytest.mark.parametrize("jobs", [1, 2])
def test_an_opened_manifest_file_verifies_as_the_loaded_manifest_does(
    tmp_path: Path, jobs: int
) -> None:
    """Given the file opened (entries read alongside the first task), verify reports what
    it reports for the manifest loaded first, and leaves the manifest file itself out."""
    root = build_tree(tmp_path / "t", {f"d{i % 5}/{i}": b"file %d\n" % i for i in range(300)})
    path = root / "m.json"
    path.write_bytes(b"")
    path.write_bytes(hashpar.encode_manifest(make_manifest(root, jobs=1)))  # lists itself
    (root / "d1" / "1").write_bytes(b"changed")
    (root / "d2" / "2").unlink()
    (root / "d3" / "3").rename(root / "moved")
    (root / "new").write_bytes(b"new")
    tuning = Tuning(inline_max_files=0)  # with jobs=2, every task goes to a worker
    loaded = verify_tree(
        hashpar.load_manifest(str(path)), manifest_path=path, jobs=jobs, tuning=tuning
    )
    with hashpar.open_manifest(str(path)) as opened:
        assert opened.header.files == {}  # canonical: only the header is read yet
        report = verify_tree(opened, manifest_path=path, jobs=jobs, tuning=tuning)
    assert (
        report
        == loaded
        == Report(
            verified=300,
            ok=297,
            modified=("d1/1",),
            missing=("d2/2",),
            new=("new",),
            moved=(Move("d3/3", "moved"),),
        )
    )
    assert multiprocessing.active_children() == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("pool", [False, True])
def test_a_manifest_file_bad_after_its_header_stops_the_run_with_its_name(
    tmp_path: Path, pool: bool
) -> None:
    """The walk starts from the header; an entry that does not decode ends it, as the
    loaded manifest would have been refused, and stops the workers already hashing (the
    command's early pool: the entries are read while the root's task runs in a worker)."""
    root = build_tree(tmp_path / "t", {f"d/{i}": b"x" for i in range(100)})
    data = hashpar.encode_manifest(make_manifest(root, jobs=1))
    last = data.rindex(b'"digest": "') + len(b'"digest": "')
    path = tmp_path / "m.json"
    path.write_bytes(data[:last] + b"A" + data[last + 1 :])  # an uppercase digest, at the end
    error = r'm\.json: invalid manifest: files\["d/99"\]'
    with pytest.raises(ManifestError, match=error), contextlib.ExitStack() as stack:
        executor = stack.enter_context(hashpar.worker_pool(2)) if pool else None
        opened = stack.enter_context(hashpar.open_manifest(str(path)))
        verify_tree(opened, jobs=2, executor=executor, tuning=Tuning(batch_files=4))
    assert multiprocessing.active_children() == []


def test_a_manifest_file_changed_while_read_is_refused(tmp_path: Path) -> None:
    """The walk used the header's settings: entries read from a different manifest (the file
    rewritten in place, no longer canonical, so decoded again whole) must not be used."""
    root = build_tree(tmp_path / "t", {"a": b"a", "b": b"b"})
    manifest = make_manifest(root, jobs=1)
    path = tmp_path / "m.json"
    path.write_bytes(hashpar.encode_manifest(manifest))
    other = dataclasses.replace(manifest, root=str(tmp_path / "another root"))  # longer
    with hashpar.open_manifest(str(path)) as opened:
        assert opened.header.root == str(root)
        with open(path, "r+b") as rewrite:
            rewrite.write(b" " + hashpar.encode_manifest(other))  # not canonical: a space
        with pytest.raises(ManifestError, match=r"m\.json: changed while it was being read"):
            opened.read()


def test_a_manifest_file_is_read_once(tmp_path: Path) -> None:
    manifest = make_manifest(build_tree(tmp_path / "t", {"a": b"a"}), jobs=1)
    path = tmp_path / "m.json"
    path.write_bytes(hashpar.encode_manifest(manifest))
    with hashpar.open_manifest(str(path)) as opened:
        assert opened.read() == manifest
        with pytest.raises(ValueError, match="already read"):
            opened.read()


def test_a_manifest_not_in_canonical_form_is_decoded_whole_when_opened(tmp_path: Path) -> None:
    manifest = make_manifest(build_tree(tmp_path / "t", {"a": b"a"}), jobs=1)
    path = tmp_path / "m.json"
    path.write_bytes(msgspec.json.encode(msgspec.json.decode(hashpar.encode_manifest(manifest))))
    with hashpar.open_manifest(str(path)) as opened:
        assert opened.header == dataclasses.replace(manifest, snapshot=Snapshot())
        assert opened.read() == manifest


@pytest.mark.parametrize("moved", ["excludes", "follow_symlinks"])
def test_a_setting_written_after_the_files_is_read_as_it_is_not_as_its_default(
    tmp_path: Path, moved: str
) -> None:
    """The format allows any layout: a header that is not exactly the canonical one (here a
    setting after the files section) must not be taken for the settings."""
    root = build_tree(tmp_path / "t", {"a": b"a", "b.tmp": b"b", "d/c": b"c"})
    manifest = make_manifest(root, jobs=1, excludes=["*.tmp"], follow_symlinks=True)
    data = hashpar.encode_manifest(manifest)
    line = next(ln for ln in data.split(b"\n") if ln.startswith(f'  "{moved}": '.encode()))
    edited = data.replace(line + b"\n", b"").replace(
        b'\n  "errors"', b"\n" + line + b'\n  "errors"'
    )
    path = tmp_path / "m.json"
    path.write_bytes(edited)
    assert hashpar.load_manifest(str(path)) == manifest
    with hashpar.open_manifest(str(path)) as opened:
        assert (opened.header.excludes, opened.header.follow_symlinks) == (("*.tmp",), True)
        assert verify_tree(opened, jobs=1) == Report(verified=2, ok=2)


def test_a_manifest_rewritten_in_place_after_it_was_opened_is_refused(tmp_path: Path) -> None:
    """Same size, same layout, other digests: the entries read after the walk started would
    belong to another manifest than the header it walked with."""
    root = build_tree(tmp_path / "t", {f"f{i}": b"old" for i in range(20)})
    old = hashpar.encode_manifest(make_manifest(root, jobs=1))
    for i in range(20):
        (root / f"f{i}").write_bytes(b"new")
    new = hashpar.encode_manifest(make_manifest(root, jobs=1))
    assert len(new) == len(old) and new != old
    path = tmp_path / "m.json"
    path.write_bytes(old)
    os.utime(path, ns=(1, 1))  # written long ago: the rewrite below gives it a new mtime
    with hashpar.open_manifest(str(path)) as opened:
        with open(path, "r+b") as rewrite:
            rewrite.write(new)
        with pytest.raises(ManifestError, match=r"m\.json: changed while it was being read"):
            verify_tree(opened, jobs=1)


@pytest.mark.parametrize("problem", ["root", "algo"])
def test_a_broken_manifest_is_reported_before_a_usage_error(tmp_path: Path, problem: str) -> None:
    """As when the whole file was read first: the manifest is what to fix first."""
    from conftest import run_hashpar

    root = build_tree(tmp_path / "t", {"a": b"a", "b": b"b"})
    data = hashpar.encode_manifest(make_manifest(root, jobs=1))
    path = tmp_path / "m.json"
    path.write_bytes(data[: data.index(b'"b"')])  # truncated after the first entry
    args = ["--root", tmp_path / "nope"] if problem == "root" else ["--algo", "sha256"]
    result = run_hashpar("verify", path, *args)
    assert (result.returncode, result.stdout) == (2, b"")
    assert result.stderr.decode() == (
        f"hashpar: error: {path}: not a valid JSON manifest: Input data was truncated\n"
    )
    with hashpar.open_manifest(str(path)) as opened, pytest.raises(ManifestError):
        verify_tree(opened, root=tmp_path / "nope")
    assert opened.is_read


def test_a_manifest_replaced_by_a_rename_while_read_is_read_as_it_was_opened(
    tmp_path: Path,
) -> None:
    """As `hashpar make -o` replaces one: the open file still reads the old manifest whole
    (its ctime changes as its name goes, which is why the check leaves ctime out)."""
    root = build_tree(tmp_path / "t", {"a": b"a"})
    manifest = make_manifest(root, jobs=1)
    path = tmp_path / "m.json"
    path.write_bytes(hashpar.encode_manifest(manifest))
    with hashpar.open_manifest(str(path)) as opened:
        (tmp_path / "new.json").write_bytes(hashpar.encode_manifest(make_manifest(root, jobs=1)))
        os.link(path, tmp_path / "backup.json")  # a hard link, as a backup tool makes
        os.chmod(path, 0o600)
        os.replace(tmp_path / "new.json", path)
        assert opened.read() == manifest


@pytest.mark.parametrize("canonical", [True, False])
def test_a_manifest_file_closed_before_it_is_read_cannot_be_read(
    tmp_path: Path, canonical: bool
) -> None:
    manifest = make_manifest(build_tree(tmp_path / "t", {"a": b"a"}), jobs=1)
    data = hashpar.encode_manifest(manifest)
    path = tmp_path / "m.json"
    path.write_bytes(data if canonical else msgspec.json.encode(msgspec.json.decode(data)))
    opened = hashpar.open_manifest(str(path))
    opened.close()
    with pytest.raises(ValueError, match="closed before it was read"):
        opened.read()


def test_verifying_a_made_manifest_copies_its_entries_without_indexing_them(
    tmp_path: Path,
) -> None:
    """make's files are a FileTable; verify's copy of them is made by iterating it, so the
    table never builds its index by path (about 70 bytes per file, kept for the manifest's
    lifetime). Found by review (session 8): the copy was made through lookups."""
    root = build_tree(tmp_path / "t", {f"f{i}": b"%d" % i for i in range(50)})
    made = make_manifest(root, jobs=1)
    assert isinstance(made.files, hashpar.FileTable)
    report = verify_tree(made, jobs=1)
    assert (report.ok, report.differs) == (50, False)
    assert made.files._index is None
