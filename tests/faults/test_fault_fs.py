"""Filesystem faults during a run: files that change, vanish, or cannot be read; few fds.

Changes while a file is read are made for real: a worker is seen (through /proc/PID/fdinfo)
reading a 1 GiB sparse file, the test changes the file, then checks the worker was still
reading it afterwards, so the change provably fell inside the read (a rare lost race is
retried, never counted as a pass). Vanishing entries come from the test-only shim, which
removes them right after the walk listed them. Permission faults run as root without the
capabilities that bypass file modes (see docs/reliability.md); the lowest-layer cases call
:func:`hashpar.hashing.run_task` directly.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from faultkit import (
    START_METHODS,
    command,
    finish,
    hashpar_env,
    leftovers,
    many_files,
    readers_of,
    start,
    wait_for_readers,
)

from hashpar.engine import new_task
from hashpar.hashing import Task, TaskResult, run_task
from hashpar.scan import Scope

CHANGING_SIZE = 1 << 30
DROP_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]


def _grow(path: Path) -> None:
    with open(path, "ab") as f:
        f.write(b"appended")


def _shrink(path: Path) -> None:
    os.truncate(path, CHANGING_SIZE // 4)


def _rewrite(path: Path) -> None:
    """Same size, one byte changed in the part already read: matches neither version."""
    with open(path, "r+b") as f:
        f.write(b"X")


CHANGES: dict[str, Callable[[Path], None]] = {
    "grows": _grow,
    "shrinks": _shrink,
    "rewritten": _rewrite,
}


def _change_during_read(tmp_path: Path, method: str, change: Callable[[Path], None]) -> bytes:
    """Run make on a tree whose big file is changed mid-read; return stdout (exit 1)."""
    tree = tmp_path / "tree"
    for attempt in range(3):
        many_files(tree, 300, content=b"data")
        big = tree / "big.bin"
        with open(big, "wb") as f:
            f.truncate(CHANGING_SIZE)
        env = hashpar_env(method)
        run = start(["make", tree, "--algo", "sha256", "-j", "2"], env)
        while True:  # until the big file is being read, well past its first block
            readers = wait_for_readers(run, tree)
            reading = [pos for path, pos in readers.values() if path == str(big)]
            if reading and 64 << 20 <= reading[0] < CHANGING_SIZE // 2:
                break
            if reading and reading[0] >= CHANGING_SIZE // 2:
                break
            time.sleep(0.005)
        change(big)
        still = [pos for path, pos in readers_of(run.pid, tree).values() if path == str(big)]
        stdout, stderr = finish(run, 120)
        assert leftovers(env) == []
        if reading[0] < CHANGING_SIZE // 2 and still and still[0] < CHANGING_SIZE:
            assert run.returncode == 1, stderr
            assert stderr == b"hashpar: big.bin: changed while it was being read (changed)\n"
            return stdout
        print(f"attempt {attempt}: the read was not caught in the middle; again")
    raise AssertionError("could not change the file while it was being read")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("method", START_METHODS)
@pytest.mark.parametrize("how", sorted(CHANGES))
def test_file_changed_while_read_is_reported_not_hashed(
    method: str, how: str, tmp_path: Path
) -> None:
    stdout = _change_during_read(tmp_path, method, CHANGES[how])
    manifest = json.loads(stdout)
    assert manifest["errors"] == {
        "big.bin": {"kind": "changed", "message": "changed while it was being read"}
    }
    assert "big.bin" not in manifest["files"]
    assert len(manifest["files"]) == 300


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", ["/proc/self/status", "/proc/self/maps"])
def test_proc_file_that_lies_about_its_size(path: str) -> None:
    """procfs says size 0 and then returns bytes: that is a change, never a digest."""
    result = subprocess.run(
        command("make", path), env=hashpar_env(), capture_output=True, timeout=50, check=False
    )
    name = os.path.basename(path)
    assert result.returncode == 1
    assert result.stderr == f"hashpar: {name}: changed while it was being read (changed)\n".encode()
    assert json.loads(result.stdout)["files"] == {}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method", START_METHODS)
def test_file_vanishing_between_walk_and_read(method: str, tmp_path: Path) -> None:
    tree = many_files(tmp_path / "tree", 600, content=b"data")
    env = hashpar_env(method, {"HASHPAR_TEST_FAULT": "vanish:f0000300"})
    run = start(["make", tree, "-j", "2"], env)
    stdout, stderr = finish(run, 50)
    assert run.returncode == 1
    assert stderr == b"hashpar: d0000/f0000300: vanished before it could be read (vanished)\n"
    manifest = json.loads(stdout)
    assert manifest["errors"] == {
        "d0000/f0000300": {"kind": "vanished", "message": "vanished before it could be read"}
    }
    assert len(manifest["files"]) == 599
    assert leftovers(env) == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method", START_METHODS)
def test_directory_vanishing_between_walk_and_read(method: str, tmp_path: Path) -> None:
    tree = many_files(tmp_path / "tree", 600, content=b"data")  # d0001 holds files 500-599
    env = hashpar_env(method, {"HASHPAR_TEST_FAULT": "vanish:d0001"})
    run = start(["make", tree, "-j", "2"], env)
    stdout, stderr = finish(run, 50)
    assert run.returncode == 1
    gone = [f"d0001/f{i:07d}" for i in range(500, 600)]
    lines = [f"hashpar: {p}: vanished before it could be read (vanished)" for p in gone]
    assert stderr.decode().splitlines() == lines
    manifest = json.loads(stdout)
    assert sorted(manifest["errors"]) == gone
    assert len(manifest["files"]) == 500
    assert leftovers(env) == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method", START_METHODS)
def test_unlistable_directory_and_unopenable_file(method: str, tmp_path: Path) -> None:
    """As root without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH, so the mode bits apply."""
    tree = many_files(tmp_path / "tree", 600, content=b"data")
    (tree / "locked").mkdir()
    (tree / "locked" / "inside").write_bytes(b"x")
    (tree / "locked").chmod(0o000)
    (tree / "listable").mkdir()  # names can be listed, the files cannot be reached
    (tree / "listable" / "a").write_bytes(b"x")
    (tree / "listable").chmod(0o444)
    (tree / "secret").write_bytes(b"x")
    (tree / "secret").chmod(0o000)
    env = hashpar_env(method)
    result = subprocess.run(
        [*DROP_DAC, *command("make", tree, "-j", "2")],
        env=env,
        capture_output=True,
        timeout=50,
        check=False,
    )
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == [
        "hashpar: listable/a: Permission denied (unreadable)",
        "hashpar: locked: cannot list directory: Permission denied (unreadable)",
        "hashpar: secret: Permission denied (unreadable)",
    ]
    manifest = json.loads(result.stdout)
    assert sorted(manifest["errors"]) == ["listable/a", "locked", "secret"]
    assert len(manifest["files"]) == 600
    assert leftovers(env) == []


def _limit_fds(limit: int) -> Callable[[], None]:
    def limit_fds() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))

    return limit_fds


@pytest.mark.timeout(120)
@pytest.mark.parametrize("method", START_METHODS)
def test_few_file_descriptors(method: str, tmp_path: Path) -> None:
    """``ulimit -n 64`` on 5,000 files: descriptors are neither leaked nor held in bulk."""
    tree = many_files(tmp_path / "tree", 5000, per_dir=250, content=b"data")
    env = hashpar_env(method)
    result = subprocess.run(
        command("make", tree, "-j", "2"),
        env=env,
        capture_output=True,
        timeout=100,
        check=False,
        preexec_fn=_limit_fds(64),
    )
    assert (result.returncode, result.stderr) == (0, b"")
    manifest = json.loads(result.stdout)
    assert (len(manifest["files"]), manifest["errors"]) == (5000, {})
    assert leftovers(env) == []


# -- the lowest layer: one batch, hashed in-process -------------------------------------------


def _batch(root: Path, groups: list[tuple[str, list[str]]]) -> Task:
    return new_task(Scope(root=str(root)), "blake3")._replace(groups=groups)


def _problems(result: TaskResult) -> dict[str, tuple[str, str]]:
    return {path: (kind, message) for path, kind, message in result.problems}


def test_batch_with_vanished_file_and_directory(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "kept").write_bytes(b"kept")
    result = run_task(_batch(tmp_path, [("", ["gone", "kept"]), ("d", ["x", "y"])]))
    vanished = ("vanished", "vanished before it could be read")
    assert _problems(result) == {"gone": vanished, "d/x": vanished, "d/y": vanished}
    assert result.path_list() == ["kept"]


def test_batch_with_entries_replaced_after_the_walk(tmp_path: Path) -> None:
    """A file swapped for a symlink or a FIFO, a directory swapped for a symlink."""
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_bytes(b"f")
    os.symlink("real/f", tmp_path / "link")
    os.mkfifo(tmp_path / "fifo")
    os.symlink("real", tmp_path / "dirlink")
    result = run_task(_batch(tmp_path, [("", ["link", "fifo"]), ("dirlink", ["f"])]))
    assert _problems(result) == {
        "link": ("changed", "replaced by a symbolic link during the run"),
        "fifo": ("changed", "no longer a regular file"),
        "dirlink/f": ("changed", "a directory on its path was replaced during the run"),
    }
    assert result.path_list() == []


def test_batch_does_not_leak_descriptors(tmp_path: Path) -> None:
    many_files(tmp_path, 200, per_dir=50, content=b"data")
    groups = [(f"d{i:04d}", [f"f{n:07d}" for n in range(i * 50, i * 50 + 50)]) for i in range(4)]
    groups.append(("missing-dir", ["a"]))
    before = len(os.listdir("/proc/self/fd"))
    result = run_task(_batch(tmp_path, groups))
    assert len(os.listdir("/proc/self/fd")) == before
    assert len(result.path_list()) == 200


def _walk(root: Path) -> Task:
    return new_task(Scope(root=str(root)), "blake3")._replace(dirs=[("", ())])


def _chain(root: Path, depth: int) -> list[str]:
    """``depth`` nested directories under ``root``, a file in each; their file paths."""
    paths, rel = [], ""
    for level in range(depth):
        rel = f"{rel}/d{level}" if rel else f"d{level}"
        (root / rel).mkdir()
        (root / rel / "f").write_bytes(b"%d" % level)
        paths.append(f"{rel}/f")
    return paths


def test_a_walk_opens_each_directory_once_from_its_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not once per component above it: 31 directories 30 deep take 31 opens, not 496."""
    paths = _chain(tmp_path, 30)
    opened: list[str] = []
    real_open = os.open

    def counting_open(path: str, flags: int, *args: object, **kwargs: object) -> int:
        if flags & os.O_DIRECTORY:
            opened.append(str(path))
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", counting_open)
    result = run_task(_walk(tmp_path))
    monkeypatch.undo()
    assert sorted(result.path_list()) == sorted(paths)
    assert len(opened) == 31


def test_a_tree_deeper_than_the_descriptors_kept_is_walked_whole_without_leaks(
    tmp_path: Path,
) -> None:
    paths = _chain(tmp_path, 60)
    (tmp_path / "d0" / "side").mkdir()  # reached after the deep chain: reopened from the root
    (tmp_path / "d0" / "side" / "f").write_bytes(b"side")
    before = len(os.listdir("/proc/self/fd"))
    result = run_task(_walk(tmp_path))
    assert len(os.listdir("/proc/self/fd")) == before
    assert sorted(result.path_list()) == sorted([*paths, "d0/side/f"])
    assert result.problems == [] and result.listing.errors == []


def test_a_directory_opened_from_a_kept_parent_is_still_never_a_symlink(tmp_path: Path) -> None:
    """The second group's directory is opened from the first's descriptor, with O_NOFOLLOW."""
    (tmp_path / "real").mkdir()
    (tmp_path / "real" / "f").write_bytes(b"f")
    os.symlink(".", tmp_path / "real" / "dirlink")
    result = run_task(_batch(tmp_path, [("real", ["f"]), ("real/dirlink", ["f"])]))
    assert result.path_list() == ["real/f"]
    assert _problems(result) == {
        "real/dirlink/f": ("changed", "a directory on its path was replaced during the run"),
    }


_LOW_LIMIT_WALK = """
import os, resource, sys
from hashpar.engine import new_task
from hashpar.hashing import run_task
from hashpar.scan import Scope
task = new_task(Scope(root=sys.argv[1]), "blake3")._replace(dirs=[("", ())])
free = 6  # the old opener needed 3 at a time; keeping a path of 16 needs 18
limit = len(os.listdir("/proc/self/fd")) + free
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
result = run_task(task)
print(len(result.path_list()), len(result.problems), len(result.listing.errors))
"""


def test_a_deep_walk_under_a_low_descriptor_limit_gives_kept_directories_back(
    tmp_path: Path,
) -> None:
    """Out of descriptors, the opener closes what it keeps and opens from the root."""
    paths = _chain(tmp_path, 60)
    result = subprocess.run(
        [sys.executable, "-c", _LOW_LIMIT_WALK, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.split() == [str(len(paths)), "0", "0"], result.stderr


def test_out_of_descriptors_the_opener_gives_back_what_it_keeps(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EMFILE on an open from a kept directory: every kept one is closed, and the directory
    is opened from the root instead."""
    import errno

    from hashpar.hashing import _DirOpener

    _chain(tmp_path, 3)
    opener = _DirOpener(str(tmp_path), follow=False)
    opener.keep("d0", opener.open("d0"))
    assert [rel for rel, _ in opener.kept] == ["", "d0"]
    real_open = os.open
    failed: list[object] = []

    def crowded_open(path: str, flags: int, *args: object, **kwargs: object) -> int:
        if kwargs.get("dir_fd") is not None and not failed:
            failed.append(path)
            raise OSError(errno.EMFILE, "Too many open files")
        return real_open(path, flags, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", crowded_open)
    fd = opener.open("d0/d1/d2")
    monkeypatch.undo()
    assert failed == ["d1"] and opener.kept == []
    assert os.path.samefile(f"/proc/self/fd/{fd}", tmp_path / "d0" / "d1" / "d2")
    os.close(fd)
    opener.close()
