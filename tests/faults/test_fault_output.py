"""Output faults: a full disk, a closed stdout, an -o target that cannot be written.

A closed stdout and an unwritable -o directory must be caught before any work: the test-only
shim (shim/sitecustomize.py) writes a trace line when the walk starts or a file is read, and
those runs must leave no trace at all. Mounts (a full or read-only filesystem) are made in a
private mount namespace of the command alone (``unshare -m``), so nothing outlives the test.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from faultkit import START_METHODS, command, hashpar_env, leftovers, many_files, start

NO_SPACE = b"hashpar: error: cannot write standard output: No space left on device\n"
CLOSED = b"hashpar: error: standard output is closed\n"
UNBUFFERED = {"PYTHONUNBUFFERED": "1"}
"""stdout a raw stream, as under ``python -u``: each write is one write(2), which on a disk
filling up or a reader going away writes part, returns the count and raises nothing."""
DROP_DAC = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
"""Root without the capabilities that bypass file permissions (see docs/reliability.md)."""


def _run(
    argv: list[str], env: dict[str, str], stdout: int | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        argv,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if stdout is None else stdout,
        stderr=subprocess.PIPE,
        timeout=50,
        check=False,
    )


def _in_namespace(mount: str, directory: Path, argv: list[str]) -> list[str]:
    """``argv`` run with a fresh tmpfs (mount options ``mount``) on ``directory``."""
    script = f'mount -t tmpfs -o {mount} tmpfs "$0" && exec "$@"'
    return ["unshare", "-m", "--propagation", "private", "sh", "-c", script, str(directory), *argv]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method", START_METHODS)
def test_stdout_on_a_full_device(method: str, tmp_path: Path) -> None:
    tree = many_files(tmp_path / "tree", 600, content=b"data")
    env = hashpar_env(method)
    with open("/dev/full", "wb") as full:
        result = _run(command("make", tree, "-j", "2"), env, stdout=full.fileno())
    assert (result.returncode, result.stderr) == (2, NO_SPACE)
    assert leftovers(env) == []


def _changed_tree(tmp_path: Path, count: int) -> tuple[Path, Path, Path]:
    """A tree of ``count`` files, its manifest, and its manifest once every file changed."""
    tree = many_files(tmp_path / "tree", count, content=b"data")
    before, after = tmp_path / "before.json", tmp_path / "after.json"
    assert _run(command("make", tree, "-o", before), hashpar_env()).returncode == 0
    many_files(tree, count, content=b"DATA")
    assert _run(command("make", tree, "-o", after), hashpar_env()).returncode == 0
    return tree, before, after


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "args",
    [
        ["export", "{before}", "-f", "sums"],
        ["verify", "{before}", "--json"],
        ["verify", "{before}"],
        ["diff", "{before}", "{after}", "--json"],
        ["diff", "{before}", "{after}"],
    ],
    ids=["export", "verify-json", "verify", "diff-json", "diff"],
)
def test_stdout_filling_up_in_the_middle_of_a_write(args: list[str], tmp_path: Path) -> None:
    """``> full/x``, with room for 4 KiB of a result written in one call (export's whole
    output, a report of 600 lines): the write takes 4096 bytes and returns the count; the
    rest must still be written, and fail (was: exit 0 or 1, nothing said, the file cut
    short)."""
    _, before, after = _changed_tree(tmp_path, 600)
    mount = tmp_path / "small"
    mount.mkdir()
    argv = command(*(arg.format(before=before, after=after) for arg in args))
    script = (
        'mount -t tmpfs -o size=4k tmpfs "$0" && "$@" > "$0/out"; code=$?; '
        'wc -c < "$0/out"; exit $code'
    )
    namespace = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, str(mount)]
    result = _run([*namespace, *argv], hashpar_env(extra=UNBUFFERED))
    assert (result.returncode, result.stderr) == (2, NO_SPACE)
    assert result.stdout == b"4096\n"  # what fitted


@pytest.mark.timeout(60)
def test_reader_going_away_in_the_middle_of_a_write(tmp_path: Path) -> None:
    """``hashpar export M -f sums | head -c 100``: the pipe takes 64 KiB of the 160 kB written
    in one call, the reader goes, the write returns that count; the rest must fail with
    EPIPE: quiet, exit 141 (was: exit 0)."""
    _, before, _ = _changed_tree(tmp_path, 2000)
    run = start(["export", before, "-f", "sums"], hashpar_env(extra=UNBUFFERED))
    assert run.stdout is not None and run.stderr is not None
    head = run.stdout.read(100)
    run.stdout.close()  # the reader exits
    stderr = run.stderr.read()
    assert run.wait(timeout=50) == 141
    assert len(head) == 100 and stderr == b""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method", START_METHODS)
def test_closed_stdout_is_refused_before_any_work(method: str, tmp_path: Path) -> None:
    """``hashpar make DIR >&-``: plain Python would exit 0 having written nothing."""
    tree = many_files(tmp_path / "tree", 600, content=b"data")
    trace = tmp_path / "trace"
    env = hashpar_env(method, {"HASHPAR_TEST_TRACE": str(trace)})
    argv = ["bash", "-c", 'exec 1>&-; exec "$@"', "bash", *command("make", tree, "-j", "2")]
    result = _run(argv, env)
    assert (result.returncode, result.stdout, result.stderr) == (2, b"", CLOSED)
    assert not trace.exists()


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "args", [["--version"], ["--help"], ["make", "--help"], ["verify", "x", "--help"]]
)
def test_version_and_help_on_a_closed_stdout_are_one_line_and_exit_2(args: list[str]) -> None:
    """What they print is all they do: with nowhere to print it, that is an error."""
    argv = ["bash", "-c", 'exec 1>&-; exec "$@"', "bash", *command(*args)]
    result = _run(argv, hashpar_env("fork"))
    assert (result.returncode, result.stdout, result.stderr) == (2, b"", CLOSED)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method", START_METHODS)
def test_output_in_a_missing_directory_is_refused_before_any_work(
    method: str, tmp_path: Path
) -> None:
    tree = many_files(tmp_path / "tree", 600, content=b"data")
    trace = tmp_path / "trace"
    target = tmp_path / "no-such-dir" / "m.json"
    env = hashpar_env(method, {"HASHPAR_TEST_TRACE": str(trace)})
    result = _run(command("make", tree, "-o", target), env)
    expected = f"hashpar: error: cannot write {target}: No such file or directory\n"
    assert (result.returncode, result.stdout, result.stderr) == (2, b"", expected.encode())
    assert not trace.exists()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method", START_METHODS)
def test_output_in_a_directory_without_write_permission(method: str, tmp_path: Path) -> None:
    """As root without CAP_DAC_OVERRIDE: the mode bits of the directory apply again."""
    tree = many_files(tmp_path / "tree", 600, content=b"data")
    trace = tmp_path / "trace"
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    env = hashpar_env(method, {"HASHPAR_TEST_TRACE": str(trace)})
    result = _run([*DROP_DAC, *command("make", tree, "-o", locked / "m.json")], env)
    expected = f"hashpar: error: cannot write {locked}/m.json: Permission denied\n"
    assert (result.returncode, result.stdout, result.stderr) == (2, b"", expected.encode())
    assert not trace.exists()
    assert os.listdir(locked) == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method", START_METHODS)
def test_output_on_a_read_only_filesystem(method: str, tmp_path: Path) -> None:
    tree = many_files(tmp_path / "tree", 600, content=b"data")
    trace = tmp_path / "trace"
    mount = tmp_path / "ro"
    mount.mkdir()
    env = hashpar_env(method, {"HASHPAR_TEST_TRACE": str(trace)})
    argv = _in_namespace("ro", mount, command("make", tree, "-o", mount / "m.json"))
    result = _run(argv, env)
    expected = f"hashpar: error: cannot write {mount}/m.json: Read-only file system\n"
    assert (result.returncode, result.stdout, result.stderr) == (2, b"", expected.encode())
    assert not trace.exists()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("method", START_METHODS)
def test_output_file_on_a_full_filesystem_keeps_the_old_manifest(
    method: str, tmp_path: Path
) -> None:
    """ENOSPC while writing -o: exit 2, the old manifest is intact, no temp file is left."""
    tree = many_files(tmp_path / "tree", 2000, content=b"data")  # a manifest of ~300 kB
    mount = tmp_path / "small"
    mount.mkdir()
    old = b'{"old": true}\n'
    script = (
        f"mount -t tmpfs -o size=64k tmpfs \"$0\" && printf %s '{old.decode().strip()}' > "
        '"$0/m.json" && "$@"; code=$?; ls -A "$0"; cat "$0/m.json"; exit $code'
    )
    argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, str(mount)]
    env = hashpar_env(method)
    result = _run([*argv, *command("make", tree, "-j", "2", "-o", mount / "m.json")], env)
    expected = f"hashpar: error: cannot write {mount}/m.json: No space left on device\n"
    assert (result.returncode, result.stderr) == (2, expected.encode())
    assert result.stdout == b"m.json\n" + old.strip()
    assert leftovers(env) == []


@pytest.mark.timeout(60)
def test_usage_error_listing_choices_is_one_line(tmp_path: Path) -> None:
    """click writes the choices of a missing option on several lines: still one line here."""
    manifest = tmp_path / "m.json"
    tree = many_files(tmp_path / "tree", 3)
    assert _run(command("make", tree, "-o", manifest), hashpar_env()).returncode == 0
    result = _run(command("export", manifest), hashpar_env())
    assert (result.returncode, result.stdout) == (2, b"")
    assert result.stderr == (
        b"hashpar: error: Missing option '--format' / '-f'. Choose from: sums, bsd, bagit "
        b"(see 'hashpar export --help')\n"
    )
