"""The scheduler: feed batches from the walk to an executor, collect results into a Snapshot.

Design (each default is measured in benchmarks/README.md):

* Work goes out in batches of up to ``batch_files`` names, never one future per file; the
  parent does no per-file system call, so it keeps up with both workers.
* At most ``window_per_worker`` batches per worker are in flight: memory stays bounded and
  the walk overlaps with hashing (hashing starts as soon as the first batch is full).
* A worker stops a batch once it has read ``batch_bytes`` and hands the rest back; a file
  larger than ``batch_bytes`` comes back unread and is sent again as a task of its own,
  ahead of the walk, so a few big files spread over all workers. BLAKE3 hashes a file of at
  least ``blake3_threads_min`` bytes with ``jobs`` threads, as b3sum does.
* ``jobs == 1``, or a tree so small that starting processes would cost more than hashing it,
  runs the very same code in-process.
* The executor is a parameter (anything shaped like ``concurrent.futures.Executor``). A pool
  the engine starts itself it also owns: on any exit other than success (Ctrl-C, SIGTERM, a
  crashed worker) its workers are terminated at once, never waited for.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar

from hashpar.errors import WorkerCrashed
from hashpar.events import Progress, ProgressCallback, ignore_progress
from hashpar.hashing import Batch, BatchResult, Group, hash_batch, worker_init
from hashpar.models import Algorithm, FileEntry, Problem, ProblemKind, Snapshot
from hashpar.scan import Walker

__all__ = ["START_METHOD_ENV", "Tuning", "default_jobs", "hash_tree"]

START_METHOD_ENV = "HASHPAR_START_METHOD"
"""Environment variable naming the multiprocessing start method (fork/forkserver/spawn)."""

_T = TypeVar("_T")
_SIGNAL_POLL = 0.1
"""Seconds the scheduler may sleep before it looks for a signal caught by another thread."""


@dataclass(frozen=True)
class Tuning:
    """Engine parameters; the defaults are the measured best on the benchmark corpora."""

    buffer_size: int = 1 << 20
    """Bytes per read() into the reused buffer."""
    batch_files: int = 256
    """Most files in one batch sent to a worker."""
    batch_bytes: int = 64 << 20
    """A worker hands back the rest of its batch after reading this many bytes; larger files
    become tasks of their own."""
    blake3_threads_min: int = 64 << 20
    """BLAKE3 uses ``jobs`` threads inside a file at least this big."""
    window_per_worker: int = 4
    """Batches in flight per worker."""
    inline_max_files: int = 256
    """A tree with at most this many files ..."""
    inline_max_bytes: int = 32 << 20
    """... and at most this many bytes is hashed in-process, without starting workers."""


def default_jobs() -> int:
    """The CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not every platform has sched_getaffinity
        return max(1, os.cpu_count() or 1)


class _InlineExecutor(Executor):
    """Runs each task at once in the calling process: the jobs == 1 / small-tree path."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def hash_tree(
    walker: Walker,
    algorithm: Algorithm,
    *,
    jobs: int,
    tuning: Tuning = Tuning(),
    executor: Executor | None = None,
    on_progress: ProgressCallback = ignore_progress,
) -> Snapshot:
    """Walk and hash the tree of ``walker`` with ``jobs`` workers; return what was found."""
    run = _Run(walker, algorithm, jobs, tuning, on_progress)
    source = walker.batches()
    if executor is not None:
        return run.drive(executor, source)
    first, source = _peek_files(source, tuning.inline_max_files)
    if jobs == 1 or (
        first is not None and _total_size(walker.root, first) <= tuning.inline_max_bytes
    ):
        return run.drive(_InlineExecutor(), source)
    pool = _start_pool(jobs)
    try:
        snapshot = run.drive(pool, source)
    except BaseException:
        _kill_pool(pool)
        raise
    pool.shutdown(wait=True)
    return snapshot


class _Run:
    """The state of one hash_tree call: the queue of known work and the results so far."""

    def __init__(
        self,
        walker: Walker,
        algorithm: Algorithm,
        jobs: int,
        tuning: Tuning,
        on_progress: ProgressCallback,
    ) -> None:
        self.walker = walker
        self.tuning = tuning
        self.jobs = jobs
        self.on_progress = on_progress
        self.template = Batch(
            root=walker.root,
            groups=[],
            algorithm=str(algorithm),
            buffer_size=tuning.buffer_size,
            batch_bytes=tuning.batch_bytes,
            solo=False,
            threads=jobs,
            threads_min=tuning.blake3_threads_min,
            follow_symlinks=walker.follow_symlinks,
        )
        self.queue: deque[Batch] = deque()  # known work (big files, leftovers): before the walk
        self.files: dict[str, FileEntry] = {}
        self.errors: dict[str, Problem] = {}
        self.bytes_done = 0
        self.walk_done = False

    def drive(self, executor: Executor, source: Iterator[list[Group]]) -> Snapshot:
        """Keep the window full until the walk and the queue are both exhausted."""
        window = max(1, self.jobs * self.tuning.window_per_worker)
        in_flight: set[Future[BatchResult]] = set()
        while True:
            while len(in_flight) < window and (batch := self._next(source)) is not None:
                in_flight.add(executor.submit(hash_batch, batch))
            if not in_flight:
                break
            # A bounded wait: under spawn/forkserver the pool's threads do not block SIGINT,
            # and a signal the kernel hands to one of them is only acted on once the main
            # thread runs Python code again (docs/reliability.md).
            done, in_flight = wait(in_flight, timeout=_SIGNAL_POLL, return_when=FIRST_COMPLETED)
            for future in done:
                self._absorb(_result(future))
        walker = self.walker
        self.errors.update(walker.errors)
        return Snapshot(
            files=_in_key_order(self.files),
            symlinks=_in_key_order(walker.symlinks),
            skipped=_in_key_order(walker.skipped),
            errors=_in_key_order(self.errors),
        )

    def _next(self, source: Iterator[list[Group]]) -> Batch | None:
        if self.queue:
            return self.queue.popleft()
        if self.walk_done:
            return None
        groups = next(source, None)
        if groups is None:
            self.walk_done = True
            self._report()
            return None
        return self.template._replace(groups=groups)

    def _absorb(self, result: BatchResult) -> None:
        for path, size, mtime_ns, digest in result.files:
            self.files[path] = FileEntry(size, digest, mtime_ns)
            self.bytes_done += size
        for path, kind, message in result.problems:
            self.errors[path] = Problem(ProblemKind(kind), message)
        # Biggest first, so the longest tasks start earliest (LPT scheduling).
        for rel_dir, name, _size in sorted(result.deferred, key=lambda d: d[2]):
            self.queue.appendleft(self.template._replace(groups=[(rel_dir, [name])], solo=True))
        if result.leftover:
            self.queue.append(self.template._replace(groups=result.leftover))
        self._report()

    def _report(self) -> None:
        self.on_progress(
            Progress(
                files_found=self.walker.files_found,
                files_done=len(self.files) + len(self.errors),
                bytes_done=self.bytes_done,
                walk_done=self.walk_done,
            )
        )


def _in_key_order(mapping: dict[str, _T]) -> dict[str, _T]:
    """A copy of ``mapping`` in sorted key order.

    Built from a sorted list of keys (8 bytes an entry), not of (key, value) tuples (72):
    on a million files that is 64 MB less at the engine's peak (docs/reliability.md).
    """
    return {key: mapping[key] for key in sorted(mapping)}


def _result(future: Future[_T]) -> _T:
    try:
        return future.result()
    except BrokenProcessPool as exc:
        raise WorkerCrashed(
            "a worker process died unexpectedly (killed, out of memory, or crashed); "
            "the run was stopped"
        ) from exc


def _peek_files(
    source: Iterator[list[Group]], limit: int
) -> tuple[list[Group] | None, Iterator[list[Group]]]:
    """Read batches until more than ``limit`` files are seen.

    Returns (all groups, when the whole walk held at most ``limit`` files, else None) and an
    iterator that yields every batch, the ones already read included.
    """
    seen: list[list[Group]] = []
    count = 0
    for groups in source:
        seen.append(groups)
        count += sum(len(names) for _, names in groups)
        if count > limit:
            return None, _chain(seen, source)
    return [group for groups in seen for group in groups], iter(seen)


def _chain(head: list[list[Group]], tail: Iterator[list[Group]]) -> Iterator[list[Group]]:
    yield from head
    yield from tail


def _total_size(root: str, groups: list[Group]) -> int:
    """Bytes in a small tree, from lstat; an entry that cannot be stat'ed counts as 0."""
    total = 0
    for rel_dir, names in groups:
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, rel_dir, name)).st_size
    return total


def _start_pool(jobs: int) -> ProcessPoolExecutor:
    """Start ``jobs`` workers so that none can be killed by Ctrl-C while it starts up.

    A worker ignores SIGINT once :func:`hashpar.hashing.worker_init` has run; before that,
    a spawned or forkserver child is a fresh interpreter that a Ctrl-C would kill with a
    traceback (or "Fatal Python error" during its imports). An ignored signal is the one
    disposition that survives fork and exec, so SIGINT is ignored in the parent while the
    workers are created (a few milliseconds), as well as blocked with SIGTERM. Under fork,
    a signal that arrives meanwhile stays pending and is delivered when this returns;
    under spawn and forkserver, CPython 3.11 clears the mask when it execs a child, so a
    Ctrl-C in that window is lost (a second one stops the run as usual).
    """
    method = os.environ.get(START_METHOD_ENV) or None
    context = multiprocessing.get_context(method)
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    handler = _ignore_sigint()
    pool: ProcessPoolExecutor | None = None
    try:
        pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=worker_init)
        for _ in range(jobs):  # non-fork start methods start workers on demand
            pool.submit(int)
    except BaseException:
        if pool is not None:
            _kill_pool(pool)
        raise
    finally:
        if handler is not None:
            signal.signal(signal.SIGINT, handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return pool


def _ignore_sigint() -> Any:
    """Ignore SIGINT (main thread only); return the handler to restore, or None."""
    if threading.current_thread() is not threading.main_thread():
        return None
    handler = signal.getsignal(signal.SIGINT)
    if handler is None:  # installed outside Python: leave it alone
        return None
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return handler


def _kill_pool(pool: ProcessPoolExecutor) -> None:
    """Terminate every worker now and cancel queued work; never wait for running tasks.

    SIGINT and SIGTERM are held back meanwhile (and delivered afterwards), so a second
    Ctrl-C cannot cut the cleanup short and leave workers running. The pool's manager thread
    is joined too: until it has closed its wake-up pipe, the interpreter's exit handler for
    process pools can race with it and print an EBADF traceback (CPython 3.11).
    """
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    try:
        processes = list((getattr(pool, "_processes", None) or {}).values())
        manager = getattr(pool, "_executor_manager_thread", None)  # shutdown() forgets it
        for process in processes:
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.join(timeout=2)
            if process.is_alive():
                process.kill()
                process.join(timeout=2)
        if manager is not None:
            manager.join(timeout=2)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
