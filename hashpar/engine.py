"""The scheduler: hand tasks to an executor, collect their results into a Snapshot.

Design (each default is measured in benchmarks/README.md):

* The workers walk as well as hash. A task is a list of directories to walk depth first
  (listing each and hashing its files at once) and of files to hash by name; a worker
  stops once it has hashed ``batch_files`` files or read ``batch_bytes`` bytes and hands the
  rest back: files listed but not hashed (*leftover*) and directories not yet walked. The
  parent only splits that rest into new tasks and merges results: no per-entry work, no
  per-file system call, never one future per file.
* At most ``window_per_worker`` tasks per worker are in flight: memory stays bounded. Work
  handed back is split (directories into up to two parts per worker) so idle workers get a
  share of a tree whose shape nobody knows in advance.
* A file larger than ``batch_bytes`` comes back unread and is sent again as a task of its
  own, ahead of everything else, biggest first, so a few big files spread over all workers.
  BLAKE3 hashes a file of at least ``blake3_threads_min`` bytes with the threads of idle
  workers when it is the last work left (with enough big files to go round, one thread
  each is faster).
* The first task runs in-process with a small budget (``inline_max_files``,
  ``inline_max_bytes``): a tree it covers is done without starting a process. ``jobs ==
  1`` runs every task in-process. It is the same code either way.
* The executor is a parameter (anything shaped like ``concurrent.futures.Executor``). A pool
  the engine starts itself it also owns: on any exit other than success (Ctrl-C, SIGTERM, a
  crashed worker) its workers are terminated at once, never waited for.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
from array import array
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, BrokenExecutor, Executor, Future, wait
from dataclasses import dataclass
from operator import itemgetter, not_
from typing import TYPE_CHECKING, Any, TypeVar

from hashpar.errors import HashparError, WorkerCrashed
from hashpar.events import Progress, ProgressCallback, ignore_progress
from hashpar.hashing import Group, Task, TaskResult, run_task, worker_init
from hashpar.kinds import DIGEST_BYTES, UNKNOWN, known
from hashpar.models import (
    Algorithm,
    FileEntry,
    FileTable,
    KeyOrdered,
    Problem,
    ProblemKind,
    Snapshot,
    SpecialKind,
)
from hashpar.scan import Ancestry, Scope

if TYPE_CHECKING:  # the pool's modules cost 5 ms to import: only runs that start one pay
    from concurrent.futures import ProcessPoolExecutor

__all__ = [
    "START_METHOD_ENV",
    "Settle",
    "Tuning",
    "default_jobs",
    "hash_tree",
    "new_task",
    "worker_pool",
]

START_METHOD_ENV = "HASHPAR_START_METHOD"
"""Environment variable naming the multiprocessing start method (fork/forkserver/spawn)."""

_T = TypeVar("_T")

Settle = Callable[[list[str], list[FileEntry]], list[bool]]
"""Offered the files of each result at once: their paths, and their entries row for row.
Returns one flag per file, True to leave it out of the snapshot."""
_SIGNAL_POLL = 0.1
"""Seconds the scheduler may sleep before it looks for a signal caught by another thread."""
_MANAGER_GRACE = 0.1
"""Seconds a killed pool's manager thread gets to end by itself before it is unstuck: one
that is not stuck ends within milliseconds of its workers (a 2 s grace made a verify
stopped by a late manifest error, with many results in flight, take 2.2 s instead of 0.2
in 4 of 10 runs)."""


@dataclass(frozen=True)
class Tuning:
    """Engine parameters; the defaults are the measured best on the benchmark corpora."""

    buffer_size: int = 1 << 20
    """Bytes per read() into the reused buffer."""
    batch_files: int = 1024
    """A worker hands back the rest of its task after hashing this many files."""
    batch_bytes: int = 64 << 20
    """A worker hands back the rest of its task after reading this many bytes; larger files
    become tasks of their own."""
    blake3_threads_min: int = 1 << 30
    """A file at least this big that is the last work left is hashed by BLAKE3 with the
    threads of the otherwise idle workers."""
    window_per_worker: int = 4
    """Tasks in flight per worker."""
    inline_max_files: int = 1024
    """The first task, run in-process, hashes at most this many files ...
    (a tree it covers whole needs no worker process)"""
    inline_max_bytes: int = 32 << 20
    """... and reads at most this many bytes."""


def default_jobs() -> int:
    """The CPUs this process may run on (its affinity mask), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not every platform has sched_getaffinity
        return max(1, os.cpu_count() or 1)


def new_task(scope: Scope, algorithm: Algorithm | str, tuning: Tuning = Tuning()) -> Task:
    """A task with nothing to do yet, set up from ``tuning``; ``_replace`` gives it
    directories to walk or files to hash."""
    return Task(
        scope=scope,
        dirs=[],
        groups=[],
        algorithm=str(algorithm),
        buffer_size=tuning.buffer_size,
        batch_bytes=tuning.batch_bytes,
        batch_files=tuning.batch_files,
        solo=False,
        threads=1,
        threads_min=tuning.blake3_threads_min,
    )


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
    scope: Scope,
    algorithm: Algorithm,
    *,
    jobs: int,
    tuning: Tuning = Tuning(),
    executor: Executor | None = None,
    on_progress: ProgressCallback = ignore_progress,
    settle: Settle | None = None,
    alongside: Sequence[Callable[[], object]] = (),
) -> Snapshot:
    """Walk and hash the tree of ``scope`` with ``jobs`` workers; return what was found.

    ``settle`` is offered the hashed files of each result as it arrives, all at once (one
    call per result, not per file); a file it flags True is counted in progress but left
    out of the snapshot. Verify uses it to drop files that match the manifest at once, so a
    run never holds two full copies of a big tree.

    ``alongside`` are steps called in order, in this process, one per round: each right
    after the round's tasks are handed to the executor and before their results are taken
    in, so its work overlaps theirs. The first step runs before any result is taken in (and
    so before ``settle`` is first called): with workers, while the root's task runs; it
    follows the in-process first task that tells whether the tree needs workers at all.
    Every step runs, however small the tree. An exception a step raises ends the run (a
    pool the engine started is terminated) and propagates.

    A step that returns an iterator (a generator function, say) is run a piece at a time:
    one item per round while tasks are running. The work a result hands back is queued as
    it arrives, so the workers never wait for the step; the files it found are taken in,
    and offered to ``settle``, once the step is done. It is run through at once when no
    task is in flight, when the engine runs the tasks in-process (``jobs == 1``), or
    as soon as a window's worth of results waits (their memory stays bounded). Verify reads
    its manifest's entries so, a piece of 256 KiB per round (hashpar.api.verify_tree).
    """
    run = _Run(scope, algorithm, jobs, tuning, on_progress, settle, alongside)
    try:
        if executor is not None:
            run.drive(executor)
            return run.snapshot()
        if jobs == 1 or run.probe():
            run.drive(_InlineExecutor())
            return run.snapshot()
        with worker_pool(jobs) as pool:
            run.drive(pool)
        return run.snapshot()  # after the shutdown: workers' memory never adds to its peak
    finally:
        run.abandon_step()


@contextlib.contextmanager
def worker_pool(jobs: int) -> Iterator[Executor]:
    """A pool of ``jobs`` workers started now, for ``executor=``, owned like the engine's own.

    Start it before loading something big: under the fork start method a worker starts as
    a copy of its parent, and every page the parent writes afterwards (while it decodes a
    manifest, say) is then held twice. Measured on a 100,000-entry verify: workers forked
    after the manifest was loaded held 70 MB PSS between them. On an exception (Ctrl-C
    included) the workers are terminated at once; otherwise the pool is shut down and its
    workers waited for.
    """
    started: list[ProcessPoolExecutor] = []
    try:
        _start_pool(jobs, started)
        yield started[0]
    except BaseException:
        for pool in started:
            _kill_pool(pool)
        raise
    started[0].shutdown(wait=True)


class _Run:
    """The state of one hash_tree call: the queue of known work and the results so far."""

    def __init__(
        self,
        scope: Scope,
        algorithm: Algorithm,
        jobs: int,
        tuning: Tuning,
        on_progress: ProgressCallback,
        settle: Settle | None,
        alongside: Sequence[Callable[[], object]] = (),
    ) -> None:
        self.scope = scope
        self.steps = deque(alongside)
        self.running: Iterator[object] | None = None  # a step being run a piece at a time
        self.parked: list[TaskResult] = []  # results whose files wait for that step to end
        self.tuning = tuning
        self.jobs = jobs
        self.window = max(1, jobs * tuning.window_per_worker)
        self.on_progress = on_progress
        self.settle = settle
        self.template = new_task(scope.below([]), algorithm, tuning)
        root = os.stat(scope.root)
        ancestry = ((root.st_dev, root.st_ino),) if scope.follow_symlinks else ()
        self.queue: deque[Task] = deque(  # big files first, then leftovers, then directories
            [self.template._replace(scope=scope, dirs=[("", ancestry)])]
        )
        self.in_flight: dict[Future[TaskResult], Task] = {}
        self.paths: list[str] = []  # the files hashed, as FileTable's columns
        self.digests = bytearray()
        self.sizes = array("q")
        self.mtimes = array("q")
        self.symlinks: dict[str, str] = {}
        self.skipped: dict[str, SpecialKind] = {}
        self.errors: dict[str, Problem] = {}
        self.found = 0
        self.settled = 0
        self.bytes_done = 0

    def probe(self) -> bool:
        """Run the first task in-process with the small-tree budget; True when that was the
        whole tree, so no worker needs starting.

        Measured (benchmarks/README.md): a 400-file tree takes 7.5 ms in-process and 16-20
        ms with a pool, whose start alone is most of that.
        """
        tuning = self.tuning
        task = self.queue.popleft()._replace(
            batch_files=tuning.inline_max_files, batch_bytes=tuning.inline_max_bytes
        )
        result = _result(_InlineExecutor().submit(run_task, task))
        self._step(overlap=False)  # no worker runs yet
        self._absorb(result)
        return not self.queue

    def drive(self, executor: Executor) -> None:
        """Keep the window full until the queue is empty and nothing is in flight."""
        in_flight = self.in_flight
        concurrent = not isinstance(executor, _InlineExecutor)
        while True:
            while len(in_flight) < self.window:
                task = self._next()
                if task is None:
                    break
                in_flight[executor.submit(run_task, task)] = task
            # A step in pieces overlaps the tasks in flight; -j 1 has nothing to overlap.
            self._step(overlap=concurrent and bool(in_flight))
            if not in_flight:
                while self.steps:
                    self._step(overlap=False)
                break
            # A bounded wait: the kernel may hand SIGINT to any thread that does not block it
            # (a library caller's own threads), and Python acts on it only when the main
            # thread runs Python code again (docs/reliability.md). While a step runs a piece
            # at a time, only a look: its next piece is due.
            timeout = 0 if self.running is not None else _SIGNAL_POLL
            done, _ = wait(in_flight, timeout=timeout, return_when=FIRST_COMPLETED)
            for future in done:
                del in_flight[future]
                self._absorb(_result(future))

    def _step(self, overlap: bool) -> None:
        """Run the step in progress, or else the next ``alongside`` step: one piece of it
        when it is in pieces and ``overlap`` (tasks are running meanwhile), else to its end.
        Once a step in pieces is done, record the results parked meanwhile."""
        if self.running is None:
            if not self.steps:
                return
            outcome = self.steps.popleft()()
            if not isinstance(outcome, Iterator):
                return
            self.running = outcome
        for _ in self.running:
            if overlap:
                return
        self.running = None
        parked, self.parked = self.parked, []
        for result in parked:
            self._record(result)

    def abandon_step(self) -> None:
        """Close a step in pieces that an exception left half-way, so that its cleanup
        (verify's manifest file) runs now rather than whenever it is collected."""
        running, self.running = self.running, None
        if isinstance(running, Generator):
            running.close()

    def snapshot(self) -> Snapshot:
        """Everything found, each section in sorted key order."""
        return Snapshot(
            files=FileTable(self.paths, self.digests, self.sizes, self.mtimes),
            symlinks=KeyOrdered(self.symlinks),
            skipped=KeyOrdered(self.skipped),
            errors=KeyOrdered(self.errors),
        )

    def _next(self) -> Task | None:
        """The next task: big files first, then leftovers, then directories to walk.

        A big file that is the last work there will be (nothing queued, nothing in flight
        that could find more) may use the cores no other task will: BLAKE3 then hashes it
        with that many threads. With more big files than idle workers, threads only
        oversubscribe the cores (measured: 4 x 512 MiB on 2 workers, 0.207 s
        single-threaded vs 0.268 s threaded).
        """
        if not self.queue:
            return None
        task = self.queue.popleft()
        busy = len(self.in_flight)
        if task.solo and not self.queue and busy + 1 < self.jobs and self._walk_done():
            task = task._replace(threads=self.jobs - busy)
        return task

    def _walk_done(self) -> bool:
        """True when no task queued or in flight can find more work (only solo files are)."""
        return all(task.solo for task in itertools.chain(self.queue, self.in_flight.values()))

    def _absorb(self, result: TaskResult) -> None:
        """Take in a result: queue the work it hands back, then take in its files (once the
        step in progress, if any, is done: until then ``settle`` may not be ready)."""
        self._queue_work(result)
        if self.running is None:
            self._record(result)
            return
        self.parked.append(result)
        if len(self.parked) >= self.window:  # enough waiting: the rest of the step at once
            self._step(overlap=False)

    def _record(self, result: TaskResult) -> None:
        """Record what a result found: its files (offered to ``settle``, if given), its
        symlinks, skipped entries and problems."""
        paths = result.path_list()
        if self.settle is None:  # the columns as they come: no object per file but its path
            self.paths += paths
            self.digests += result.digests
            self.sizes += result.sizes
            self.mtimes += result.mtimes
        else:
            self._settle(paths, result)
        self.bytes_done += sum(result.sizes)
        listing = result.listing
        self.symlinks.update(listing.symlinks)
        self.skipped.update((path, SpecialKind(kind)) for path, kind in listing.skipped)
        for path, kind, message in itertools.chain(result.problems, listing.errors):
            self.errors[path] = Problem(ProblemKind(kind), message)
        self.found += result.found
        self._report()

    def _queue_work(self, result: TaskResult) -> None:
        """Queue what a result hands back: big files, leftover files, directories."""
        # Biggest first, so the longest tasks start earliest (LPT scheduling).
        for rel_dir, name, _size in sorted(result.deferred, key=itemgetter(2)):
            self.queue.appendleft(self.template._replace(groups=[(rel_dir, [name])], solo=True))
        handled = len(result.sizes) + len(result.problems) + len(result.deferred)
        self._queue_leftover(result.leftover, handled)
        self._queue_dirs(result.listing.subdirs)

    def _settle(self, paths: list[str], result: TaskResult) -> None:
        """Offer the result's files to ``settle`` as FileEntry; keep the rows it does not take."""
        assert self.settle is not None
        mtimes: Iterable[int | None] = result.mtimes
        if UNKNOWN in result.mtimes:  # rare: a call per file only then
            mtimes = list(map(known, result.mtimes))
        columns = zip(result.sizes, result.hex_digests(), mtimes, strict=True)
        settled = self.settle(paths, list(itertools.starmap(FileEntry, columns)))
        if len(settled) != len(paths):
            raise ValueError(f"settle returned {len(settled)} flags for {len(paths)} files")
        kept = list(itertools.compress(range(len(paths)), map(not_, settled)))
        self.settled += len(paths) - len(kept)
        width = DIGEST_BYTES
        for row in kept:
            self.paths.append(paths[row])
            self.digests += result.digests[row * width : (row + 1) * width]
            self.sizes.append(result.sizes[row])
            self.mtimes.append(result.mtimes[row])

    def _queue_leftover(self, groups: list[Group], handled: int) -> None:
        """Files listed but not hashed, in tasks of as many names as the task that handed
        them back ``handled`` (at most ``batch_files``): each is expected to fit one budget,
        so no name travels back and forth more than once or twice."""
        size = max(1, min(self.tuning.batch_files, handled))
        chunk: list[Group] = []
        count = 0
        for rel_dir, names in groups:
            position = 0
            while position < len(names):
                part = names[position : position + size - count]
                chunk.append((rel_dir, part))
                count += len(part)
                position += len(part)
                if count >= size:
                    self.queue.append(self.template._replace(groups=chunk))
                    chunk, count = [], 0
        if chunk:
            self.queue.append(self.template._replace(groups=chunk))

    def _queue_dirs(self, dirs: list[tuple[str, Ancestry]]) -> None:
        """Directories still to walk, split so that idle workers get a share: their sizes
        are unknown, and a task walks only until its budget is spent, handing the rest back."""
        if not dirs:
            return
        parts = min(len(dirs), 2 * self.jobs) if len(self.queue) < self.window else 1
        step = -(-len(dirs) // parts)
        for start in range(0, len(dirs), step):
            chunk = dirs[start : start + step]
            scope = self.scope.below([rel for rel, _ in chunk])
            self.queue.append(self.template._replace(scope=scope, dirs=chunk))

    def _report(self) -> None:
        self.on_progress(
            Progress(
                files_found=self.found,
                files_done=len(self.paths) + self.settled + len(self.errors),
                bytes_done=self.bytes_done,
                walk_done=self._walk_done(),
            )
        )


def _result(future: Future[_T]) -> _T:
    """A batch's result; a dead worker or an exception outside the per-file handling (a
    bug, an unpicklable result) becomes WorkerCrashed, never a bare traceback."""
    try:
        return future.result()
    except BrokenExecutor as exc:  # BrokenProcessPool, without importing its module
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


def _start_pool(jobs: int, started: list[ProcessPoolExecutor]) -> None:
    """Start ``jobs`` workers with SIGINT and SIGTERM blocked, so none dies during start-up,
    and append the pool to ``started``.

    Workers (and a forkserver) inherit the blocked mask, through fork and exec alike;
    :func:`hashpar.hashing.worker_init` installs their dispositions and unblocks. The
    parent's mask is restored (and any signal that arrived meanwhile delivered) before this
    returns, so a Ctrl-C can never interrupt the pool half-way through starting a worker
    (which would leave that worker running, unknown to the pool). The pool is handed over
    in ``started`` while signals are still blocked: a Ctrl-C delivered when the mask is
    restored raises in this function or just after it returns, and the caller, whose
    ``try`` holds this call, still has the pool to stop. (Returning it would lose it then:
    seen as workers outliving a Ctrl-C, tests/faults/test_fault_process.py.)

    The resource tracker is started first, outside the mask: CPython 3.11's
    ``resource_tracker.ensure_running`` unblocks SIGINT and SIGTERM in its caller whatever
    the caller's mask was. It protects itself (it ignores both).
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from multiprocessing import resource_tracker

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
        started.append(pool)
    except BaseException:
        if pool is not None:
            _kill_pool(pool)
        raise
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


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
            manager.join(timeout=_MANAGER_GRACE)
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
