"""Helpers for the fault suite: start the real command, watch its process tree, build trees.

Everything here observes real processes through /proc (Linux): which processes descend from
a run, which of them has a given file open and how far it has read it, and whether any of
them is still alive after the run ended.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SHIM = str(Path(__file__).with_name("shim"))
REPO = str(Path(__file__).parents[2])
START_METHODS = ("fork", "forkserver", "spawn")
BUSY_FILE_SIZE = 64 << 30
"""A sparse file this big keeps a worker busy for many seconds (SHA-256 of zeros)."""


RUN_ID_ENV = "HASHPAR_TEST_RUN_ID"
"""Every process of a run inherits this variable, so a leftover one can be found by it."""


def hashpar_env(
    start_method: str | None = None, extra: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a run: this checkout first on PYTHONPATH, after the fault shim.

    Each call gets a fresh run id (see :func:`leftovers`).
    """
    env = dict(os.environ)
    env[RUN_ID_ENV] = uuid.uuid4().hex
    env["PYTHONPATH"] = os.pathsep.join([SHIM, REPO])
    env.pop("HASHPAR_TEST_FAULT", None)
    env.pop("HASHPAR_TEST_TRACE", None)
    if start_method is not None:
        env["HASHPAR_START_METHOD"] = start_method
    env.update(extra or {})
    return env


def command(*args: str | os.PathLike[str], as_nobody: bool = False) -> list[str]:
    """``python -m hashpar ARGS``, optionally as the unprivileged user nobody."""
    argv = [sys.executable, "-m", "hashpar", *map(os.fspath, args)]
    if as_nobody:
        argv = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", *argv]
    return argv


def start(
    args: Sequence[str | os.PathLike[str]],
    env: Mapping[str, str],
    *,
    stdout: int | None = subprocess.PIPE,
    **kwargs: object,
) -> subprocess.Popen[bytes]:
    """Start hashpar in a session (and so a process group) of its own."""
    return subprocess.Popen(  # type: ignore[call-overload, no-any-return]
        command(*args),
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.PIPE,
        start_new_session=True,
        **kwargs,
    )


def finish(run: subprocess.Popen[bytes], timeout: float) -> tuple[bytes, bytes]:
    """``run.communicate(timeout)``; on a timeout, kill the run's process group first, so a
    hung run (the failure these tests look for) does not outlive its test."""
    try:
        return run.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(run.pid, signal.SIGKILL)
        run.communicate()
        raise


# -- the process tree -------------------------------------------------------------------------


@dataclass(frozen=True)
class Proc:
    """A process, identified by pid and start time (so a reused pid is not mistaken for it)."""

    pid: int
    start_time: int

    def alive(self) -> bool:
        """True while the process exists and is not a zombie."""
        stat = _stat(self.pid)
        return stat is not None and stat[2] != "Z" and int(stat[21]) == self.start_time


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    head, _, tail = raw.rpartition(")")
    return [head.split(" (", 1)[0], "", *tail.split()]


def descendants(pid: int) -> list[Proc]:
    """Every live process below ``pid`` (forkserver, resource tracker, workers)."""
    children: dict[int, list[int]] = {}
    starts: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = _stat(int(entry))
        if stat is None or stat[2] == "Z":
            continue
        children.setdefault(int(stat[3]), []).append(int(entry))
        starts[int(entry)] = int(stat[21])
    found: list[Proc] = []
    todo = list(children.get(pid, []))
    while todo:
        child = todo.pop()
        found.append(Proc(child, starts[child]))
        todo.extend(children.get(child, []))
    return found


def readers_of(pid: int, directory: Path) -> dict[int, tuple[str, int]]:
    """Processes at or below ``pid`` holding a file under ``directory`` open: pid -> (path, pos)."""
    prefix = str(directory) + "/"
    found: dict[int, tuple[str, int]] = {}
    for proc in [Proc(pid, 0), *descendants(pid)]:
        try:
            fds = os.listdir(f"/proc/{proc.pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                target = os.readlink(f"/proc/{proc.pid}/fd/{fd}")
                info = Path(f"/proc/{proc.pid}/fdinfo/{fd}").read_text()
            except OSError:
                continue
            if target.startswith(prefix):
                pos = int(info.split("pos:", 1)[1].split()[0])
                found[proc.pid] = (target, pos)
    return found


def wait_for_readers(
    process: subprocess.Popen[bytes], directory: Path, count: int = 1, timeout: float = 60
) -> dict[int, tuple[str, int]]:
    """Wait until ``count`` processes of the run are reading files under ``directory``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = readers_of(process.pid, directory)
        if len(found) >= count:
            return found
        if process.poll() is not None:
            _out, err = process.communicate()
            raise AssertionError(f"run ended before reading: {process.returncode} {err!r}")
        time.sleep(0.01)
    raise AssertionError(f"no {count} readers of {directory} within {timeout} s")


def wait_gone(procs: Sequence[Proc], timeout: float = 10) -> list[Proc]:
    """Wait (bounded) for processes to exit; return those still alive at the deadline."""
    deadline = time.monotonic() + timeout
    alive = [p for p in procs if p.alive()]
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = [p for p in alive if p.alive()]
    return alive


def leftovers(env: Mapping[str, str], timeout: float = 10) -> list[str]:
    """Processes of the run with ``env`` still alive after a bounded wait: "pid cmdline".

    Found by the run id in /proc/*/environ, whoever their parent is now, so a worker that
    was orphaned (re-parented to init) is found too. The bounded wait lets the forkserver and
    the resource tracker notice that their parent has gone.
    """
    needle = f"{RUN_ID_ENV}={env[RUN_ID_ENV]}".encode()
    deadline = time.monotonic() + timeout
    while True:
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            try:
                environ = Path(f"/proc/{entry}/environ").read_bytes()
                stat = _stat(int(entry))
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if needle in environ.split(b"\0") and stat is not None and stat[2] != "Z":
                shown = cmdline.replace(b"\0", b" ").decode(errors="replace")
                found.append(f"{entry} {shown}")
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


# -- trees ------------------------------------------------------------------------------------


def busy_tree(root: Path, count: int = 4, size: int = BUSY_FILE_SIZE) -> Path:
    """``count`` huge sparse files: each takes a worker many seconds to hash, costs no disk."""
    root.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        with open(root / f"big{index}.bin", "wb") as f:
            f.truncate(size)
    (root / "small.txt").write_bytes(b"small\n")
    return root


def many_files(root: Path, count: int, per_dir: int = 500, content: bytes = b"") -> Path:
    """``count`` small files in subdirectories of ``per_dir`` files each."""
    root.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    for index in range(count):
        directory = root / f"d{index // per_dir:04d}"
        if index % per_dir == 0:
            directory.mkdir(exist_ok=True)
        fd = os.open(directory / f"f{index:07d}", flags, 0o644)
        if content:
            os.write(fd, content)
        os.close(fd)
    return root


@contextmanager
def public_tempdir() -> Iterator[Path]:
    """A temporary directory that the user nobody can enter (pytest's tmp_path is 0700)."""
    path = Path(tempfile.mkdtemp(prefix="hashpar-faults-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def nobody_ids() -> tuple[int, int]:
    """uid and gid of nobody."""
    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


def exit_status(signum: signal.Signals) -> int:
    """The shell-style exit status for death by (or stopping on) ``signum``: 128 + n."""
    return 128 + int(signum)


_SYS_TGKILL = {"x86_64": 234, "aarch64": 131}


def threads_not_blocking(pid: int, signum: int) -> list[int]:
    """Thread ids of ``pid`` other than its main thread that do not block ``signum``."""
    found = []
    for entry in os.listdir(f"/proc/{pid}/task"):
        tid = int(entry)
        if tid == pid:
            continue
        status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        blocked = int(status.split("SigBlk:")[1].split()[0], 16)
        if not blocked >> (signum - 1) & 1:
            found.append(tid)
    return found


def signal_thread(pid: int, tid: int, signum: int) -> None:
    """tgkill(2): what the kernel does when it picks that thread for a process signal."""
    import ctypes
    import platform

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(_SYS_TGKILL[platform.machine()], pid, tid, signum) != 0:
        raise OSError(ctypes.get_errno(), "tgkill failed")
