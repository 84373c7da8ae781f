"""How much of two cores ProcessPoolExecutor can give hashpar's work: the `-j 2` ceiling.

    python benchmarks/ceiling.py [--dir DIR] [--rounds N] [--algo sha256|blake3] [--quick]

The work of a make of the small corpus (made by run.py under DIR, or here if missing;
``--quick``: the quick run's 400 files), cut up in advance into fixed tasks: the leaf
directories, about 1,024 files a task (hashpar's ``batch_files``), each walked and hashed
by hashpar's own worker function (``hashpar.hashing.run_task``: list the directory, then
open, fstat, read, hash, fstat, close each file). Timed in this process, alternating round
by round:

- *one process*: every task run here, one after the other (what ``-j 1`` does);
- *pool*: ``ProcessPoolExecutor(2)`` (fork), every task submitted at once and the results
  only collected. Nothing else runs in the parent: no window, no work found as the walk
  goes, no merge. No use of the pool can cost its parent less. Also with tasks of about
  256 and 4,096 files: the pool costs something per task, and fewer tasks balance worse;
- *two forks*: two child processes, each running half of the tasks and sending each
  result, pickled, back through its own pipe, the parent receiving them: the same work and
  the same bytes crossing, without the pool's two threads in the parent;
- ``make_manifest`` with ``jobs=1`` and ``jobs=2``: hashpar's engine on the same tree, in
  this process (its walk, scheduling and merge; no JSON written);
- the command ``hashpar make -j 1`` and ``-j 2`` (``-q``, output to /dev/null).

Prints the medians, each arrangement's speed-up over its one-process run, and the ceiling
of the command's ``-j 2`` speed-up: its ``-j 1`` time with the one-process run of the tasks
replaced by the pool's, at its best task size. That is what ``-j 2`` would take if the
engine cost its parent nothing at all; the command's start-up, sort and output stay
serial. This is the measurement behind the `-j 2` row's analysis in benchmarks/README.md
("The bar").
"""

from __future__ import annotations

import functools
import multiprocessing
import os
import pickle
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing.connection import Connection, wait
from pathlib import Path

import corpora

from hashpar import make_manifest
from hashpar.engine import new_task
from hashpar.hashing import Task, run_task
from hashpar.scan import Ancestry, Scope


def fixed_tasks(root: Path, algo: str, files_per_task: int) -> list[Task]:
    """The leaf directories of ``root`` in order, about ``files_per_task`` files a task, each
    task walking and hashing its directories with no budget (nothing is handed back)."""
    template = new_task(Scope(str(root)), algo)._replace(batch_files=1 << 62, batch_bytes=1 << 62)
    tasks: list[Task] = []
    dirs: list[tuple[str, Ancestry]] = []
    count = 0
    for directory, subdirs, names in sorted(os.walk(root)):
        if subdirs:
            if names:
                sys.exit(f"{directory}: files outside the leaf directories; not the small corpus")
            continue
        dirs.append((os.path.relpath(directory, root), ()))
        count += len(names)
        if count >= files_per_task:
            tasks.append(template._replace(dirs=dirs))
            dirs, count = [], 0
    if dirs:
        tasks.append(template._replace(dirs=dirs))
    return tasks


def one_process(tasks: list[Task]) -> int:
    return sum(len(run_task(task).sizes) for task in tasks)


def pool(tasks: list[Task]) -> int:
    context = multiprocessing.get_context("fork")
    with ProcessPoolExecutor(2, mp_context=context) as executor:
        futures = [executor.submit(run_task, task) for task in tasks]
        return sum(len(future.result().sizes) for future in as_completed(futures))


def two_forks(tasks: list[Task]) -> int:
    readers: list[Connection] = []
    pids = []
    half = len(tasks) // 2
    for part in (tasks[:half], tasks[half:]):
        reader, writer = multiprocessing.Pipe(duplex=False)
        pid = os.fork()
        if pid == 0:  # the child: its half, each result sent as the pool's workers send one
            reader.close()
            for task in part:
                writer.send_bytes(pickle.dumps(run_task(task)))
            writer.send_bytes(b"")
            os._exit(0)
        writer.close()
        readers.append(reader)
        pids.append(pid)
    files = 0
    while readers:
        for ready in wait(readers):
            assert isinstance(ready, Connection)
            data = ready.recv_bytes()
            if data:
                files += len(pickle.loads(data).sizes)
            else:
                readers.remove(ready)
    for pid in pids:
        os.waitpid(pid, 0)
    return files


def library(jobs: int, root: Path, algo: str) -> Callable[[], int]:
    return lambda: len(make_manifest(root, algorithm=algo, jobs=jobs).files)


def command(jobs: int, root: Path, algo: str) -> Callable[[], int]:
    def run() -> int:
        argv = [sys.executable, "-m", "hashpar", "make", "-q", "-j", str(jobs), "--algo", algo]
        subprocess.run([*argv, str(root)], stdout=subprocess.DEVNULL, check=True)
        return 0

    return run


def main() -> None:
    args, root = corpora.small_tree_arguments((__doc__ or "").splitlines()[0])
    tasks = fixed_tasks(root, args.algo, 1024)
    pools = {size: fixed_tasks(root, args.algo, size) for size in (256, 1024, 4096)}
    runs: dict[str, Callable[[], int]] = {
        "tasks in one process": lambda: one_process(tasks),
        **{
            f"tasks through a pool of 2, {size} a task": functools.partial(pool, some)
            for size, some in pools.items()
        },
        "tasks in two forks, results piped back": lambda: two_forks(tasks),
        "make_manifest, jobs=1": library(1, root, args.algo),
        "make_manifest, jobs=2": library(2, root, args.algo),
        "command, -j 1": command(1, root, args.algo),
        "command, -j 2": command(2, root, args.algo),
    }
    files = {label: run() for label, run in runs.items()}  # untimed: warms the page cache
    if len({count for count in files.values() if count}) != 1:
        sys.exit(f"the arrangements hashed different numbers of files: {files}")
    times: dict[str, list[float]] = {label: [] for label in runs}
    for _ in range(args.rounds):
        for label, run in runs.items():
            start = time.perf_counter()
            run()
            times[label].append(time.perf_counter() - start)
    median = {label: statistics.median(values) for label, values in times.items()}
    print(f"{max(files.values())} files, {args.algo}, {args.rounds} rounds")
    base = "tasks in one process"
    for label in runs:
        if label.startswith("make_manifest"):
            base = "make_manifest, jobs=1"
        elif label.startswith("command"):
            base = "command, -j 1"
        print(f"{label:44s} {median[label]:.3f} s  {median[base] / median[label]:.2f}x")
    best = min(median[label] for label in runs if "pool" in label)
    serial = median["command, -j 1"] - median["tasks in one process"]
    print(
        f"ceiling of the command's -j 2 with the pool: {serial:.3f} s serial + {best:.3f} s"
        f" = {serial + best:.3f} s, {median['command, -j 1'] / (serial + best):.2f}x over -j 1"
    )


if __name__ == "__main__":
    main()
