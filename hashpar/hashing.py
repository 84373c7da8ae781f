"""Walk and hash: the code that runs inside worker processes (or in-process).

A :class:`Task` names directories to walk and files to hash; :func:`run_task` lists each
directory (:func:`hashpar.scan.list_directory`) through the same descriptor it then opens
the files with, and hashes them at once. Everything a worker receives and returns is plain
data (tuples of str and int), so it works under the fork, forkserver and spawn start methods
and with any executor that pickles.

Safety rules, applied to every file, whoever asked for it:

* directories below the root are opened one component at a time with ``O_NOFOLLOW`` (from
  the nearest directory the task still holds open: usually the parent), so a directory
  swapped for a symlink during the run cannot lead outside the root (one *moved* out while
  its subtree is walked is walked where it now is: :class:`_DirOpener`);
* a file is opened with ``O_NOFOLLOW | O_NONBLOCK`` (a FIFO swapped in cannot block us) and
  ``fstat`` of the open descriptor must say "regular file" before a byte is read;
* the file's size, mtime and ctime are compared before and after reading, and the byte count
  read must equal the size: otherwise the entry is reported as changed while being read.
"""

from __future__ import annotations

import errno
import hashlib
import os
import resource
import signal
import stat
import threading
import time
from array import array
from collections import deque
from typing import NamedTuple, Protocol

import blake3

from hashpar.kinds import (
    DIGEST_BYTES,
    INT64_MAX,
    UNKNOWN,
    UNLISTABLE,
    Algorithm,
    ProblemKind,
)
from hashpar.scan import Ancestry, Listing, Scope, list_directory

__all__ = [
    "DIGEST_BYTES",
    "Group",
    "Task",
    "TaskResult",
    "hash_fd",
    "new_hasher",
    "run_task",
    "worker_init",
]

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0)
_KEPT = 16
"""Directory descriptors a task keeps open along its current path (_DirOpener; fewer under a
low descriptor limit, _kept_limit): a tree deeper than this reopens its upper directories
from the root, as every directory once did."""
_WATCHDOG_INTERVAL = 0.25
_ORPHANED_EXIT = 3
_BLAKE3_THREADED_BUFFER = 4 << 20
"""Read size when BLAKE3 hashes one file with several threads (see benchmarks/README.md)."""


class _Hasher(Protocol):
    def update(self, data: memoryview, /) -> object: ...
    def digest(self) -> bytes: ...


Group = tuple[str, list[str]]
"""A directory relative to the root ("" for the root itself) and names of files in it."""


class Task(NamedTuple):
    """One unit of work for a worker: directories to walk, files to hash, and how."""

    scope: Scope
    """The root and the walk's rules."""
    dirs: list[tuple[str, Ancestry]]
    """Directories to walk (depth first), hashing their files as they are listed."""
    groups: list[Group]
    """Files to hash by name, before any walking: leftovers of other tasks, a big file."""
    algorithm: str
    buffer_size: int
    batch_bytes: int
    """Hand back the rest of the task after reading this many bytes; a file bigger than
    this is deferred (reported unread), to be sent again as a solo task."""
    batch_files: int
    """Hand back the rest of the task after hashing this many files."""
    solo: bool
    """True for a single big file sent on its own; it is never deferred again."""
    threads: int
    """Threads BLAKE3 may use inside one file of at least ``threads_min`` bytes."""
    threads_min: int


class TaskResult(NamedTuple):
    """What a worker sends back; every path is relative to the root.

    The files hashed travel as four columns rather than a tuple per file: pickling one
    string and one bytes object instead of a path and a hex digest per file halves what
    crosses the pipe and leaves the parent's manager thread almost nothing to unpickle
    (benchmarks/README.md, *Defaults*: small SHA-256 `-j 2` 0.708 -> 0.684 s). Sizes and
    mtimes are arrays of 64-bit integers, the form the parent keeps them in
    (:class:`hashpar.models.FileTable`): no int object is made for them on the way.
    """

    paths: str
    """Files hashed, joined by NUL (which no file name can hold); see :meth:`path_list`."""
    digests: bytes
    """Their raw digests, ``DIGEST_BYTES`` each, in the order of ``paths``."""
    sizes: array[int]
    """Their sizes: the bytes actually hashed (64-bit, as the parent keeps them)."""
    mtimes: array[int]
    """Their st_mtime_ns; kinds.UNKNOWN for one a manifest cannot record (INT64_MAX)."""
    problems: list[tuple[str, str, str]]
    """(path, ProblemKind value, message)."""
    listing: Listing
    """Symlinks, skipped entries and listing errors found; ``subdirs`` is the walk's rest:
    directories found (or given) but not walked yet."""
    found: int
    """Regular files the listings found (for progress)."""
    deferred: list[tuple[str, str, int]]
    """(directory, name, size): files larger than ``batch_bytes``, to be sent as solo tasks."""
    leftover: list[Group]
    """Files listed but not hashed when the task's budget ran out."""

    def path_list(self) -> list[str]:
        """The paths of the files hashed, in the order of the other columns."""
        return self.paths.split("\0") if self.paths else []

    def hex_digests(self) -> list[str]:
        """Their digests as lowercase hex, as a manifest records them."""
        return self.digests.hex(" ", DIGEST_BYTES).split(" ") if self.digests else []


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


class _DirOpener:
    """Opens the directories of one task, each from its nearest ancestor still open.

    Opening from the root repeats every component above a directory: on the benchmark's
    real tree (8,924 directories, 7.3 components deep on average) that was 73,868 opens and
    154 ms of a 0.89 s single-process make. A depth-first walk opens a directory's children
    right after it, and a task's directories share their upper ones, so the descriptors of
    the directories on the current path are kept (the deepest ``_KEPT``, the ones opened on
    the way down included) and a directory is opened from its nearest kept ancestor: most
    often one ``openat`` from its parent. Each component is still opened with
    ``O_NOFOLLOW`` below a descriptor that was: a symlink swapped in after a directory was
    opened is never followed (its descriptor is the real directory). What changes is how
    long a directory is held: one moved elsewhere while its subtree is walked is walked
    where it now is, as before only while its own files were hashed.
    """

    def __init__(self, root: str, follow: bool) -> None:
        self.root = root
        self.follow = follow
        self.limit = 0 if follow else _kept_limit()
        self.kept: list[tuple[str, int]] = []  # (rel_dir, fd), each below the one before

    def open(self, rel_dir: str) -> int:
        """A new descriptor of ``rel_dir``, for the caller to :meth:`keep` (or close).

        Out of descriptors all the same, it gives back every one it keeps and opens
        ``rel_dir`` from the root, holding two at a time as every directory once was.
        """
        if self.follow:  # links are followed: one open by path, as the kernel resolves it
            return os.open(os.path.join(self.root, rel_dir), _DIR_FLAGS)
        if self.limit:
            try:
                return self._open_kept(rel_dir)
            except OSError as exc:
                if exc.errno not in (errno.EMFILE, errno.ENFILE) or not self.kept:
                    raise
            self.close()
        fd = os.open(self.root, _DIR_FLAGS)
        try:
            for part in rel_dir.split("/") if rel_dir else ():
                child = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
                os.close(fd)
                fd = child
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _open_kept(self, rel_dir: str) -> int:
        kept = self.kept
        while kept and not _is_below(rel_dir, kept[-1][0]):
            os.close(kept.pop()[1])
        if not kept:
            self.keep("", os.open(self.root, _DIR_FLAGS))
        base, fd = kept[-1]
        if base == rel_dir:  # the root, or a directory again (its leftover files, then its walk)
            return kept.pop()[1]
        parts = (rel_dir[len(base) + 1 :] if base else rel_dir).split("/")
        for part in parts[:-1]:  # the directories on the way down are kept for the next ones
            fd = os.open(part, _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)
            base = f"{base}/{part}" if base else part
            self.keep(base, fd)
        return os.open(parts[-1], _DIR_FLAGS | os.O_NOFOLLOW, dir_fd=fd)

    def keep(self, rel_dir: str, fd: int) -> None:
        """Hold ``fd`` (from :meth:`open`) for the directories below ``rel_dir`` that come next."""
        if not self.limit:
            os.close(fd)
            return
        self.kept.append((rel_dir, fd))
        if len(self.kept) > self.limit:  # the shallowest goes: never the one just added
            os.close(self.kept.pop(0)[1])

    def close(self) -> None:
        while self.kept:
            os.close(self.kept.pop()[1])


def _kept_limit() -> int:
    """How many directories a task may keep open: ``_KEPT``, or a sixteenth of a lower
    descriptor limit (``ulimit -n 64``: 4; 15 or less: none, every directory is opened from
    the root), so the rest of the table stays free for the files, listings and pipes."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return _KEPT
    return min(_KEPT, soft // 16)


def _is_below(rel_dir: str, ancestor: str) -> bool:
    """True when ``rel_dir`` is ``ancestor`` or lies below it ("" is the root)."""
    return not ancestor or rel_dir == ancestor or rel_dir.startswith(ancestor + "/")


def _problem_for(exc: OSError) -> tuple[str, str]:
    """Map an OSError to (ProblemKind value, message)."""
    if exc.errno == errno.ENOENT:
        return ProblemKind.VANISHED, "vanished before it could be read"
    if exc.errno == errno.ELOOP:
        return ProblemKind.CHANGED, "replaced by a symbolic link during the run"
    if exc.errno == errno.ENOTDIR:
        return ProblemKind.CHANGED, "a directory on its path was replaced during the run"
    return ProblemKind.UNREADABLE, exc.strerror or str(exc)


def run_task(task: Task) -> TaskResult:
    """Hash the task's files, then walk its directories, until its budget is spent.

    Per-file and per-directory failures become problems, never exceptions. What the budget
    did not cover goes back in ``leftover`` (files listed, not hashed) and in
    ``listing.subdirs`` (directories not walked), for the parent to hand out again.
    """
    work = _Work(task)
    opener = _DirOpener(task.scope.root, task.scope.follow_symlinks)
    try:
        groups = deque(task.groups)
        while groups and not work.spent():
            rel_dir, names = groups.popleft()
            try:
                dir_fd = opener.open(rel_dir)
            except OSError as exc:
                kind, message = _problem_for(exc)
                prefix = f"{rel_dir}/" if rel_dir else ""
                work.problems.extend((prefix + name, kind, message) for name in names)
                continue
            try:
                work.hash_names(dir_fd, rel_dir, names)
            finally:
                opener.keep(rel_dir, dir_fd)
        work.leftover.extend(groups)
        work.walk(opener)
    finally:
        opener.close()
    return work.result()


class _Work:
    """One task's progress: what it has found and hashed, and what its budget still allows."""

    def __init__(self, task: Task) -> None:
        self.task = task
        self.buffer: bytearray | None = None  # made for the first file bigger than one read
        self.bytes_left: float = float("inf") if task.solo else task.batch_bytes
        self.files_left = task.batch_files
        self.paths: list[str] = []
        self.digests = bytearray()
        self.sizes: list[int] = []
        self.mtimes: list[int] = []
        self.problems: list[tuple[str, str, str]] = []
        self.listing = Listing([], [], [], [])
        self.found = 0
        self.deferred: list[tuple[str, str, int]] = []
        self.leftover: list[Group] = []

    def spent(self) -> bool:
        return self.bytes_left <= 0 or self.files_left <= 0

    def result(self) -> TaskResult:
        mtimes = self.mtimes
        if mtimes and not -INT64_MAX <= min(mtimes) <= max(mtimes) <= INT64_MAX:
            # A file dated before 1677 or after 2262 (touch -d 2400-01-01 works on ext4):
            # its mtime is recorded as unknown, as an imported entry's is, so the manifest
            # stays one that hashpar and other JSON readers can read back. Verify never
            # compares mtimes. One min and max per task in C, so the common case costs nothing.
            mtimes = [m if -INT64_MAX <= m <= INT64_MAX else UNKNOWN for m in mtimes]
        return TaskResult(
            "\0".join(self.paths),
            bytes(self.digests),
            array("q", self.sizes),
            array("q", mtimes),
            self.problems,
            self.listing,
            self.found,
            self.deferred,
            self.leftover,
        )

    def walk(self, opener: _DirOpener) -> None:
        """Walk the task's directories depth first, hashing each one's files as it is
        listed, until the budget is spent; the directories left go back in the listing."""
        scope = self.task.scope
        is_excluded = scope.excluder()
        subdirs = self.listing.subdirs
        stack = self.task.dirs[::-1]
        while stack and not self.spent():
            rel_dir, ancestry = stack.pop()
            try:
                dir_fd = opener.open(rel_dir)
            except OSError as exc:
                self.listing.errors.append((rel_dir or ".", *_listing_problem(exc)))
                continue
            try:
                try:
                    names = list_directory(
                        scope, is_excluded, dir_fd, rel_dir, ancestry, self.listing
                    )
                except OSError as exc:  # the listing failed part-way
                    self.listing.errors.append((rel_dir or ".", *_listing_problem(exc)))
                    names = []
                subdirs.sort(reverse=True)  # the first in sorted order on top of the stack
                stack.extend(subdirs)
                subdirs.clear()
                self.found += len(names)
                self.hash_names(dir_fd, rel_dir, names)
            finally:
                opener.keep(rel_dir, dir_fd)
        subdirs.extend(reversed(stack))

    def hash_names(self, dir_fd: int, rel_dir: str, names: list[str]) -> None:
        """Hash ``names`` (files of one directory) until the budget is spent; the rest go
        back as a leftover group.

        This loop runs once per file of the tree, so it is written for speed: names are
        bound locally, and a file that fits the buffer costs open, fstat, one read, fstat,
        close and one hashing call (three for BLAKE3, on one reused hasher).
        """
        task = self.task
        prefix = f"{rel_dir}/" if rel_dir else ""
        flags = _OPEN_FLAGS & ~os.O_NOFOLLOW if task.scope.follow_symlinks else _OPEN_FLAGS
        open_, fstat, read, close, is_regular = os.open, os.fstat, os.read, os.close, stat.S_ISREG
        # BLAKE3: one hasher reset per small file, not one made per file. Measured per 1 KiB
        # file: blake3(data).hexdigest() 1.69 us, reset + update + digest().hex() 1.43 us
        # (the binding's constructor costs 0.13 us, its hexdigest 0.28 against 0.11 for
        # digest). SHA-256, the other algorithm: hashlib has no reset, and sha256(data) is
        # one call (0.73 us). Digests stay raw bytes here: the parent hexes a task's at once
        # (TaskResult.hex_digests). An unknown algorithm fails here, once.
        reused = blake3.blake3() if Algorithm(task.algorithm) == Algorithm.BLAKE3 else None
        sha256 = hashlib.sha256
        capacity = task.buffer_size
        paths, digests, sizes, mtimes = self.paths, self.digests, self.sizes, self.mtimes
        problems = self.problems
        bytes_left, files_left = self.bytes_left, self.files_left
        for position, name in enumerate(names):
            if bytes_left <= 0 or files_left <= 0:
                self.leftover.append((rel_dir, names[position:]))
                break
            files_left -= 1
            try:
                fd = open_(name, flags, dir_fd=dir_fd)
            except OSError as exc:
                problems.append((prefix + name, *_problem_for(exc)))
                continue
            try:
                before = fstat(fd)
                size = before.st_size
                if not is_regular(before.st_mode):
                    problems.append(
                        (prefix + name, ProblemKind.CHANGED, "no longer a regular file")
                    )
                    continue
                if size > task.batch_bytes and not task.solo:
                    self.deferred.append((rel_dir, name, size))
                    continue
                if size < capacity:  # one read gets it all; a short or long read shows below
                    data = read(fd, size + 1)  # measured: cheaper than readv + memoryview
                    done = len(data)
                    if reused is None:
                        digest = sha256(data).digest()
                    else:
                        reused.reset()
                        reused.update(data)
                        digest = reused.digest()
                else:
                    hasher, done = self._hash_large(fd, size)
                    digest = hasher.digest()
                after = fstat(fd)
            except OSError as exc:
                problems.append((prefix + name, *_problem_for(exc)))
                continue
            except Exception as exc:  # one file's unexpected failure must not end the run
                message = f"{type(exc).__name__}: {exc}"
                problems.append((prefix + name, ProblemKind.FAILED, message))
                continue
            finally:
                close(fd)
            bytes_left -= done
            if (
                done != after.st_size
                or size != after.st_size
                or before.st_mtime_ns != after.st_mtime_ns
                or before.st_ctime_ns != after.st_ctime_ns
            ):
                problems.append(
                    (prefix + name, ProblemKind.CHANGED, "changed while it was being read")
                )
                continue
            paths.append(prefix + name)
            digests += digest
            sizes.append(done)
            mtimes.append(after.st_mtime_ns)
        self.bytes_left, self.files_left = bytes_left, files_left

    def _hash_large(self, fd: int, size: int) -> tuple[_Hasher, int]:
        """Hash a file bigger than the buffer; BLAKE3 uses threads for a big enough one."""
        task = self.task
        threads = task.threads if size >= task.threads_min else 1
        if threads > 1 and task.buffer_size < _BLAKE3_THREADED_BUFFER:
            buffer = bytearray(_BLAKE3_THREADED_BUFFER)
        else:
            if self.buffer is None:
                self.buffer = bytearray(task.buffer_size)
            buffer = self.buffer
        hasher = new_hasher(task.algorithm, threads)
        return hasher, hash_fd(fd, hasher, buffer)


def _listing_problem(exc: OSError) -> tuple[str, str]:
    """(ProblemKind value, message) for a directory that could not be opened or listed."""
    kind = ProblemKind.VANISHED if exc.errno == errno.ENOENT else ProblemKind.UNREADABLE
    return kind, f"{UNLISTABLE}{exc.strerror or exc}"
