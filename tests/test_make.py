"""make_manifest on every shape of tree, at the library layer, with jobs=1 and jobs=2."""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import blake3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import TreeSpec, build_tree
from hashpar import (
    Algorithm,
    FileEntry,
    Manifest,
    ProblemKind,
    SpecialKind,
    Tuning,
    UsageError,
    encode_manifest,
    load_manifest,
    make_manifest,
    verify_tree,
    write_manifest,
)
from hashpar.names import unsafe_reason

# Force the pool even for tiny trees, so both code paths run in every test.
POOL = Tuning(inline_max_files=0)
JOBS = [pytest.param((1, Tuning()), id="jobs1"), pytest.param((2, POOL), id="jobs2-pool")]

pytestmark = pytest.mark.timeout(60)


Make = Callable[..., Manifest]


@pytest.fixture(params=JOBS)
def make(request: pytest.FixtureRequest) -> Make:
    """make_manifest with this test's jobs and tuning."""
    jobs, tuning = request.param
    return functools.partial(make_manifest, jobs=jobs, tuning=tuning)


def digest(data: bytes, algorithm: Algorithm = Algorithm.BLAKE3) -> str:
    if algorithm is Algorithm.BLAKE3:
        return str(blake3.blake3(data).hexdigest())
    return hashlib.sha256(data).hexdigest()


def test_regular_files_empty_file_and_empty_directory(
    tree: Callable[[TreeSpec], Path], make
) -> None:  # type: ignore[no-untyped-def]
    root = tree({"a.txt": b"alpha", "sub/deeper/b": b"beta", "empty": b"", "hollow/": "DIR"})
    manifest = make(root)
    assert {k: (v.size, v.digest) for k, v in manifest.files.items()} == {
        "a.txt": (5, digest(b"alpha")),
        "empty": (0, digest(b"")),
        "sub/deeper/b": (4, digest(b"beta")),
    }
    # Directories are not entries: an empty one leaves no trace (documented).
    assert not manifest.snapshot.errors and not manifest.snapshot.skipped


def test_sha256(tree: Callable[[TreeSpec], Path], make: Make) -> None:
    manifest = make(tree({"x": b"abc"}), algorithm="sha256")
    assert manifest.files["x"].digest == hashlib.sha256(b"abc").hexdigest()


def test_fifo_and_socket_are_skipped_never_opened(
    tree: Callable[[TreeSpec], Path], make: Make
) -> None:
    root = tree({"f": b"1"})
    os.mkfifo(root / "pipe")  # opening it for reading would block forever
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(root / "sock"))
        manifest = make(root)
    assert manifest.snapshot.skipped == {"pipe": SpecialKind.FIFO, "sock": SpecialKind.SOCKET}
    assert list(manifest.files) == ["f"]


def test_symlinks_are_recorded_not_followed(
    tree: Callable[[TreeSpec], Path], tmp_path: Path, make
) -> None:  # type: ignore[no-untyped-def]
    outside = tmp_path / "outside-fifo"
    os.mkfifo(outside)  # were it ever opened, the test would hang and time out
    root = tree({"dir/f": b"1"})
    os.symlink("dir/f", root / "to-file")
    os.symlink("dir", root / "to-dir")
    os.symlink("nowhere", root / "dangling")
    os.symlink(outside, root / "escape")
    os.symlink(".", root / "dir/loop")
    for follow in (False, True):
        manifest = make(root, follow_symlinks=follow)
        if not follow:
            assert manifest.snapshot.symlinks == {
                "dangling": "nowhere",
                "dir/loop": ".",
                "escape": str(outside),
                "to-dir": "dir",
                "to-file": "dir/f",
            }
            assert list(manifest.files) == ["dir/f"]
        else:  # followed inside the root; the loop is an error; outside is never read
            assert list(manifest.files) == ["dir/f", "to-dir/f", "to-file"]
            assert manifest.snapshot.symlinks == {"dangling": "nowhere", "escape": str(outside)}
            assert {k: v.kind for k, v in manifest.snapshot.errors.items()} == {
                "dir/loop": ProblemKind.LOOP,
                "to-dir/loop": ProblemKind.LOOP,
            }


def test_a_cycle_of_links_is_a_loop_when_following(
    tree: Callable[[TreeSpec], Path], make: Make
) -> None:
    root = tree({})
    os.symlink("b", root / "a")
    os.symlink("a", root / "b")
    manifest = make(root, follow_symlinks=True)
    assert {k: v.kind for k, v in manifest.snapshot.errors.items()} == {
        "a": ProblemKind.LOOP,
        "b": ProblemKind.LOOP,
    }


ODD_NAMES: list[bytes] = [
    b"new\nline",
    b"carriage\rreturn",
    b"back\\slash",
    b"tab\there",
    b"-leading-dash",
    b"--help",
    b" spaces ",
    "caf\u00e9 NFC".encode(),
    "cafe\u0301 NFC".encode(),
    "cafe\u0301 NFD".encode(),
    b"\x1b[31mred",
    b"non-utf8-\xff\xfe",
    b"pct%41",
    b"star*?[x]",
]


def test_odd_names_are_stored_exactly_and_never_collide(
    tree: Callable[[TreeSpec], Path], make
) -> None:  # type: ignore[no-untyped-def]
    root = tree({name: name for name in ODD_NAMES})
    manifest = make(root)
    assert sorted(os.fsencode(k) for k in manifest.files) == sorted(ODD_NAMES)
    for name, entry in manifest.files.items():
        assert entry.digest == digest(os.fsencode(name))
    encode_manifest(manifest).decode("utf-8")


def test_excludes_use_gitignore_semantics_and_are_recorded(
    tree: Callable[[TreeSpec], Path], make
) -> None:  # type: ignore[no-untyped-def]
    root = tree({"a.tmp": b"", "keep.tmp": b"", "cache/x": b"", "src/cache/y": b"", "src/z": b""})
    manifest = make(root, excludes=["*.tmp", "!keep.tmp", "/cache/"])
    assert list(manifest.files) == ["keep.tmp", "src/cache/y", "src/z"]
    assert manifest.excludes == ("*.tmp", "!keep.tmp", "/cache/")


def test_a_single_file_is_accepted(tree: Callable[[TreeSpec], Path], make: Make) -> None:
    root = tree({"one": b"1", "two": b"2"})
    manifest = make(root / "one")
    assert manifest.files == {"one": FileEntry(1, digest(b"1"), manifest.files["one"].mtime_ns)}


def test_skip_leaves_out_the_output_file(tree: Callable[[TreeSpec], Path], make: Make) -> None:
    root = tree({"a": b"", "manifest.json": b"{}"})
    assert list(make(root, skip=[root / "manifest.json"]).files) == ["a"]


@pytest.mark.parametrize("bad", ["missing-dir"])
def test_a_missing_path_is_a_usage_error(tmp_path: Path, bad: str) -> None:
    with pytest.raises(UsageError, match="No such file or directory"):
        make_manifest(tmp_path / bad)
    with pytest.raises(UsageError, match="jobs must be at least 1"):
        make_manifest(tmp_path, jobs=0)


def test_a_pattern_the_regex_engine_rejects_is_a_usage_error_naming_it(tmp_path: Path) -> None:
    """pathspec lets some bad patterns through to ``re``, whose error is no ValueError."""
    with pytest.raises(UsageError, match=r"^bad --exclude pattern: '\[z-a\]': bad character"):
        make_manifest(tmp_path, excludes=["*.tmp", "[z-a]"])


@pytest.mark.timeout(120)
def test_sparse_file_larger_than_4_gib(tmp_path: Path) -> None:
    path = tmp_path / "sparse"
    size = (4 << 30) + 4097
    with open(path, "wb") as f:
        f.seek(size - 1)
        f.write(b"!")
    expected = blake3.blake3(max_threads=blake3.blake3.AUTO)
    zeros = bytes(16 << 20)
    remaining = size - 1
    while remaining:
        expected.update(zeros[: min(remaining, len(zeros))])
        remaining -= min(remaining, len(zeros))
    expected.update(b"!")
    manifest = make_manifest(tmp_path, jobs=2)
    assert manifest.files["sparse"] == FileEntry(
        size, expected.hexdigest(), path.stat().st_mtime_ns
    )


NO_ROOT_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
"""Keeps uid 0 but drops the capabilities that let root ignore permission bits (Python lives
under /root here, so switching to 'nobody' could not even start it)."""


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs setpriv to drop root's override")
def test_unreadable_entries_are_errors_not_skipped(tree: Callable[[TreeSpec], Path]) -> None:
    root = tree({"ok": b"1", "secret": b"2", "locked/inner": b"3"})
    (root / "secret").chmod(0o000)
    (root / "locked").chmod(0o000)
    try:
        result = subprocess.run(
            [*NO_ROOT_OVERRIDE, sys.executable, "-m", "hashpar", "make", "-j", "2", str(root)],
            capture_output=True,
            timeout=60,
            check=False,
        )
    finally:
        (root / "locked").chmod(0o755)
    assert result.stderr.decode().splitlines() == [
        "hashpar: locked: cannot list directory: Permission denied (unreadable)",
        "hashpar: secret: Permission denied (unreadable)",
    ]
    assert result.returncode == 1
    assert b'"ok": {"size": 1' in result.stdout
    assert b'"secret": {"kind": "unreadable", "message": "Permission denied"}' in result.stdout


# -- determinism: the same tree gives the same bytes whatever the jobs -------------------------

names = st.text(st.characters(codec="utf-8", exclude_characters="/\0"), min_size=1, max_size=6)
trees = st.dictionaries(
    st.lists(names.filter(lambda n: n not in (".", "..")), min_size=1, max_size=3).map("/".join),
    st.binary(max_size=300),
    min_size=1,
    max_size=12,
)


def _files_section(data: bytes) -> bytes:
    return data[data.index(b'"files"') :]


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(spec=trees)
def test_jobs_never_change_the_manifest(
    tmp_path_factory: pytest.TempPathFactory, spec: dict[str, bytes]
) -> None:
    root = tmp_path_factory.mktemp("tree")
    written = {}
    for path, content in spec.items():  # a name may be both a file and a parent dir: skip those
        try:
            build_tree(root, {path: content})
            written[path] = content
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            continue
    one = encode_manifest(make_manifest(root, jobs=1))
    two = encode_manifest(
        make_manifest(root, jobs=2, tuning=Tuning(inline_max_files=0, batch_files=2))
    )
    assert _files_section(one) == _files_section(two)
    manifest = make_manifest(root, jobs=1)
    # An unsafe name is reported where it first occurs; nothing below it is walked.
    blocked = {path: _first_unsafe_prefix(path) for path in written}
    assert {k: v.digest for k, v in manifest.files.items()} == {
        k: digest(v) for k, v in written.items() if blocked[k] is None
    }
    assert {k: p.kind for k, p in manifest.snapshot.errors.items()} == {
        prefix: ProblemKind.UNSAFE_NAME for prefix in blocked.values() if prefix is not None
    }


def _first_unsafe_prefix(path: str) -> str | None:
    parts = path.split("/")
    prefixes = ("/".join(parts[: i + 1]) for i in range(len(parts)))
    return next((prefix for prefix in prefixes if unsafe_reason(prefix) is not None), None)


def test_any_executor_can_run_the_engine(tree: Callable[[TreeSpec], Path]) -> None:
    """The executor is a parameter (a later issue runs the engine on a Dask cluster)."""
    from concurrent.futures import ThreadPoolExecutor

    root = tree({f"d{i % 5}/f{i}": os.urandom(i * 11) for i in range(300)})
    with ThreadPoolExecutor(3) as executor:
        threaded = make_manifest(root, jobs=2, executor=executor, tuning=Tuning(batch_files=16))
    assert threaded.snapshot == make_manifest(root, jobs=1).snapshot
    assert len(threaded.files) == 300


@pytest.mark.parametrize("jobs", [1, 2])
def test_an_mtime_a_manifest_cannot_hold_is_recorded_as_unknown(tmp_path: Path, jobs: int) -> None:
    """A file dated after 2262 has an st_mtime_ns above 2**63 - 1, which the manifest format
    refuses: make used to write it, and verify then refused make's own manifest (exit 2).
    (Before 1677 is the same rule; ext4 keeps nothing before 1901 to test it with.)"""
    root = tmp_path / "t"
    root.mkdir()
    (root / "future").write_bytes(b"from the future")
    (root / "now").write_bytes(b"now")
    future = 13_569_465_600 * 10**9  # 2400-01-01
    try:
        os.utime(root / "future", ns=(future, future))
    except (OSError, OverflowError) as exc:
        pytest.skip(f"this file system cannot store such a time: {exc}")
    if (root / "future").stat().st_mtime_ns != future:
        pytest.skip("this file system clamps such a time")
    manifest = make_manifest(root, algorithm="sha256", jobs=jobs)
    assert [manifest.files[n].mtime_ns for n in ("future", "now")] == [
        None,
        (root / "now").stat().st_mtime_ns,
    ]
    assert manifest.files["future"].digest == hashlib.sha256(b"from the future").hexdigest()
    path = tmp_path / "m.json"
    with open(path, "wb") as f:
        write_manifest(manifest, f)
    assert load_manifest(path) == manifest
    report = verify_tree(load_manifest(path))
    assert (report.ok, report.differs) == (2, False)
    # Kept by verify (not settled): a changed file and a moved one, with the unknown mtime.
    (root / "future").write_bytes(b"changed in the future")
    os.utime(root / "future", ns=(future, future))
    os.rename(root / "now", root / "later")
    report = verify_tree(load_manifest(path), jobs=jobs)
    assert (report.modified, [(m.source, m.target) for m in report.moved]) == (
        ("future",),
        [("now", "later")],
    )
