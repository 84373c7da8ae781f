"""`hashpar make` end to end: exact stdout, stderr and exit codes, and the real peer tools."""

from __future__ import annotations

import functools
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import blake3
import pytest

from conftest import TreeSpec, run_hashpar
from hashpar import __version__, decode_manifest
from test_make import ODD_NAMES

pytestmark = pytest.mark.timeout(120)


def test_make_writes_a_manifest_to_stdout(tree: Callable[[TreeSpec], Path]) -> None:
    root = tree({"a.txt": b"alpha"})
    result = run_hashpar("make", root)
    assert (result.returncode, result.stderr) == (0, b"")
    doc = json.loads(result.stdout)
    assert doc["files"]["a.txt"]["size"] == 5
    assert doc["files"]["a.txt"]["digest"] == blake3.blake3(b"alpha").hexdigest()
    assert doc["root"] == str(root) and doc["algorithm"] == "blake3" and doc["version"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["make", "{root}", "-j", "0"], "Invalid value for '--jobs' / '-j'"),
        (["make", "{root}", "--algo", "md5"], "Invalid value for '--algo': 'md5' is not one of"),
        (["make", "{root}/missing"], "missing: No such file or directory"),
        (["make", "{root}", "--frobnicate"], "No such option: --frobnicate"),
        (["make"], "Missing argument 'PATH'"),
        (["make", "{root}", "-o", "{root}/no/such/dir/m.json"], "cannot write"),
        (["make", "{root}", "--exclude", "[z-a]"], "pattern: '[z-a]': bad character range z-a"),
        (["make", ""], "error: '': No such file or directory"),
    ],
)
def test_bad_arguments_get_one_line_and_exit_2(
    tree: Callable[[TreeSpec], Path], args: list[str], message: str
) -> None:
    root = tree({"a": b""})
    result = run_hashpar(*(a.format(root=root) for a in args))
    lines = result.stderr.decode().splitlines()
    assert result.returncode == 2
    assert len(lines) == 1 and lines[0].startswith("hashpar: error: "), lines
    assert message.lower() in lines[0].lower()
    assert result.stdout == b""


def test_output_file_is_atomic_and_left_out_of_its_own_manifest(
    tree: Callable[[TreeSpec], Path],
) -> None:
    root = tree({"a": b"1"})
    target = root / "manifest.json"
    target.write_bytes(b"old contents")
    result = run_hashpar("make", root, "-o", target)
    assert (result.returncode, result.stdout, result.stderr) == (0, b"", b"")
    manifest = decode_manifest(target.read_bytes())
    assert list(manifest.files) == ["a"]
    assert sorted(os.listdir(root)) == ["a", "manifest.json"]  # no temp file left behind


def test_an_existing_output_survives_a_failed_run(tree: Callable[[TreeSpec], Path]) -> None:
    root = tree({"a": b"1"})
    target = root / "manifest.json"
    target.write_bytes(b"old contents")
    result = run_hashpar("make", root / "missing", "-o", target)
    assert result.returncode == 2
    assert target.read_bytes() == b"old contents"
    assert sorted(os.listdir(root)) == ["a", "manifest.json"]


def test_jobs_give_byte_identical_files_sections(tree: Callable[[TreeSpec], Path]) -> None:
    root = tree({f"d{i % 7}/f{i}": os.urandom(i * 37) for i in range(600)})
    outputs = [run_hashpar("make", root, "-j", str(j)).stdout for j in (1, 2, 3)]
    sections = {out[out.index(b'"files"') :] for out in outputs}
    assert len(sections) == 1


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_every_start_method(tree: Callable[[TreeSpec], Path], method: str) -> None:
    root = tree({f"f{i}": bytes([i % 256]) * i for i in range(400)})
    result = run_hashpar("make", root, "-j", "2", env={"HASHPAR_START_METHOD": method})
    assert (result.returncode, result.stderr) == (0, b"")
    assert len(json.loads(result.stdout)["files"]) == 400


def _peer_digest(tool: str, path: Path) -> str:
    """What the real tool prints for the content (read via stdin: no name escaping)."""
    with open(path, "rb") as f:
        return (
            subprocess.run([tool], stdin=f, capture_output=True, check=True)
            .stdout.split()[0]
            .decode()
        )


@pytest.mark.parametrize(("algo", "tool"), [("sha256", "sha256sum"), ("blake3", "b3sum")])
def test_digests_equal_the_native_tools_on_odd_names(
    tree: Callable[[TreeSpec], Path], algo: str, tool: str
) -> None:
    if shutil.which(tool) is None:
        pytest.skip(f"{tool} is not installed (.ci/run installs it)")
    spec: dict[str | bytes, bytes | str] = {name: name * 3 for name in ODD_NAMES}
    spec["big/one"] = os.urandom(3 << 20)
    root = tree(spec)
    result = run_hashpar("make", root, "--algo", algo, "-j", "2")
    assert result.returncode == 0, result.stderr
    manifest = decode_manifest(result.stdout)
    assert len(manifest.files) == len(spec)
    for name, entry in manifest.files.items():
        assert entry.digest == _peer_digest(tool, root / name), name


def test_the_installed_command_runs(tree: Callable[[TreeSpec], Path]) -> None:
    command = shutil.which("hashpar")
    if command is None:
        pytest.fail("the hashpar command is not installed: run README's install command")
    root = tree({"x": b"x"})
    version = subprocess.run([command, "--version"], capture_output=True, timeout=30, check=False)
    assert version.stdout.decode().startswith("hashpar ") and version.returncode == 0
    made = subprocess.run(
        [command, "make", str(root)], capture_output=True, timeout=60, check=False
    )
    assert made.returncode == 0 and "x" in json.loads(made.stdout)["files"]


def test_version_on_a_full_device_is_one_line_and_exit_2() -> None:
    """The one answer printed before typer is involved: not a traceback (it was one)."""
    with open("/dev/full", "wb") as full:
        result = subprocess.run(
            [sys.executable, "-m", "hashpar", "--version"],
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=30,
            check=False,
        )
    assert (result.returncode, result.stderr) == (
        2,
        b"hashpar: error: cannot write standard output: No space left on device\n",
    )


def test_the_command_ends_without_the_interpreter_shutdown_yet_flushes_everything(
    tree: Callable[[TreeSpec], Path],
) -> None:
    """main() ends with os._exit after flushing: output through a pipe (block-buffered)
    arrives whole, with the exit code the run returned. ``--version`` is printed into
    Python's buffer and left there: only the final flush writes it."""
    buffered = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    version = subprocess.run(
        [sys.executable, "-m", "hashpar", "--version"],
        capture_output=True,
        timeout=30,
        check=False,
        env=buffered,
    )
    assert (version.returncode, version.stdout) == (0, b"hashpar " + __version__.encode() + b"\n")
    root = tree({f"d/{i}": b"x" * i for i in range(300)})
    result = subprocess.run(
        [sys.executable, "-m", "hashpar", "make", str(root), "--exclude", "d/1*"],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert len(json.loads(result.stdout)["files"]) == 300 - 111  # 1, 10-19, 100-199
    missing = subprocess.run(
        [sys.executable, "-m", "hashpar", "verify", "-", "--root", str(root)],
        input=result.stdout.replace(b'"d/0"', b'"d/gone"'),
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 1
    assert b"d/gone" in missing.stdout and missing.stdout.endswith(b"\n")


def test_stop_children_kills_a_worker_left_running() -> None:
    """The net under os._exit: a multiprocessing child still alive at the end is killed."""
    import multiprocessing
    import time

    from hashpar.cli import _stop_children

    child = multiprocessing.get_context("fork").Process(target=time.sleep, args=(60,))
    child.start()
    _stop_children()
    assert not child.is_alive() and child.exitcode is not None


@pytest.mark.parametrize("one_file", [False, True])
def test_a_root_and_an_exclude_that_are_not_utf8_are_written_and_read_back(
    tmp_path: Path, one_file: bool
) -> None:
    """Such a root (and pattern) is written as a key is, NUL-marked with escapes: make used to
    end with a traceback, after all the hashing, when it wrote the manifest's header."""
    root = tmp_path / os.fsdecode(b"caf\xe9")
    root.mkdir()
    (root / "kept").write_bytes(b"kept")
    (root / os.fsdecode(b"skip\xff")).write_bytes(b"left out")
    target = root / "kept" if one_file else root
    out = tmp_path / "m.json"
    made = run_hashpar("make", target, "--exclude", os.fsdecode(b"skip\xff"), "-o", out)
    assert (made.returncode, made.stderr) == (0, b"")
    doc = json.loads(out.read_bytes())
    assert doc["root"] == "\0" + os.fspath(target).replace(os.fsdecode(b"\xe9"), "\\xe9")
    assert doc["excludes"] == ["\0skip\\xff"]
    assert list(doc["files"]) == ["kept"]
    checked = run_hashpar("verify", out)
    assert (checked.returncode, checked.stderr) == (0, b"")
    assert b"1 entry verified: 1 ok" in checked.stdout


def test_an_error_message_that_names_a_file_not_utf8_is_written_with_escapes(
    tmp_path: Path,
) -> None:
    """A symlink loop's message quotes the link's target. Found by review (session 8): a
    target that is not UTF-8 ended make with a traceback (exit 1) as the manifest was
    written; and the message on stderr showed the raw surrogate (``\\udcff``)."""
    root = tmp_path / "t"
    (root / os.fsdecode(b"\xff")).mkdir(parents=True)
    (root / os.fsdecode(b"\xff") / "loop").symlink_to(os.fsdecode(b"../\xff"))
    out = tmp_path / "m.json"
    made = run_hashpar("make", "--follow-symlinks", root, "-o", out)
    assert made.returncode == 1
    assert (
        made.stderr == b"hashpar: \\xff/loop: leads back to an ancestor (../\\xff) (symlink-loop)\n"
    )
    errors = json.loads(out.read_bytes())["errors"]
    assert errors == {
        "\0\\xff/loop": {"kind": "symlink-loop", "message": "leads back to an ancestor (../\\xff)"}
    }
    checked = run_hashpar("verify", out)
    assert checked.returncode == 1 and b"leads back to an ancestor (../\\xff)" in checked.stdout


def test_o_through_a_symlink_replaces_the_file_it_leads_to(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a").write_bytes(b"a")
    real = tmp_path / "real.json"
    real.write_bytes(b"old")
    real.chmod(0o640)
    link = tmp_path / "link.json"
    link.symlink_to("real.json")
    made = run_hashpar("make", tmp_path / "t", "-o", link)
    assert (made.returncode, made.stderr) == (0, b"")
    assert link.is_symlink() and os.readlink(link) == "real.json"
    assert list(json.loads(real.read_bytes())["files"]) == ["a"]
    assert real.stat().st_mode & 0o7777 == 0o640  # kept, not mkstemp's 0600


def test_o_to_a_new_file_gets_the_umask_mode(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    old = os.umask(0o027)
    try:
        made = run_hashpar("make", tmp_path / "t", "-o", tmp_path / "new.json")
    finally:
        os.umask(old)
    assert made.returncode == 0
    assert (tmp_path / "new.json").stat().st_mode & 0o7777 == 0o640


def test_o_to_a_fifo_writes_through_it_and_leaves_it_a_fifo(tmp_path: Path) -> None:
    """`-o /dev/stdout`, `-o /dev/null` and a FIFO are written through, never replaced by a
    file (which, run as root, once turned /dev/null into a regular file)."""
    import stat
    import threading

    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "a").write_bytes(b"a")
    fifo = tmp_path / "out"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()), daemon=True)
    reader.start()
    made = run_hashpar("make", tmp_path / "t", "-o", fifo)
    reader.join(timeout=30)
    assert (made.returncode, made.stderr) == (0, b"")
    assert stat.S_ISFIFO(fifo.lstat().st_mode)
    assert list(json.loads(received[0])["files"]) == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "t"]  # no temp file left


def test_o_dev_stdout_with_stdout_a_pipe_writes_into_the_pipe(tmp_path: Path) -> None:
    """/dev/stdout leads to /proc/self/fd/1, whose link reads ``pipe:[N]``, a name nothing
    can open: the target is opened by the name given (was: exit 2, `cannot write
    /dev/stdout: No such file or directory`)."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_bytes(b"a\n")
    made = run_hashpar("make", tmp_path / "d", "-o", "/dev/stdout")  # stdout is a pipe
    assert (made.returncode, made.stderr) == (0, b"")
    assert list(json.loads(made.stdout)["files"]) == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]


def test_o_dev_stdout_appended_to_a_file_keeps_what_the_file_held(tmp_path: Path) -> None:
    """``-o /dev/stdout >> log`` writes through the descriptor, as ``> log`` would: reopened
    by its name (or replaced as the regular file it leads to) the log lost its contents."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_bytes(b"a\n")
    log = tmp_path / "log"
    log.write_bytes(b"before\n")
    command = f"{sys.executable} -m hashpar make -q d -o /dev/stdout >> log"
    subprocess.run(command, shell=True, cwd=tmp_path, check=True, timeout=60)
    before, manifest = log.read_bytes().split(b"\n", 1)
    assert before == b"before" and list(json.loads(manifest)["files"]) == ["a"]


@pytest.mark.parametrize(
    "name",
    [
        "/dev//stdout",
        "link-to-stdout",
        "/proc/self/../self/fd/1",
        "alias/L",  # alias -> real/sub, L -> ../stdoutlink: '..' resolved after the link
        "/proc/self/root/proc/self/fd/1",
    ],
)
def test_any_name_for_stdout_is_written_through(tmp_path: Path, name: str) -> None:
    """Decided by where the name leads, not by how it is spelt (a review found /dev//stdout
    and a link to /dev/stdout still replaced the file stdout was appending to)."""
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_bytes(b"a\n")
    (tmp_path / "link-to-stdout").symlink_to("/dev/stdout")
    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "real" / "stdoutlink").symlink_to("/dev/stdout")
    (tmp_path / "real" / "sub" / "L").symlink_to("../stdoutlink")
    (tmp_path / "alias").symlink_to("real/sub")
    (tmp_path / "log").write_bytes(b"before\n")
    command = f"{sys.executable} -m hashpar make -q d -o '{name}' >> log"
    subprocess.run(command, shell=True, cwd=tmp_path, check=True, timeout=60)
    before, manifest = (tmp_path / "log").read_bytes().split(b"\n", 1)
    assert before == b"before" and list(json.loads(manifest)["files"]) == ["a"]


def test_o_dev_stdout_into_a_file_in_the_tree_leaves_that_file_out(tmp_path: Path) -> None:
    """As -o FILE does (a review found it listed once -o /dev/stdout was written through)."""
    (tmp_path / "a").write_bytes(b"a\n")
    command = f"{sys.executable} -m hashpar make -q . -o /dev/stdout > m.json"
    subprocess.run(command, shell=True, cwd=tmp_path, check=True, timeout=60)
    assert list(json.loads((tmp_path / "m.json").read_bytes())["files"]) == ["a"]


def test_a_deleted_file_behind_stdout_leaves_nothing_out(tmp_path: Path) -> None:
    """Its /proc name ends in ' (deleted)', which may be a real file's name in the tree."""
    tree = tmp_path / "t"
    tree.mkdir()
    (tree / "out (deleted)").write_bytes(b"a real file")
    (tree / "out").write_bytes(b"")
    os.link(tree / "out", tmp_path / "keep")  # another link: the deleted name's count stays 1
    command = f"exec >> t/out; rm t/out; {sys.executable} -m hashpar make -q t -o /dev/stdout"
    subprocess.run(command, shell=True, cwd=tmp_path, check=True, timeout=60)
    assert list(json.loads((tmp_path / "keep").read_bytes())["files"]) == ["out (deleted)"]


def test_a_standard_stream_closed_or_read_only_is_never_replaced(tmp_path: Path) -> None:
    """-o /dev/stdin reads as a file opened for reading: refused, the file intact. With
    stderr closed at start, fd 2 may hold any file the interpreter opened since: refused."""
    (tmp_path / "d").mkdir()
    (tmp_path / "keep").write_bytes(b"important\n")
    python = sys.executable
    run = functools.partial(
        subprocess.run, shell=True, cwd=tmp_path, capture_output=True, timeout=60, check=False
    )
    read_only = run(f"{python} -m hashpar make -q d -o /dev/stdin < keep")
    assert read_only.returncode == 2 and (tmp_path / "keep").read_bytes() == b"important\n"
    closed = run(f"{python} -m hashpar make -q d -o /dev//stderr 2>&-")
    assert closed.returncode == 2
    assert sorted(os.listdir(tmp_path)) == ["d", "keep"]


def test_o_process_substitution_writes_into_the_command(tmp_path: Path) -> None:
    """``hashpar make d -o >(gzip > m.gz)``: bash passes /dev/fd/63, a pipe (was: `cannot
    write /dev/fd/63: No such file or directory`, always)."""
    import gzip

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a").write_bytes(b"a\n")
    script = '"$@" -o >(gzip > m.gz); code=$?; wait $!; exit $code'  # $!: the gzip
    argv = [sys.executable, "-m", "hashpar", "make", "d"]
    run = subprocess.run(
        ["bash", "-c", script, "bash", *argv],
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert (run.returncode, run.stdout, run.stderr) == (0, b"", b"")
    assert list(json.loads(gzip.decompress((tmp_path / "m.gz").read_bytes()))["files"]) == ["a"]


def test_o_naming_a_directory_is_refused_before_any_hashing(tmp_path: Path) -> None:
    (tmp_path / "t").mkdir()
    made = run_hashpar("make", tmp_path / "t", "-o", tmp_path / "t")
    assert made.returncode == 2
    assert (
        made.stderr == f"hashpar: error: cannot write {tmp_path / 't'}: Is a directory\n".encode()
    )


def test_an_error_naming_a_path_is_one_line_whatever_the_path_holds(tmp_path: Path) -> None:
    for name, shown in [
        ("x\ny", b"x\\ny"),
        ("a\x1b[31mred", b"a\\x1b[31mred"),
        (os.fsdecode(b"caf\xe9"), b"caf\\xe9"),
    ]:
        run = run_hashpar("make", tmp_path / name)
        assert run.returncode == 2
        assert run.stderr == b"hashpar: error: " + os.fsencode(tmp_path) + b"/" + shown + (
            b": No such file or directory\n"
        )


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_help_to_a_full_stdout_is_one_line_and_exit_2() -> None:
    with open("/dev/full", "wb") as full:
        run = subprocess.run(
            [sys.executable, "-m", "hashpar", "make", "--help"],
            stdout=full,
            stderr=subprocess.PIPE,
            check=False,
        )
    assert (run.returncode, run.stderr) == (
        2,
        b"hashpar: error: cannot write standard output: No space left on device\n",
    )


def test_a_usage_error_with_stderr_closed_still_exits_2(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "hashpar", "make", os.fspath(tmp_path / "missing")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        close_fds=True,
        pass_fds=(),
        preexec_fn=lambda: os.close(2),
        check=False,
    )
    assert (run.returncode, run.stdout) == (2, b"")


def test_with_stderr_closed_diagnostics_never_reach_the_manifest_on_stdout(tmp_path: Path) -> None:
    """print(file=sys.stderr) writes to stdout when stderr is closed: the line naming an
    entry that could not be hashed once landed inside the manifest written there."""
    (tmp_path / "t").mkdir()
    (tmp_path / "t" / "ok").write_bytes(b"ok")
    (tmp_path / "t" / "C:x").write_bytes(b"a name make refuses to store")  # an error entry
    run = subprocess.run(
        [sys.executable, "-m", "hashpar", "make", os.fspath(tmp_path / "t")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: os.close(2),
        check=False,
    )
    assert run.returncode == 1
    doc = json.loads(run.stdout)
    assert (list(doc["files"]), list(doc["errors"])) == (["ok"], ["C:x"])


def test_a_tree_holding_names_make_will_not_store_still_gives_a_manifest_hashpar_reads(
    tmp_path: Path,
) -> None:
    """`C:x`, `..\\x` and a directory `C:d` are legal Linux names that a Windows reader
    would misread: make lists them under errors (kind unsafe-name), and verify, diff and
    export used to refuse that manifest outright (exit 2)."""
    tree = tmp_path / "t"
    (tree / "C:d").mkdir(parents=True)
    (tree / "ok").write_bytes(b"ok")
    (tree / "C:x").write_bytes(b"x")
    (tree / "..\\x").write_bytes(b"x")
    (tree / "C:d" / "in").write_bytes(b"x")
    out = tmp_path / "m.json"
    assert run_hashpar("make", tree, "-o", out).returncode == 1
    assert sorted(json.loads(out.read_bytes())["errors"]) == ["..\\x", "C:d", "C:x"]
    checked = run_hashpar("verify", out)
    assert checked.returncode == 1  # the three are errors again, not a refused manifest
    assert checked.stdout.endswith(
        b"1 entry verified: 1 ok, 0 modified, 0 missing, 0 new, 0 moved, 3 errors\n"
    )
    assert run_hashpar("diff", out, out).returncode == 1


def _cli_with(prelude: str, *args: str, **popen: object) -> subprocess.CompletedProcess[bytes]:
    """hashpar's ``main`` run in a fresh interpreter after ``prelude`` (a fault to inject)."""
    code = f"{prelude}\nfrom hashpar.cli import main\nimport sys\nmain(sys.argv[1:])"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, timeout=60, check=False, **popen
    )


def test_an_unexpected_exception_is_one_line_and_exit_2(tmp_path: Path) -> None:
    prelude = (
        "import hashpar.api\n"
        "def boom(*args, **kwargs): raise RuntimeError('a bug\\nin two lines')\n"
        "hashpar.api.make_manifest = boom"
    )
    result = _cli_with(prelude, "make", str(tmp_path))
    assert (result.returncode, result.stdout) == (2, b"")
    assert result.stderr == (
        b"hashpar: error: internal error (RuntimeError: a bug in two lines); "
        b"please report it, with --debug's output\n"
    )


def test_ctrl_c_while_the_command_line_is_loading_is_a_quiet_stop(tmp_path: Path) -> None:
    prelude = (
        "import sys\n"
        "class Interrupt:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'typer': raise KeyboardInterrupt\n"
        "sys.meta_path.insert(0, Interrupt())"
    )
    result = _cli_with(prelude, "make", str(tmp_path))
    assert (result.returncode, result.stdout, result.stderr) == (130, b"", b"")


def test_a_ctrl_c_ignored_by_whoever_started_hashpar_stays_ignored(
    tree: Callable[[TreeSpec], Path],
) -> None:
    """A script's background job starts with SIGINT ignored; hashpar keeps it so."""
    root = tree({"a": b"1", "b": b"2"})
    prelude = (
        "import os, signal, hashpar.api\n"
        "real = hashpar.api.make_manifest\n"
        "def interrupted(*args, **kwargs):\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    return real(*args, **kwargs)\n"
        "hashpar.api.make_manifest = interrupted"
    )

    def ignore_sigint() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    result = _cli_with(prelude, "make", str(root), preexec_fn=ignore_sigint)
    assert (result.returncode, result.stderr) == (0, b"")
    assert list(decode_manifest(result.stdout).files) == ["a", "b"]
    interrupted = _cli_with(prelude, "make", str(root))  # the same, not ignored: a stop
    assert (interrupted.returncode, interrupted.stdout, interrupted.stderr) == (130, b"", b"")


def test_dash_h_is_help_and_lists_the_commands_in_a_manifests_life() -> None:
    short, long = run_hashpar("-h"), run_hashpar("--help")
    assert (short.returncode, short.stderr) == (0, b"")
    assert short.stdout == long.stdout
    lines = short.stdout.decode().split("Commands:")[1].strip().splitlines()
    assert [line.split()[0] for line in lines] == ["make", "verify", "diff", "export", "import"]
    make_help = run_hashpar("make", "-h")
    assert make_help.returncode == 0 and b"Usage: hashpar make [OPTIONS] {PATH}" in make_help.stdout


def test_make_of_a_fifo_names_its_kind_and_never_opens_it(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe")  # opening it for reading would block: the run would hang
    result = run_hashpar("make", tmp_path / "pipe")
    assert (result.returncode, result.stdout) == (2, b"")
    assert result.stderr.decode() == (
        f"hashpar: error: {tmp_path / 'pipe'}: not a directory or regular file but a fifo; "
        "nothing to hash\n"
    )
