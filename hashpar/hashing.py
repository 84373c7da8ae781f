"""Hash files: the code that runs inside worker processes (or in-process when jobs == 1).

Everything a worker receives and returns is plain data (tuples of str and int), so it works
under the fork, forkserver and spawn start methods and with any executor that pickles.

Safety rules, applied to every file, whoever asked for it:

* directories below the root are opened one component at a time with ``O_NOFOLLOW``, so a
  directory swapped for a symlink during the run cannot lead outside the root;
* a file is opened with ``O_NOFOLLOW | O_NONBLOCK`` (a FIFO swapped in cannot block us) and
  ``fstat`` of the open descriptor must say "regular file" before a byte is read;
* the file's size, mtime and ctime are compared before and after reading, and the byte count
  read must equal the size: otherwise the entry is reported as changed while being read.
"""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import stat
import threading
import time
from collections.abc import Callable
from typing import NamedTuple, Protocol

import blake3

from hashpar.models import Algorithm, ProblemKind

__all__ = [
    "Batch",
    "BatchResult",
    "Group",
    "hash_batch",
    "hash_fd",
    "worker_init",
]

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
_WATCHDOG_INTERVAL = 0.25
_ORPHANED_EXIT = 3
_BLAKE3_THREADED_BUFFER = 4 << 20
"""Read size when BLAKE3 hashes one file with several threads (see benchmarks/README.md)."""


class _Hasher(Protocol):
    def update(self, data: memoryview, /) -> object: ...
    def hexdigest(self) -> str: ...


Group = tuple[str, list[str]]
"""A directory relative to the batch root ("" for the root itself) and names of files in it."""


class Batch(NamedTuple):
    """One unit of work for a worker: files to hash, and how."""

    root: str
    """Absolute path of the tree's root directory."""
    groups: list[Group]
    algorithm: str
    buffer_size: int
    batch_bytes: int
    """Stop after hashing this many bytes and return the rest as ``leftover``."""
    solo: bool
    """True for a single big file sent on its own; it is never deferred again."""
    threads: int
    """Threads BLAKE3 may use inside one file of at least ``threads_min`` bytes."""
    threads_min: int
    follow_symlinks: bool


class BatchResult(NamedTuple):
    """What a worker sends back; every path is relative to the root."""

    paths: list[str]
    """Files hashed, in the order of ``entries``."""
    entries: list[tuple[int, str, int]]
    """(size, hex digest, mtime_ns) per file: FileEntry's fields, as a plain tuple."""
    problems: list[tuple[str, str, str]]
    """(path, ProblemKind value, message)."""
    deferred: list[tuple[str, str, int]]
    """(directory, name, size): files larger than ``batch_bytes``, to be sent as solo tasks."""
    leftover: list[Group]
    """Groups not yet done when the batch's byte budget ran out."""


def worker_init(parent_pid: int) -> None:
    """Initialise a worker process: the parent alone decides when the run stops.

    SIGINT (Ctrl-C reaches the whole process group) is ignored; SIGTERM gets its default
    action back, so the parent can always terminate a worker. The parent blocks both while
    it starts workers, so the mask is cleared here once the dispositions are in place.

    And a worker never outlives hashpar: if the parent is killed outright (SIGKILL, the OOM
    killer), nothing would ever tell its workers, which would block forever (measured: under
    fork, forkserver and spawn alike, workers were still alive long after). A daemon thread
    checks every quarter second that ``parent_pid`` still exists, and ends the worker if not.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})
    threading.Thread(
        target=_exit_when_orphaned, args=(parent_pid,), name="hashpar-watchdog", daemon=True
    ).start()


def _exit_when_orphaned(parent_pid: int) -> None:
    while True:
        time.sleep(_WATCHDOG_INTERVAL)
        try:
            os.kill(parent_pid, 0)
        except ProcessLookupError:
            os._exit(_ORPHANED_EXIT)
        except OSError:  # alive, only not ours to signal
            pass


_CONSTRUCTORS: dict[str, Callable[[bytes], _Hasher]] = {
    Algorithm.BLAKE3: blake3.blake3,
    Algorithm.SHA256: hashlib.sha256,
}
"""Hasher constructors that take the first data directly (one call for a small file)."""


def new_hasher(algorithm: str, threads: int = 1) -> _Hasher:
    """A fresh hasher for ``algorithm`` ("blake3" or "sha256")."""
    if algorithm == Algorithm.BLAKE3:
        return blake3.blake3(max_threads=threads) if threads > 1 else blake3.blake3()
    if algorithm == Algorithm.SHA256:
        return hashlib.sha256()
    raise ValueError(f"unknown algorithm {algorithm!r}")


def hash_fd(fd: int, hasher: _Hasher, buffer: bytearray) -> int:
    """Feed everything readable from ``fd`` into ``hasher``; return the number of bytes."""
    view = memoryview(buffer)
    total = 0
    while True:
        n = os.readv(fd, [buffer])
        if not n:
            return total
        hasher.update(view[:n])
        total += n


def _open_dir(root: str, rel_dir: str, follow: bool) -> int:
    """Open ``root/rel_dir`` without following a symlink below the root (unless ``follow``)."""
    if follow or not rel_dir:
        return os.open(os.path.join(root, rel_dir), _DIR_FLAGS)
    fd = os.open(root, _DIR_FLAGS)
    try:
        for part in rel_dir.split("/"):
            child = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _problem_for(exc: OSError) -> tuple[str, str]:
    """Map an OSError to (ProblemKind value, message)."""
    if exc.errno == errno.ENOENT:
        return ProblemKind.VANISHED, "vanished before it could be read"
    if exc.errno == errno.ELOOP:
        return ProblemKind.CHANGED, "replaced by a symbolic link during the run"
    if exc.errno == errno.ENOTDIR:
        return ProblemKind.CHANGED, "a directory on its path was replaced during the run"
    return ProblemKind.UNREADABLE, exc.strerror or str(exc)


def hash_batch(batch: Batch) -> BatchResult:
    """Hash the files of ``batch``; per-file failures become problems, never exceptions."""
    result = BatchResult([], [], [], [], [])
    buffer = bytearray(batch.buffer_size)
    budget = batch.batch_bytes if not batch.solo else float("inf")
    for index, (rel_dir, names) in enumerate(batch.groups):
        prefix = f"{rel_dir}/" if rel_dir else ""
        try:
            dir_fd = _open_dir(batch.root, rel_dir, batch.follow_symlinks)
        except OSError as exc:
            kind, message = _problem_for(exc)
            result.problems.extend((prefix + name, kind, message) for name in names)
            continue
        try:
            spent, reached = _hash_names(batch, dir_fd, rel_dir, names, buffer, result, budget)
        finally:
            os.close(dir_fd)
        budget -= spent
        if reached < len(names):
            result.leftover.append((rel_dir, names[reached:]))
        if budget <= 0:  # the rest goes back to the parent as a new batch
            result.leftover.extend(batch.groups[index + 1 :])
            break
    return result


def _hash_names(
    batch: Batch,
    dir_fd: int,
    rel_dir: str,
    names: list[str],
    buffer: bytearray,
    result: BatchResult,
    budget: float,
) -> tuple[int, int]:
    """Hash ``names`` (files of one directory) until ``budget`` bytes are read.

    Returns (bytes read, how many names were handled). This loop runs once per file of the
    tree, so it is written for speed: names are bound locally, and a file that fits the
    buffer costs open, fstat, one read, fstat, close and one hasher call.
    """
    prefix = f"{rel_dir}/" if rel_dir else ""
    flags = _OPEN_FLAGS & ~os.O_NOFOLLOW if batch.follow_symlinks else _OPEN_FLAGS
    open_, fstat, read, close, is_regular = os.open, os.fstat, os.read, os.close, stat.S_ISREG
    new = _CONSTRUCTORS[batch.algorithm]
    capacity = len(buffer)
    paths, entries, problems = result.paths, result.entries, result.problems
    spent = 0
    for position, name in enumerate(names):
        if spent >= budget:
            return spent, position
        try:
            fd = open_(name, flags, dir_fd=dir_fd)
        except OSError as exc:
            problems.append((prefix + name, *_problem_for(exc)))
            continue
        try:
            before = fstat(fd)
            size = before.st_size
            if not is_regular(before.st_mode):
                problems.append((prefix + name, ProblemKind.CHANGED, "no longer a regular file"))
                continue
            if size > batch.batch_bytes and not batch.solo:
                result.deferred.append((rel_dir, name, size))
                continue
            if size < capacity:  # one read gets it all; a short or long read shows below
                data = read(fd, size + 1)  # measured: cheaper than readv + a memoryview slice
                done = len(data)
                hasher = new(data)
            else:
                hasher, done = _hash_large(fd, batch, size, buffer)
            after = fstat(fd)
        except OSError as exc:
            problems.append((prefix + name, *_problem_for(exc)))
            continue
        except Exception as exc:  # one file's unexpected failure must not end the run
            problems.append((prefix + name, ProblemKind.FAILED, f"{type(exc).__name__}: {exc}"))
            continue
        finally:
            close(fd)
        spent += done
        if (
            done != after.st_size
            or size != after.st_size
            or before.st_mtime_ns != after.st_mtime_ns
            or before.st_ctime_ns != after.st_ctime_ns
        ):
            problems.append((prefix + name, ProblemKind.CHANGED, "changed while it was being read"))
            continue
        paths.append(prefix + name)
        entries.append((done, hasher.hexdigest(), after.st_mtime_ns))
    return spent, len(names)


def _hash_large(fd: int, batch: Batch, size: int, buffer: bytearray) -> tuple[_Hasher, int]:
    """Hash a file bigger than the buffer; BLAKE3 uses threads for a big enough one."""
    threads = batch.threads if size >= batch.threads_min else 1
    if threads > 1 and len(buffer) < _BLAKE3_THREADED_BUFFER:
        buffer = bytearray(_BLAKE3_THREADED_BUFFER)
    hasher = new_hasher(batch.algorithm, threads)
    return hasher, hash_fd(fd, hasher, buffer)
