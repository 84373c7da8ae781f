"""Process faults: dying workers, Ctrl-C, SIGTERM and a closed pipe, under every start method.

Each case drives the real command (``python -m hashpar``) in a session of its own and
watches its processes through /proc. A run that must be interrupted hashes a few huge
sparse files with SHA-256, which would take minutes; the faults are injected once workers
are seen reading them, so every "stopped early" assertion has minutes of margin, not
milliseconds. Faults inside a worker come from the test-only shim (shim/sitecustomize.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from faultkit import (
    START_METHODS,
    Proc,
    busy_tree,
    command,
    descendants,
    finish,
    hashpar_env,
    leftovers,
    many_files,
    readers_of,
    signal_thread,
    start,
    threads_not_blocking,
    wait_for_readers,
    wait_gone,
)

import hashpar

POOL_TREE = max(hashpar.Tuning().inline_max_files, 3 * hashpar.Tuning().batch_files) + 600
"""Files in a tree hashed by a pool (not in-process) in at least three batches: these faults
are about worker processes, and some hold the walk at its third batch."""

CRASHED = (
    b"hashpar: error: a worker process died unexpectedly (killed, out of memory, or crashed); "
    b"the run was stopped\n"
)
OLD_MANIFEST = b'{"an existing manifest": "must survive byte for byte"}\n'
STOP_BOUND = 15.0
"""Seconds a run may take to stop after a fault; the uninterrupted run takes minutes."""


def _existing_output(tmp_path: Path) -> Path:
    out = tmp_path / "out" / "manifest.json"
    out.parent.mkdir()
    out.write_bytes(OLD_MANIFEST)
    return out


def _assert_output_untouched(out: Path) -> None:
    assert out.read_bytes() == OLD_MANIFEST
    assert os.listdir(out.parent) == [out.name]  # no temp file left behind


@pytest.mark.timeout(90)
@pytest.mark.parametrize("method", START_METHODS)
def test_worker_killed_with_sigkill_mid_run(method: str, tmp_path: Path) -> None:
    tree = busy_tree(tmp_path / "tree")
    out = _existing_output(tmp_path)
    env = hashpar_env(method)
    run = start(["make", tree, "--algo", "sha256", "-j", "2", "-o", out], env)
    readers = wait_for_readers(run, tree, count=2)
    victim = min(readers)
    assert victim != run.pid  # a worker, not the parent
    os.kill(victim, signal.SIGKILL)
    killed = time.monotonic()
    stdout, stderr = finish(run, 60)
    assert time.monotonic() - killed < STOP_BOUND
    assert (run.returncode, stdout, stderr) == (2, b"", CRASHED)
    _assert_output_untouched(out)
    assert leftovers(env) == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method", START_METHODS)
@pytest.mark.parametrize("fault", ["segv", "exit", "sigkill"])
def test_worker_that_dies_by_itself_stops_the_run(method: str, fault: str, tmp_path: Path) -> None:
    """A real NULL dereference, ``os._exit(3)``, or a worker's own SIGKILL. The last file is
    the one: the first ones are hashed in-process, before any worker starts."""
    tree = many_files(tmp_path / "tree", POOL_TREE, content=b"data")
    out = tmp_path / "out" / "manifest.json"
    out.parent.mkdir()
    env = hashpar_env(method, {"HASHPAR_TEST_FAULT": f"{fault}:f{POOL_TREE - 1:07d}"})
    run = start(["make", tree, "-j", "2", "-o", out], env)
    stdout, stderr = finish(run, 50)
    assert (run.returncode, stdout, stderr) == (2, b"", CRASHED)
    assert os.listdir(out.parent) == []  # no manifest, no temp file
    assert leftovers(env) == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method", START_METHODS)
def test_exception_while_hashing_one_file_is_that_files_error(method: str, tmp_path: Path) -> None:
    tree = many_files(tmp_path / "tree", 600, content=b"data")
    env = hashpar_env(method, {"HASHPAR_TEST_FAULT": "raise:f0000300"})
    run = start(["make", tree, "-j", "2"], env)
    stdout, stderr = finish(run, 50)
    message = "RuntimeError: injected failure reading f0000300"
    assert run.returncode == 1
    assert stderr == f"hashpar: d0000/f0000300: {message} (failed)\n".encode()
    manifest = json.loads(stdout)
    assert manifest["errors"] == {"d0000/f0000300": {"kind": "failed", "message": message}}
    assert len(manifest["files"]) == 599
    assert leftovers(env) == []


INTERRUPTS = [
    pytest.param(signal.SIGINT, False, 130, id="SIGINT-process"),
    pytest.param(signal.SIGINT, True, 130, id="SIGINT-group"),
    pytest.param(signal.SIGTERM, False, 143, id="SIGTERM-process"),
    pytest.param(signal.SIGTERM, True, 143, id="SIGTERM-group"),
]


def _interrupt(run: subprocess.Popen[bytes], signum: int, group: bool) -> None:
    if group:  # what a terminal does on Ctrl-C: the whole foreground process group
        os.killpg(run.pid, signum)
    else:
        os.kill(run.pid, signum)


@pytest.mark.timeout(90)
@pytest.mark.parametrize("method", START_METHODS)
@pytest.mark.parametrize(("signum", "group", "code"), INTERRUPTS)
def test_interrupt_stops_everything_at_once(
    method: str, signum: int, group: bool, code: int, tmp_path: Path
) -> None:
    tree = busy_tree(tmp_path / "tree")
    out = _existing_output(tmp_path)
    env = hashpar_env(method)
    run = start(["make", tree, "--algo", "sha256", "-j", "2", "-o", out], env)
    wait_for_readers(run, tree, count=2)
    _interrupt(run, signum, group)
    sent = time.monotonic()
    stdout, stderr = finish(run, 60)
    assert time.monotonic() - sent < STOP_BOUND
    assert (run.returncode, stdout, stderr) == (code, b"", b"")
    _assert_output_untouched(out)
    assert leftovers(env) == []


@pytest.mark.timeout(90)
@pytest.mark.parametrize("method", START_METHODS)
def test_repeated_ctrl_c_still_leaves_no_worker(method: str, tmp_path: Path) -> None:
    """An impatient user presses Ctrl-C three times: the cleanup must not be cut short."""
    tree = busy_tree(tmp_path / "tree")
    out = _existing_output(tmp_path)
    env = hashpar_env(method)
    run = start(["make", tree, "--algo", "sha256", "-j", "2", "-o", out], env)
    wait_for_readers(run, tree, count=2)
    for _ in range(3):
        os.killpg(run.pid, signal.SIGINT)
        time.sleep(0.002)
    stdout, stderr = finish(run, 60)
    assert (run.returncode, stdout, stderr) == (130, b"", b"")
    _assert_output_untouched(out)
    assert leftovers(env) == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("signum", "group", "code"), INTERRUPTS)
def test_interrupt_without_workers(signum: int, group: bool, code: int, tmp_path: Path) -> None:
    """``-j 1`` hashes in-process: the signal lands in the middle of a read."""
    tree = busy_tree(tmp_path / "tree", count=1)
    out = _existing_output(tmp_path)
    env = hashpar_env()
    run = start(["make", tree, "--algo", "sha256", "-j", "1", "-o", out], env)
    wait_for_readers(run, tree, count=1)
    assert descendants(run.pid) == []
    _interrupt(run, signum, group)
    stdout, stderr = finish(run, 50)
    assert (run.returncode, stdout, stderr) == (code, b"", b"")
    _assert_output_untouched(out)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method", START_METHODS)
def test_reader_of_stdout_goes_away(method: str, tmp_path: Path) -> None:
    """``hashpar make DIR | head -c 100``: quiet, exit 141, workers gone."""
    tree = many_files(tmp_path / "tree", 2000, content=b"data")
    env = hashpar_env(method)
    run = start(["make", tree, "-j", "2"], env)
    assert run.stdout is not None and run.stderr is not None
    head = run.stdout.read(100)
    run.stdout.close()  # the reader exits
    stderr = run.stderr.read()
    assert run.wait(timeout=50) == 141
    assert head.startswith(b'{\n  "version": 1,')
    assert stderr == b""
    assert leftovers(env) == []


@pytest.mark.timeout(60)
def test_pipe_to_head_in_a_shell(tmp_path: Path) -> None:
    """The same through a real shell pipeline, as a user types it."""
    tree = many_files(tmp_path / "tree", 2000, content=b"data")
    env = hashpar_env()
    script = 'set -o pipefail; "$@" | head -c 100 >/dev/null'
    result = subprocess.run(
        ["bash", "-c", script, "bash", *command("make", tree)],
        env=env,
        capture_output=True,
        timeout=50,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (141, b"", b"")
    assert leftovers(env) == []


def _session(sid: int) -> str:
    """Diagnostics: every process in the session ``sid``, with its parent and state."""
    lines = []
    for entry in os.listdir("/proc"):
        try:
            raw = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = raw.rpartition(")")[2].split()
        if entry.isdigit() and int(fields[3]) == sid:
            lines.append(f"{entry} ppid={fields[1]} state={fields[0]} {raw[:60]}")
    return "\n".join(lines)


def _wait_for_trace(trace: Path, line: str, run: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 40
    while time.monotonic() < deadline:
        if trace.exists() and line in trace.read_text().splitlines():
            return
        assert run.poll() is None, run.communicate()
        time.sleep(0.01)
    raise AssertionError(f"the run never reached {line!r}")


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method", START_METHODS)
@pytest.mark.parametrize(
    ("pause", "workers"), [(1, False), (3, True)], ids=["before-workers", "workers-idle"]
)
@pytest.mark.parametrize(("signum", "group", "code"), [INTERRUPTS[1], INTERRUPTS[2]])
def test_interrupt_during_the_walk(
    method: str, pause: int, workers: bool, signum: int, group: bool, code: int, tmp_path: Path
) -> None:
    """The walk is held (by the shim) at its first batch, or at its third, when the workers
    have started and are idle: the signal still stops everything at once."""
    tree = many_files(tmp_path / "tree", POOL_TREE, content=b"data")
    trace = tmp_path / "trace"
    out = _existing_output(tmp_path)
    env = hashpar_env(
        method, {"HASHPAR_TEST_FAULT": f"pause:{pause}", "HASHPAR_TEST_TRACE": str(trace)}
    )
    run = start(["make", tree, "-j", "2", "-o", out], env)
    _wait_for_trace(trace, "paused", run)
    if workers:  # they exist by then; seen missing once in ~20 full-suite runs, so bounded
        deadline = time.monotonic() + 10
        while not descendants(run.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
    else:
        assert descendants(run.pid) == [], _session(run.pid)
    _interrupt(run, signum, group)
    stdout, stderr = finish(run, 30)
    assert (run.returncode, stdout, stderr) == (code, b"", b"")
    _assert_output_untouched(out)
    assert leftovers(env) == []


@pytest.mark.timeout(90)
@pytest.mark.parametrize("method", START_METHODS)
def test_pool_threads_leave_signals_to_the_main_thread(method: str, tmp_path: Path) -> None:
    """The kernel hands a process-wide signal to any thread that does not block it: the
    pool's threads must block SIGINT and SIGTERM, under every start method."""
    tree = busy_tree(tmp_path / "tree")
    env = hashpar_env(method)
    run = start(["make", tree, "--algo", "sha256", "-j", "2"], env)
    wait_for_readers(run, tree, count=2)
    assert threads_not_blocking(run.pid, signal.SIGINT) == []
    assert threads_not_blocking(run.pid, signal.SIGTERM) == []
    os.kill(run.pid, signal.SIGINT)
    stdout, stderr = finish(run, 60)
    assert (run.returncode, stdout, stderr) == (130, b"", b"")
    assert leftovers(env) == []


@pytest.mark.timeout(90)
@pytest.mark.parametrize("method", START_METHODS)
def test_library_ctrl_c_caught_by_another_thread(
    method: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a caller's threaded program, SIGINT may land on one of the caller's threads: the
    main thread, waiting for results, must still raise KeyboardInterrupt promptly."""
    monkeypatch.setenv("HASHPAR_START_METHOD", method)
    tree = busy_tree(tmp_path / "tree")
    workers: list[Proc] = []

    def interrupt_from_this_thread() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(readers_of(os.getpid(), tree)) < 2:
            time.sleep(0.01)
        readers = readers_of(os.getpid(), tree)
        workers.extend(p for p in descendants(os.getpid()) if p.pid in readers)
        signal_thread(os.getpid(), threading.get_native_id(), signal.SIGINT)

    helper = threading.Thread(target=interrupt_from_this_thread)
    helper.start()
    with pytest.raises(KeyboardInterrupt):
        hashpar.make_manifest(tree, algorithm="sha256", jobs=2)
    helper.join()
    assert len(workers) == 2
    assert wait_gone(workers) == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method", START_METHODS)
def test_ctrl_c_while_workers_start(method: str, tmp_path: Path) -> None:
    """Workers are held (by the shim) before they run any of hashpar's code: a Ctrl-C to
    the group then must not kill one with a traceback, and must stop the run."""
    tree = many_files(tmp_path / "tree", POOL_TREE, content=b"data")
    trace = tmp_path / "trace"
    out = _existing_output(tmp_path)
    env = hashpar_env(
        method, {"HASHPAR_TEST_FAULT": "slowstart:3", "HASHPAR_TEST_TRACE": str(trace)}
    )
    run = start(["make", tree, "-j", "2", "-o", out], env)
    _wait_for_trace(trace, "starting", run)
    os.killpg(run.pid, signal.SIGINT)
    stdout, stderr = finish(run, 30)
    assert (run.returncode, stdout, stderr) == (130, b"", b"")
    _assert_output_untouched(out)
    assert leftovers(env) == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("jobs", ["1", "2"])
@pytest.mark.parametrize("method", START_METHODS)
def test_unexpected_exception_in_worker_code(method: str, jobs: str, tmp_path: Path) -> None:
    """An exception outside the per-file handling (a bug, an unpicklable result) cannot be
    pinned on one file: the run stops with one line and exit 2, never a traceback."""
    tree = many_files(tmp_path / "tree", 600, content=b"data")
    out = _existing_output(tmp_path)
    env = hashpar_env(method, {"HASHPAR_TEST_FAULT": "batchraise:d0001"})
    run = start(["make", tree, "-j", jobs, "-o", out], env)
    stdout, stderr = finish(run, 50)
    expected = (
        b"hashpar: error: a worker failed unexpectedly "
        b"(RuntimeError: injected failure opening d0001); the run was stopped\n"
    )
    assert (run.returncode, stdout, stderr) == (2, b"", expected)
    _assert_output_untouched(out)
    assert leftovers(env) == []
