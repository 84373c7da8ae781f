"""The scheduler: which tasks it sends, in what shape, with any executor."""

from __future__ import annotations

import hashlib
import os
import time
from array import array
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import blake3
import pytest

from conftest import TreeSpec
from hashpar import Algorithm, Tuning, engine, make_manifest, scan_tree
from hashpar.engine import new_task
from hashpar.errors import WorkerCrashed
from hashpar.hashing import DIGEST_BYTES, Task, run_task
from hashpar.scan import Scope


class Recording(Executor):
    """Runs tasks in-process and keeps every Task it was given."""

    def __init__(self) -> None:
        self.batches: list[Task] = []

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.batches.append(args[0])
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


SMALL_BIG = Tuning(batch_bytes=1 << 10, blake3_threads_min=1 << 10)
"""Files over 1 KiB count as big: deferred, sent alone, and allowed threads."""


def solo_threads(recording: Recording) -> list[int]:
    return [batch.threads for batch in recording.batches if batch.solo]


def test_a_lone_big_file_gets_the_idle_workers_threads(tree: Callable[[TreeSpec], Path]) -> None:
    root = tree({"big": bytes(64 << 10), "small": b"x"})
    recording = Recording()
    make_manifest(root, jobs=2, tuning=SMALL_BIG, executor=recording)
    assert solo_threads(recording) == [2]


def test_with_big_files_to_go_round_each_gets_one_thread(tree: Callable[[TreeSpec], Path]) -> None:
    root = tree({f"big{i}": bytes((64 + i) << 10) for i in range(4)})
    recording = Recording()
    manifest = make_manifest(root, jobs=2, tuning=SMALL_BIG, executor=recording)
    threads = solo_threads(recording)
    assert len(threads) == 4 and threads[:3] == [1, 1, 1]  # the last may use an idle core
    assert len(manifest.files) == 4


@pytest.mark.parametrize("jobs", [1, 2])
def test_big_files_are_sent_biggest_first(tree: Callable[[TreeSpec], Path], jobs: int) -> None:
    root = tree({f"f{i}": bytes((2 + i) << 10) for i in range(5)})
    recording = Recording()
    make_manifest(root, jobs=jobs, tuning=SMALL_BIG, executor=recording)
    solo_names = [batch.groups[0][1][0] for batch in recording.batches if batch.solo]
    assert solo_names == ["f4", "f3", "f2", "f1", "f0"]


def test_a_worker_hands_back_what_its_byte_budget_did_not_cover(
    tree: Callable[[TreeSpec], Path],
) -> None:
    root = tree({f"d/f{i:02d}": bytes(600) for i in range(20)})
    recording = Recording()
    manifest = make_manifest(root, jobs=2, tuning=Tuning(batch_bytes=1 << 10), executor=recording)
    assert len(manifest.files) == 20
    walked, *rest = recording.batches  # the walk listed d, hashed two files, handed back 18
    assert [rel for rel, _ in walked.dirs] == [""] and walked.groups == []
    sent = [name for batch in rest for _, names in batch.groups for name in names]
    assert sorted(sent) == [f"f{i:02d}" for i in range(2, 20)]
    assert all(not batch.dirs for batch in rest)


def test_a_huge_directory_comes_back_in_tasks_of_at_most_batch_files(
    tree: Callable[[TreeSpec], Path],
) -> None:
    root = tree({f"big/f{i:03d}": b"x" for i in range(50)} | {"a/x": b"", "b/y": b""})
    recording = Recording()
    manifest = make_manifest(root, jobs=2, tuning=Tuning(batch_files=8), executor=recording)
    assert len(manifest.files) == 52
    sizes = [sum(len(names) for _, names in batch.groups) for batch in recording.batches]
    assert max(sizes) <= 8
    hashed = [n for batch in recording.batches for _, names in batch.groups for n in names]
    assert len(hashed) == len(set(hashed))  # nothing is handed out twice


def test_directories_left_over_are_split_among_the_workers(
    tree: Callable[[TreeSpec], Path],
) -> None:
    root = tree({f"d{i}/f{j}": b"x" for i in range(12) for j in range(4)})
    recording = Recording()
    manifest = make_manifest(root, jobs=2, tuning=Tuning(batch_files=4), executor=recording)
    assert len(manifest.files) == 48
    first, second = recording.batches[:2]
    assert [rel for rel, _ in first.dirs] == [""]
    assert 1 <= len(second.dirs) < 11  # the root task's 11 unwalked directories, in parts
    handed_out = {rel for batch in recording.batches for rel, _ in batch.dirs}
    assert handed_out == {"", *(f"d{i}" for i in range(1, 12))}  # d0: by the root's task


def test_each_task_carries_only_the_listed_paths_below_its_directories(
    tree: Callable[[TreeSpec], Path],
) -> None:
    root = tree({f"d{i}/f{j}": b"x" for i in range(6) for j in range(3)})
    recording = Recording()
    listed = [f"d{i}/f0" for i in range(6)]
    snapshot = scan_tree(
        str(root),
        algorithm=Algorithm.SHA256,
        jobs=2,
        tuning=Tuning(batch_files=1),
        executor=recording,
        listed=listed,
    )
    assert sorted(snapshot.files) == listed
    for batch in recording.batches[1:]:
        below = batch.scope.listed or ()
        assert all(any(p.startswith(rel + "/") for rel, _ in batch.dirs) for p in below)


def test_alongside_steps_run_one_per_round_the_first_before_any_result_is_taken(
    tree: Callable[[TreeSpec], Path],
) -> None:
    root = tree({f"d{i}/f{j}": b"x" for i in range(3) for j in range(3)})
    recording = Recording()
    progress: list[object] = []
    seen: list[tuple[int, int]] = []

    def step() -> None:
        seen.append((len(recording.batches), len(progress)))

    scan_tree(
        str(root),
        algorithm=Algorithm.SHA256,
        jobs=2,
        tuning=Tuning(batch_files=2),
        executor=recording,
        on_progress=progress.append,
        alongside=[step, step],
    )
    first, second = seen
    assert first == (1, 0)  # one task out (the root's), none of its results taken in yet
    assert second[0] > 1 and second[1] == 1  # the next round: the root's result taken in
    assert len(recording.batches) > second[0] and len(progress) > 1


class CountingThreads(ThreadPoolExecutor):
    """Runs tasks in two threads, so they are still running while the scheduler goes on."""

    def __init__(self) -> None:
        super().__init__(2)
        self.submitted = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def test_a_step_in_pieces_runs_between_rounds_and_settle_waits_for_its_end(
    tree: Callable[[TreeSpec], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Verify reads its manifest a piece at a time while the workers hash: tasks keep
    going out between the pieces, at most a window's worth of results waits for the step
    (window = 2 jobs x 4), and no file is offered to settle before the last piece."""
    root = tree({f"d{i}/f{j}": b"x" for i in range(8) for j in range(8)})
    events: list[tuple[str, int]] = []
    waiting: list[int] = []
    absorb = engine._Run._absorb

    def spy(run: Any, result: Any) -> None:
        absorb(run, result)
        waiting.append(len(run.parked))

    monkeypatch.setattr(engine._Run, "_absorb", spy)

    with CountingThreads() as pool:

        def step() -> Iterator[None]:
            for _ in range(40):
                events.append(("piece", pool.submitted))
                time.sleep(0.002)  # the tasks run meanwhile
                yield

        def settle(paths: list[str], entries: list[object]) -> list[bool]:
            events.append(("settle", pool.submitted))
            return [False] * len(paths)

        snapshot = scan_tree(
            str(root),
            algorithm=Algorithm.SHA256,
            jobs=2,
            tuning=Tuning(batch_files=2),
            executor=pool,
            settle=settle,
            alongside=[step],
        )
    assert len(snapshot.files) == 64
    kinds = [kind for kind, _ in events]
    assert kinds == ["piece"] * 40 + ["settle"] * (len(kinds) - 40)
    during = [submitted for kind, submitted in events if kind == "piece"]
    assert during[0] == 1  # the root's task, then the first piece
    assert during[-1] > 1  # tasks went out meanwhile
    assert max(waiting) < 8  # the step is run through when a window's worth would wait


def _fail(task: object) -> None:
    time.sleep(0.01)
    raise RuntimeError("a task failed")


def test_a_step_in_pieces_left_half_way_by_a_failure_is_closed_at_once(
    tree: Callable[[TreeSpec], Path],
) -> None:
    """Its cleanup (verify's manifest file) runs when the run fails, not at collection."""
    root = tree({f"d{i}/f{j}": b"x" for i in range(8) for j in range(8)})
    events: list[str] = []

    class FailingLater(CountingThreads):
        def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
            return super().submit(fn if self.submitted == 0 else _fail, *args, **kwargs)

    def step() -> Iterator[None]:
        try:
            for _ in range(1000):
                time.sleep(0.002)
                yield
            events.append("done")
        finally:
            events.append("closed")

    with FailingLater() as pool, pytest.raises(WorkerCrashed, match="a task failed"):
        scan_tree(
            str(root),
            algorithm=Algorithm.SHA256,
            tuning=Tuning(batch_files=2),
            executor=pool,
            alongside=[step],
        )
    assert events == ["closed"]


def test_a_step_in_pieces_runs_through_at_once_with_one_job(
    tree: Callable[[TreeSpec], Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """-j 1 runs every task in-process: there is nothing to overlap, so nothing waits."""
    root = tree({f"d{i}/f{j}": b"x" for i in range(4) for j in range(4)})
    tasks: list[object] = []
    seen: list[int] = []
    monkeypatch.setattr(engine, "run_task", lambda task: tasks.append(task) or run_task(task))

    def step() -> Iterator[None]:
        for _ in range(5):
            seen.append(len(tasks))
            yield

    scan_tree(
        str(root),
        algorithm=Algorithm.SHA256,
        jobs=1,
        tuning=Tuning(batch_files=2),
        alongside=[step],
    )
    assert seen == [1] * 5 and len(tasks) > 1


@pytest.mark.parametrize("jobs", [1, 2])
def test_every_step_runs_before_settle_is_first_asked_even_on_a_tiny_tree(
    tree: Callable[[TreeSpec], Path], jobs: int
) -> None:
    """Verify reads its manifest's entries in the first step and settles files against
    them: no file may be offered before that step, and a tree the in-process first task
    covers whole (no round of the scheduler at all) still runs every step."""
    root = tree({"a": b"1", "d/b": b"2"})
    events: list[str] = []

    def settle(paths: list[str], entries: list[object]) -> list[bool]:
        events.extend(paths)
        return [False] * len(paths)

    snapshot = scan_tree(
        str(root),
        algorithm=Algorithm.BLAKE3,
        jobs=jobs,
        settle=settle,
        alongside=[lambda: events.append("step 1"), lambda: events.append("step 2")],
    )
    assert events[0] == "step 1" and "step 2" in events
    assert sorted(e for e in events if not e.startswith("step")) == ["a", "d/b"]
    assert sorted(snapshot.files) == ["a", "d/b"]


def test_settle_is_offered_each_result_whole_and_its_flags_pick_the_rows_left_out(
    tree: Callable[[TreeSpec], Path],
) -> None:
    root = tree({f"d{i % 3}/{i}": b"x" * i for i in range(40)})
    calls: list[int] = []

    def settle(paths: list[str], entries: list[Any]) -> list[bool]:
        calls.append(len(paths))
        return [entry.size % 2 == 0 for entry in entries]

    recording = Recording()
    snapshot = scan_tree(
        str(root),
        algorithm=Algorithm.SHA256,
        tuning=Tuning(batch_files=8),
        executor=recording,
        settle=settle,
    )
    assert sorted(snapshot.files) == sorted(f"d{i % 3}/{i}" for i in range(1, 40, 2))
    assert sum(calls) == 40 and len(calls) == len(recording.batches) and max(calls) <= 8

    with pytest.raises(ValueError, match="settle returned 0 flags for"):
        scan_tree(str(root), algorithm=Algorithm.SHA256, settle=lambda paths, entries: [])


def test_an_exception_from_alongside_ends_the_run_and_its_workers(
    tree: Callable[[TreeSpec], Path],
) -> None:
    import multiprocessing

    root = tree({f"d{i}/f{j}": b"x" for i in range(4) for j in range(50)})

    def refuse() -> None:
        assert multiprocessing.active_children()  # the pool is up: this runs alongside it
        raise RuntimeError("refused")

    with pytest.raises(RuntimeError, match="refused"):
        scan_tree(
            str(root),
            algorithm=Algorithm.BLAKE3,
            jobs=2,
            tuning=Tuning(inline_max_files=1, batch_files=8),
            alongside=[lambda: None, refuse],  # the first runs before the pool starts
        )
    assert multiprocessing.active_children() == []


@pytest.mark.parametrize("algorithm", ["sha256", "blake3"])
def test_a_tasks_result_columns_line_up_file_by_file(tmp_path: Path, algorithm: str) -> None:
    """A worker sends its files as columns (paths joined by NUL, raw digests, sizes,
    mtimes); each row must still be one file's path, digest, size and mtime."""
    contents = {
        b"empty": b"",
        b"line\nbreak": b"a newline in the name",
        b"not-utf8-\xff": b"a name that is not UTF-8",
        b"space name.txt": b"x" * 5000,
        b"bigger": bytes(range(256)) * 300,  # over the 4 KiB buffer below: read in pieces
    }
    root = tmp_path / "t"
    root.mkdir()
    for name, data in contents.items():
        (root / os.fsdecode(name)).write_bytes(data)
    task = new_task(Scope(root=str(root)), algorithm)._replace(dirs=[("", ())], buffer_size=4096)
    result = run_task(task)
    paths = result.path_list()
    assert sorted(paths) == sorted(os.fsdecode(name) for name in contents)
    assert len(result.digests) == len(paths) * DIGEST_BYTES
    new = hashlib.sha256 if algorithm == "sha256" else blake3.blake3
    rows = zip(paths, result.hex_digests(), result.sizes, result.mtimes, strict=True)
    for path, digest, size, mtime_ns in rows:
        data = contents[os.fsencode(path)]
        assert (digest, size) == (new(data).hexdigest(), len(data))
        assert mtime_ns == (root / path).stat().st_mtime_ns


def test_a_task_that_hashed_nothing_has_empty_columns(tmp_path: Path) -> None:
    (tmp_path / "only-a-dir").mkdir()
    result = run_task(new_task(Scope(root=str(tmp_path)), "sha256")._replace(dirs=[("", ())]))
    assert (result.path_list(), result.hex_digests()) == ([], [])
    assert (result.digests, result.sizes, result.mtimes) == (b"", array("q"), array("q"))
