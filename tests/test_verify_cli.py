"""``hashpar verify`` end to end: make, change the tree, verify; exact output and exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import hashpar
from conftest import TreeSpec, build_tree, run_hashpar

pytestmark = pytest.mark.timeout(60)

SPEC: TreeSpec = {
    "keep.txt": b"unchanged\n",
    "flip.bin": bytes(range(256)),
    "trunc.txt": b"to be truncated\n" * 10,
    "append.txt": b"short\n",
    "delete.txt": b"going away\n",
    "rename_me.txt": b"moves elsewhere\n",
    "sub/deep.txt": b"deep\n",
}


def make(root: Path, manifest: Path, *args: str) -> None:
    result = run_hashpar("make", root, "-o", manifest, *args)
    assert (result.returncode, result.stderr) == (0, b""), result.stderr


def verify(*args: str | os.PathLike[str], **kwargs: Any) -> tuple[int, str, str]:
    result = run_hashpar("verify", *args, **kwargs)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


def change_everything(root: Path) -> None:
    data = bytearray((root / "flip.bin").read_bytes())
    data[100] ^= 0x01
    (root / "flip.bin").write_bytes(bytes(data))
    os.truncate(root / "trunc.txt", 7)
    with open(root / "append.txt", "ab") as f:
        f.write(b"more\n")
    (root / "delete.txt").unlink()
    (root / "added.txt").write_bytes(b"brand new\n")
    (root / "rename_me.txt").rename(root / "sub" / "renamed.txt")


CHANGED_LINES = [
    "MODIFIED append.txt",
    "MODIFIED flip.bin",
    "MODIFIED trunc.txt",
    "MISSING delete.txt",
    "NEW added.txt",
    "MOVED rename_me.txt -> sub/renamed.txt",
]
CHANGED_SUMMARY = (
    "hashpar: 7 entries verified: 2 ok, 3 modified, 1 missing, 1 new, 1 moved, 0 errors"
)
CLEAN_SUMMARY = "hashpar: 7 entries verified: 7 ok, 0 modified, 0 missing, 0 new, 0 moved, 0 errors"


def parse_human(stdout: str) -> dict[str, Any]:
    """The problem lines of the human output, in the shape of the JSON output."""
    out: dict[str, Any] = {"modified": [], "missing": [], "new": [], "moved": [], "errors": []}
    for line in stdout.splitlines()[:-1]:
        word, _, rest = line.partition(" ")
        if word == "MOVED":
            source, _, target = rest.partition(" -> ")
            out["moved"].append({"from": source, "to": target})
        elif word == "ERROR":
            out["errors"].append(rest.partition(": ")[0])
        else:
            out[word.lower()].append(rest)
    return out


@pytest.fixture
def made(tmp_path: Path) -> tuple[Path, Path]:
    """A tree and its manifest (stored outside it)."""
    root = build_tree(tmp_path / "tree", SPEC)
    manifest = tmp_path / "manifest.json"
    make(root, manifest)
    return root, manifest


def test_an_unchanged_tree_verifies(made: tuple[Path, Path]) -> None:
    _, manifest = made
    assert verify(manifest) == (0, CLEAN_SUMMARY + "\n", "")


def test_every_change_is_reported_in_human_and_json_output_which_agree(
    made: tuple[Path, Path],
) -> None:
    root, manifest = made
    change_everything(root)
    code, stdout, stderr = verify(manifest)
    assert (code, stderr) == (1, "")
    assert stdout == "\n".join([*CHANGED_LINES, CHANGED_SUMMARY]) + "\n"
    code, stdout, stderr = verify(manifest, "--json")
    assert (code, stderr) == (1, "")
    document = json.loads(stdout)
    assert document == {
        "summary": {
            "ok": 2,
            "modified": 3,
            "missing": 1,
            "new": 1,
            "moved": 1,
            "errors": 0,
            "verified": 7,
            "ignore_new": False,
            "new_files_checked": True,
            "malformed": 0,
            "conflicting": 0,
        },
        "modified": ["append.txt", "flip.bin", "trunc.txt"],
        "missing": ["delete.txt"],
        "new": ["added.txt"],
        "moved": [{"from": "rename_me.txt", "to": "sub/renamed.txt"}],
        "errors": [],
        "input_lines": [],
    }
    human = parse_human("\n".join([*CHANGED_LINES, CHANGED_SUMMARY]))
    assert human == {key: document[key] for key in human}


def test_quiet_prints_only_the_problems(made: tuple[Path, Path]) -> None:
    root, manifest = made
    assert verify(manifest, "-q") == (0, "", "")
    change_everything(root)
    assert verify(manifest, "-q") == (1, "\n".join(CHANGED_LINES) + "\n", "")


def test_jobs_1_and_jobs_2_agree(tmp_path: Path) -> None:
    spec = {f"d{i % 7}/f{i:03}": f"file {i}\n".encode() * (i % 5) for i in range(400)}
    root = build_tree(tmp_path / "tree", spec)
    manifest = tmp_path / "m.json"
    make(root, manifest)
    change_everything(build_tree(root, {k: v for k, v in SPEC.items() if k != "added.txt"}))
    (root / "d3" / "f003").write_bytes(b"changed")
    outputs = [verify(manifest, "-j", jobs) for jobs in ("1", "2")]
    assert outputs[0] == outputs[1]
    assert outputs[0][1].splitlines()[-1] == (
        "hashpar: 400 entries verified: 399 ok, 1 modified, 0 missing, 7 new, 0 moved, 0 errors"
    )


def test_root_checks_a_copy(made: tuple[Path, Path], tmp_path: Path) -> None:
    root, manifest = made
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    shutil.rmtree(root)
    assert verify(manifest, "--root", copy) == (0, CLEAN_SUMMARY + "\n", "")
    (copy / "keep.txt").write_bytes(b"edited in the copy")
    code, stdout, _ = verify(manifest, "--root", copy, "-q")
    assert (code, stdout) == (1, "MODIFIED keep.txt\n")


def test_a_missing_root_is_unusable_input(made: tuple[Path, Path]) -> None:
    root, manifest = made
    shutil.rmtree(root)
    assert verify(manifest) == (
        2,
        "",
        f"hashpar: error: cannot verify {root}: No such file or directory "
        "(use --root to check a copy elsewhere)\n",
    )


def test_a_relative_root_is_resolved_against_the_current_directory(tmp_path: Path) -> None:
    build_tree(tmp_path / "tree", SPEC)
    result = run_hashpar("make", "tree", "-o", "m.json", cwd=tmp_path)
    assert result.returncode == 0
    assert verify("m.json", cwd=tmp_path) == (0, CLEAN_SUMMARY + "\n", "")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copytree(tmp_path / "tree", elsewhere / "tree")
    (elsewhere / "tree" / "keep.txt").unlink()
    code, stdout, _ = verify(tmp_path / "m.json", "-q", cwd=elsewhere)
    assert (code, stdout) == (1, "MISSING keep.txt\n")


def test_a_manifest_from_standard_input(made: tuple[Path, Path]) -> None:
    root, manifest = made
    (root / "keep.txt").unlink()
    code, stdout, stderr = verify("-", "-q", stdin=manifest.read_bytes())
    assert (code, stdout, stderr) == (1, "MISSING keep.txt\n", "")


@pytest.mark.parametrize("how", ["-o", "redirect"])
def test_a_manifest_inside_its_own_tree_is_left_out(tmp_path: Path, how: str) -> None:
    root = build_tree(tmp_path / "tree", SPEC)
    if how == "-o":
        result = run_hashpar("make", ".", "-o", "manifest.json", cwd=root)
        assert result.returncode == 0
    else:  # the shell creates manifest.json (empty) before hashpar walks the tree
        command = f"{sys.executable} -m hashpar make . > manifest.json"
        subprocess.run(command, shell=True, cwd=root, check=True, timeout=60)
        assert b'"manifest.json"' in (root / "manifest.json").read_bytes()
    assert verify("manifest.json", cwd=root) == (0, CLEAN_SUMMARY + "\n", "")
    code, stdout, _ = verify("manifest.json", "--root", ".", cwd=root)
    assert (code, stdout) == (0, CLEAN_SUMMARY + "\n")


def test_a_copy_holding_a_copy_of_the_manifest_verifies_clean(tmp_path: Path) -> None:
    """make -o tree/manifest.json, copy the tree, verify the copy: its manifest.json is the
    manifest's own file at its place, not a new file."""
    root = build_tree(tmp_path / "tree", SPEC)
    assert run_hashpar("make", root, "-o", root / "manifest.json").returncode == 0
    shutil.copytree(root, tmp_path / "copy", symlinks=True)
    result = verify(root / "manifest.json", "--root", tmp_path / "copy")
    assert result == (0, CLEAN_SUMMARY + "\n", "")


def test_ignore_new_reports_new_files_without_failing(made: tuple[Path, Path]) -> None:
    root, manifest = made
    (root / "extra").write_bytes(b"x")
    summary = "hashpar: 7 entries verified: 7 ok, 0 modified, 0 missing, 1 new (ignored), 0 moved"
    assert verify(manifest, "--ignore-new") == (0, f"NEW extra\n{summary}, 0 errors\n", "")
    assert verify(manifest)[0] == 1
    document = json.loads(verify(manifest, "--ignore-new", "--json")[1])
    assert (document["new"], document["summary"]["ignore_new"]) == (["extra"], True)


def test_a_zero_entry_manifest_says_so(tmp_path: Path) -> None:
    root = tmp_path / "empty"
    root.mkdir()
    make(root, tmp_path / "m.json")
    summary = "hashpar: 0 entries verified: 0 ok, 0 modified, 0 missing, 0 new, 0 moved, 0 errors"
    assert verify(tmp_path / "m.json") == (0, summary + "\n", "")
    (root / "later").write_bytes(b"")
    assert verify(tmp_path / "m.json", "-q") == (1, "NEW later\n", "")


NAMES = {
    b"caf\xe9.txt": b"latin-1 name",
    "café.txt".encode(): b"nfc",
    "cafe\u0301.txt".encode(): b"nfd",
    b"new\nline": b"newline",
    b"tab\tand\\backslash": b"tab",
    b"-leading-dash": b"dash",
    b"esc\x1b[31mred": b"escape",
}


def test_hostile_names_survive_make_and_verify_and_cannot_forge_lines(tmp_path: Path) -> None:
    root = build_tree(tmp_path / "tree", NAMES)
    manifest = tmp_path / "m.json"
    make(root, manifest)
    assert verify(manifest)[0] == 0
    for name in NAMES:
        os.rename(os.path.join(bytes(root), name), os.path.join(bytes(root), b"moved-" + name))
    code, stdout, _ = verify(manifest)
    assert code == 1
    assert stdout.splitlines() == [
        "MOVED -leading-dash -> moved--leading-dash",
        "MOVED cafe\u0301.txt -> moved-cafe\u0301.txt",  # NFD
        "MOVED caf\u00e9.txt -> moved-caf\u00e9.txt",  # NFC: a different name
        "MOVED caf\\xe9.txt -> moved-caf\\xe9.txt",  # Latin-1 byte, not UTF-8
        "MOVED esc\\x1b[31mred -> moved-esc\\x1b[31mred",
        "MOVED new\\nline -> moved-new\\nline",
        "MOVED tab\\tand\\\\backslash -> moved-tab\\tand\\\\backslash",
        "hashpar: 7 entries verified: 0 ok, 0 modified, 0 missing, 0 new, 7 moved, 0 errors",
    ]
    moved = json.loads(verify(manifest, "--json")[1])["moved"]
    assert {"from": "\0caf\\xe9.txt", "to": "\0moved-caf\\xe9.txt"} in moved
    assert {"from": "new\nline", "to": "moved-new\nline"} in moved


def test_a_changed_type_is_an_error_and_a_fifo_is_never_opened(made: tuple[Path, Path]) -> None:
    root, manifest = made
    (root / "keep.txt").unlink()
    os.mkfifo(root / "keep.txt")
    (root / "append.txt").unlink()
    (root / "append.txt").mkdir()
    (root / "flip.bin").unlink()
    (root / "flip.bin").symlink_to("keep.txt")
    code, stdout, _ = verify(manifest, "-q", timeout=30)
    assert code == 1
    assert stdout.splitlines() == [
        "ERROR append.txt: was a regular file, is now a directory (type-changed)",
        "ERROR flip.bin: was a regular file, is now a symbolic link (type-changed)",
        "ERROR keep.txt: was a regular file, is now a fifo (type-changed)",
    ]


def _installed() -> str:
    command = shutil.which("hashpar")
    if command is None:
        pytest.fail("the hashpar command is not installed: run README's install command")
    return command


def _moved_to_another_disk(tmp_path: Path) -> list[str]:
    """The reproduction: make, then ``mv t/data ext/ && ln -s ../ext/data t/data``; the
    installed command, run from ``tmp_path`` with relative names. Returns the verify line."""
    command = _installed()
    build_tree(tmp_path / "t", {"data/x": b"x\n", "y": b"y\n"})
    made = subprocess.run(
        [command, "make", "t", "-q", "-o", "m.json"], cwd=tmp_path, capture_output=True, timeout=60
    )
    assert (made.returncode, made.stderr) == (0, b"")
    (tmp_path / "ext").mkdir()
    (tmp_path / "t" / "data").rename(tmp_path / "ext" / "data")
    (tmp_path / "t" / "data").symlink_to(Path("..", "ext", "data"))
    return [command, "verify", "m.json"]


def test_a_directory_replaced_by_a_link_leading_outside_is_reported(tmp_path: Path) -> None:
    """It was refused as an unsafe manifest (exit 2, nothing reported)."""
    verify_command = _moved_to_another_disk(tmp_path)
    result = subprocess.run(verify_command, cwd=tmp_path, capture_output=True, timeout=60)
    assert (result.returncode, result.stderr.decode()) == (1, "")
    assert result.stdout.decode().splitlines() == [
        "MISSING data/x",
        "NEW data",
        "hashpar: 2 entries verified: 1 ok, 0 modified, 1 missing, 1 new, 0 moved, 0 errors",
    ]


def _strace_runs() -> bool:
    if shutil.which("strace") is None:
        return False
    probe = subprocess.run(["strace", "-o", os.devnull, "true"], capture_output=True, check=False)
    return probe.returncode == 0


@pytest.mark.skipif(not _strace_runs(), reason="needs strace, and permission to trace")
def test_nothing_beyond_a_link_leading_outside_is_looked_at(tmp_path: Path) -> None:
    """Every system call of the run, workers included (``-j 2``), is traced: none names the
    directory the link leads to or a path below the link, nor uses a descriptor open on
    one. (The check this replaces resolved the link with realpath, an lstat of each
    component outside.)"""
    verify_command = _moved_to_another_disk(tmp_path)
    trace = tmp_path / "trace"
    strace = ["strace", "-f", "-qq", "-y", "-e", "trace=%file,%desc", "-o", str(trace)]
    result = subprocess.run(
        [*strace, *verify_command, "-j", "2", "-q"], cwd=tmp_path, capture_output=True, timeout=60
    )
    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        b"MISSING data/x\nNEW data\n",
        b"",
    )
    outside = str(tmp_path / "ext")
    below = str(tmp_path / "t" / "data") + "/"
    names = [f'"{outside}', f"<{outside}", f'"{below}', '"ext', '"t/data/']
    lines = trace.read_text(errors="replace").splitlines()
    assert any("readlink" in line and '"data"' in line for line in lines)  # the link was seen
    assert [line for line in lines if any(name in line for name in names)] == []


def without_dac(*args: str | os.PathLike[str]) -> subprocess.CompletedProcess[bytes]:
    """Run hashpar as root without the capabilities that bypass file permissions.

    (``setpriv --reuid=nobody`` cannot be used here: this Python lives under /root, mode
    700. Dropping CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH makes root obey mode bits.)
    """
    command = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    return subprocess.run(
        [*command, sys.executable, "-m", "hashpar", *map(os.fspath, args)],
        capture_output=True,
        timeout=60,
        check=False,
    )


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs util-linux setpriv")
def test_an_unreadable_file_is_an_error_never_modified(made: tuple[Path, Path]) -> None:
    root, manifest = made
    (root / "keep.txt").chmod(0)
    (root / "sub").chmod(0)
    result = without_dac("verify", manifest)
    assert (result.returncode, result.stderr) == (1, b"")
    assert result.stdout.decode().splitlines() == [
        "ERROR keep.txt: Permission denied (unreadable)",
        "ERROR sub: cannot list directory: Permission denied (unreadable)",
        "ERROR sub/deep.txt: not checked: sub: cannot list directory: Permission denied "
        "(unreadable)",
        "hashpar: 7 entries verified: 5 ok, 0 modified, 0 missing, 0 new, 0 moved, 3 errors",
    ]


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="needs util-linux setpriv")
def test_a_manifest_of_an_unlistable_root_can_be_verified(tmp_path: Path) -> None:
    root = build_tree(tmp_path / "tree", {"f": b"x"})
    root.chmod(0)
    manifest = tmp_path / "m.json"
    assert without_dac("make", root, "-o", manifest).returncode == 1
    result = without_dac("verify", manifest)
    assert result.returncode == 1
    assert result.stdout.decode().splitlines()[0] == (
        "ERROR .: cannot list directory: Permission denied (unreadable)"
    )


def test_output_errors_are_failures(made: tuple[Path, Path]) -> None:
    _, manifest = made
    with open("/dev/full", "wb") as full:
        result = subprocess.run(
            [sys.executable, "-m", "hashpar", "verify", manifest],
            stdout=full,
            stderr=subprocess.PIPE,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2
    assert (
        result.stderr == b"hashpar: error: cannot write standard output: No space left on device\n"
    )


def test_the_library_verifies_a_manifest_object(made: tuple[Path, Path]) -> None:
    _, manifest = made
    loaded = hashpar.load_manifest(str(manifest))
    assert hashpar.verify_tree(loaded, jobs=1) == hashpar.Report(verified=7, ok=7)


def test_a_big_manifest_gets_its_workers_before_it_is_loaded(tmp_path: Path) -> None:
    """Over 1 MiB of manifest, the pool starts first (workers then hold none of it)."""
    from hashpar.cli.cmd_verify import _EARLY_POOL_BYTES, _early_pool

    big, small = tmp_path / "big.json", tmp_path / "small.json"
    big.write_bytes(b" " * _EARLY_POOL_BYTES)
    small.write_bytes(b"{}")
    with _early_pool(str(big), 2) as pool:
        assert pool is not None and pool.submit(len, "abc").result() == 3
    for source, jobs in ((str(big), 1), (str(small), 2), ("-", 2), (str(tmp_path / "no"), 2)):
        with _early_pool(source, jobs) as pool:
            assert pool is None


def test_verify_of_a_big_manifest_reports_every_change(tmp_path: Path) -> None:
    root = build_tree(tmp_path / "t", {f"d{i // 500}/f{i}": str(i).encode() for i in range(8000)})
    made = run_hashpar("make", root, "-o", tmp_path / "m.json")
    assert made.returncode == 0 and (tmp_path / "m.json").stat().st_size > 1 << 20
    (root / "d3" / "f1500").write_bytes(b"changed")
    (root / "d9" / "f4999").unlink()
    done = run_hashpar("verify", tmp_path / "m.json", "-j", "2", "--json")
    assert done.returncode == 1, done.stderr
    report = json.loads(done.stdout)
    assert (report["modified"], report["missing"]) == (["d3/f1500"], ["d9/f4999"])
    assert report["summary"]["ok"] == 7998
