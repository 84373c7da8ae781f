"""The scheduler: feed batches from the walk to an executor, collect results into a Snapshot.

Design (each default is measured in benchmarks/README.md):

* Work goes out in batches of up to ``batch_files`` names, never one future per file; the
  parent does no per-file system call, so it keeps up with both workers.
* At most ``window_per_worker`` batches per worker are in flight: memory stays bounded and
  the walk overlaps with hashing (hashing starts as soon as the first batch is full).
* A worker stops a batch once it has read ``batch_bytes`` and hands the rest back; a file
  larger than ``batch_bytes`` comes back unread and is sent again as a task of its own,
  ahead of the walk, so a few big files spread over all workers. BLAKE3 hashes a file of at
  least ``blake3_threads_min`` bytes with the threads of idle workers when it is the last work
  left (with enough big files to go round, one thread each is faster).
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
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Executor, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import resource_tracker
from operator import itemgetter
from typing import Any, TypeVar

from hashpar.errors import HashparError, WorkerCrashed
from hashpar.events import Progress, ProgressCallback, ignore_progress
from hashpar.hashing import Batch, BatchResult, Group, hash_batch, worker_init
from hashpar.models import Algorithm, FileEntry, KeyOrdered, Problem, ProblemKind, Snapshot
from hashpar.scan import Walker

__all__ = ["START_METHOD_ENV", "Settle", "Tuning", "default_jobs", "hash_tree"]

START_METHOD_ENV = "HASHPAR_START_METHOD"
"""Environment variable naming the multiprocessing start method (fork/forkserver/spawn)."""

_T = TypeVar("_T")

Settle = Callable[[str, FileEntry], bool]
"""A predicate on (path, entry) of each hashed file: True leaves it out of the snapshot."""
_SIGNAL_POLL = 0.1
"""Seconds the scheduler may sleep before it looks for a signal caught by another thread."""


@dataclass(frozen=True)
class Tuning:
    """Engine parameters; the defaults are the measured best on the benchmark corpora."""

    buffer_size: int = 1 << 20
    """Bytes per read() into the reused buffer."""
    batch_files: int = 1024
    """Most files in one batch sent to a worker."""
    batch_bytes: int = 64 << 20
    """A worker hands back the rest of its batch after reading this many bytes; larger files
    become tasks of their own."""
    blake3_threads_min: int = 1 << 30
    """A file at least this big that is the last work left is hashed by BLAKE3 with the
    threads of the otherwise idle workers."""
    window_per_worker: int = 4
    """Batches in flight per worker."""
    inline_max_files: int = 1024
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
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:  # as a process pool would: the caller sees it in result()
            future.set_exception(exc)
        return future


def hash_tree(
    walker: Walker,
    algorithm: Algorithm,
    *,
    jobs: int,
    tuning: Tuning = Tuning(),
    executor: Executor | None = None,
    on_progress: ProgressCallback = ignore_progress,
    settle: Settle | None = None,
) -> Snapshot:
    """Walk and hash the tree of ``walker`` with ``jobs`` workers; return what was found.

    ``settle`` is offered every hashed file as its result arrives; a file it returns True for
    is counted in progress but left out of the snapshot. Verify uses it to drop files that
    match the manifest at once, so a run never holds two full copies of a big tree.
    """
    run = _Run(walker, algorithm, jobs, tuning, on_progress, settle)
    source = walker.batches()
    if executor is not None:
        run.drive(executor, source)
        return run.snapshot()
    first, source = _peek_files(source, tuning.inline_max_files)
    if jobs == 1 or (
        first is not None and _total_size(walker.root, first) <= tuning.inline_max_bytes
    ):
        run.drive(_InlineExecutor(), source)
        return run.snapshot()
    pool = _start_pool(jobs)
    try:
        run.drive(pool, source)
    except BaseException:
        _kill_pool(pool)
        raise
    pool.shutdown(wait=True)  # before the snapshot: workers' memory never adds to its peak
    return run.snapshot()


class _Run:
    """The state of one hash_tree call: the queue of known work and the results so far."""

    def __init__(
        self,
        walker: Walker,
        algorithm: Algorithm,
        jobs: int,
        tuning: Tuning,
        on_progress: ProgressCallback,
        settle: Settle | None = None,
    ) -> None:
        self.walker = walker
        self.settle = settle
        self.settled = 0
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
            threads=1,
            threads_min=tuning.blake3_threads_min,
            follow_symlinks=walker.follow_symlinks,
        )
        self.queue: deque[Batch] = deque()  # known work (big files, leftovers): before the walk
        self.files: dict[str, FileEntry] = {}
        self.errors: dict[str, Problem] = {}
        self.bytes_done = 0
        self.walk_done = False

    def drive(self, executor: Executor, source: Iterator[list[Group]]) -> None:
        """Keep the window full until the walk and the queue are both exhausted."""
        window = max(1, self.jobs * self.tuning.window_per_worker)
        in_flight: set[Future[BatchResult]] = set()
        while True:
            while len(in_flight) < window:
                batch = self._next(source, busy=len(in_flight))
                if batch is None:
                    break
                in_flight.add(executor.submit(hash_batch, batch))
            if not in_flight:
                break
            # A bounded wait: the kernel may hand SIGINT to any thread that does not block it
            # (a library caller's own threads), and Python acts on it only when the main
            # thread runs Python code again (docs/reliability.md).
            done, in_flight = wait(in_flight, timeout=_SIGNAL_POLL, return_when=FIRST_COMPLETED)
            for future in done:
                self._absorb(_result(future))

    def snapshot(self) -> Snapshot:
        """Everything found, each section in sorted key order."""
        walker = self.walker
        self.errors.update(walker.errors)
        return Snapshot(
            files=KeyOrdered(self.files),
            symlinks=KeyOrdered(walker.symlinks),
            skipped=KeyOrdered(walker.skipped),
            errors=KeyOrdered(self.errors),
        )

    def _next(self, source: Iterator[list[Group]], busy: int) -> Batch | None:
        """The next task: known work (big files, leftovers) first, then the walk's next batch.

        A big file that is the last work there is (the walk is over, nothing queued) may use
        the cores no other task will: BLAKE3 then hashes it with that many threads. With
        more big files than idle workers, threads only oversubscribe the cores (measured:
        4 x 512 MiB on 2 workers, 0.207 s single-threaded vs 0.268 s threaded).
        """
        if not self.queue and not self.walk_done:
            self._pull(source)
        if not self.queue:
            return None
        batch = self.queue.popleft()
        if batch.solo and not self.queue and not self.walk_done:
            self._pull(source)  # is more work coming after this file?
        if batch.solo and not self.queue and self.walk_done and busy + 1 < self.jobs:
            batch = batch._replace(threads=self.jobs - busy)
        return batch

    def _pull(self, source: Iterator[list[Group]]) -> None:
        """Queue the walk's next batch, or note that the walk is over."""
        groups = next(source, None)
        if groups is None:
            self.walk_done = True
            self._report()
        else:
            self.queue.append(self.template._replace(groups=groups))

    def _absorb(self, result: BatchResult) -> None:
        files = zip(result.paths, map(FileEntry._make, result.entries), strict=True)
        if self.settle is None:
            self.files.update(files)
        else:
            kept = [(path, entry) for path, entry in files if not self.settle(path, entry)]
            self.settled += len(result.paths) - len(kept)
            self.files.update(kept)
        self.bytes_done += sum(map(itemgetter(0), result.entries))
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
                files_done=len(self.files) + self.settled + len(self.errors),
                bytes_done=self.bytes_done,
                walk_done=self.walk_done,
            )
        )


def _result(future: Future[_T]) -> _T:
    """A batch's result; a dead worker or an exception outside the per-file handling (a
    bug, an unpicklable result) becomes WorkerCrashed, never a bare traceback."""
    try:
        return future.result()
    except BrokenProcessPool as exc:
        raise WorkerCrashed(
            "a worker process died unexpectedly (killed, out of memory, or crashed); "
            "the run was stopped"
        ) from exc
    except (HashparError, MemoryError):
        raise
    except Exception as exc:
        detail = " ".join(f"{type(exc).__name__}: {exc}".split())
        raise WorkerCrashed(
            f"a worker failed unexpectedly ({detail}); the run was stopped"
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
    """Start ``jobs`` workers with SIGINT and SIGTERM blocked, so none dies during start-up.

    Workers (and a forkserver) inherit the blocked mask, through fork and exec alike;
    :func:`hashpar.hashing.worker_init` installs their dispositions and unblocks. The
    parent's mask is restored (and any signal that arrived meanwhile delivered) before this
    returns, so a Ctrl-C can never interrupt the pool half-way through starting a worker
    (which would leave that worker running, unknown to the pool).

    The resource tracker is started first, outside the mask: CPython 3.11's
    ``resource_tracker.ensure_running`` unblocks SIGINT and SIGTERM in its caller whatever
    the caller's mask was. It protects itself (it ignores both).
    """
    context = multiprocessing.get_context(os.environ.get(START_METHOD_ENV) or None)
    if context.get_start_method() != "fork":
        resource_tracker.ensure_running()
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    pool: ProcessPoolExecutor | None = None
    try:
        pool = ProcessPoolExecutor(
            jobs, mp_context=context, initializer=worker_init, initargs=(os.getpid(),)
        )
        for _ in range(jobs):  # non-fork start methods start workers on demand
            pool.submit(int)
    except BaseException:
        if pool is not None:
            _kill_pool(pool)
        raise
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
    return pool


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
        results = getattr(pool, "_result_queue", None)  # and this
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
            if manager.is_alive():
                _unstick(manager, results)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _unstick(manager: Any, results: Any) -> None:
    """Free a manager thread stuck reading half a result from a worker killed mid-send.

    It waits for bytes that will never come (the parent holds the pipe's write end too, so
    there is no EOF), and the interpreter's exit handler joins it without a timeout: the
    process would never exit (seen under load after Ctrl-C). Filling the pipe completes the
    message with zeros; unpickling fails, the thread sees a broken pool and ends.
    """
    writer = getattr(results, "_writer", None)
    if writer is None or writer.closed:
        return
    fd = writer.fileno()
    os.set_blocking(fd, False)
    for _ in range(40):  # at most about 2 s
        with contextlib.suppress(OSError):  # full (EAGAIN) or no reader left (EPIPE)
            os.write(fd, bytes(1 << 16))
        manager.join(timeout=0.05)
        if not manager.is_alive():
            return
