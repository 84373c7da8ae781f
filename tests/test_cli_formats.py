"""hashpar export and hashpar import end to end: exact stdout, stderr and exit codes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import build_tree, run_hashpar
from hashpar import decode_manifest

pytestmark = pytest.mark.timeout(60)

HELLO = hashlib.sha256(b"hello\n").hexdigest()
WORLD = hashlib.sha256(b"world\n").hexdigest()


def expect(
    result: subprocess.CompletedProcess[bytes],
    code: int,
    stdout: bytes | None = b"",
    stderr: bytes | str = b"",
) -> None:
    """Exit code, stderr exactly; stdout exactly unless None."""
    expected_err = stderr.encode() if isinstance(stderr, str) else stderr
    got = (
        (result.returncode, result.stderr)
        if stdout is None
        else (result.returncode, result.stderr, result.stdout)
    )
    want = (code, expected_err) if stdout is None else (code, expected_err, stdout)
    assert got == want


@pytest.fixture
def sha_manifest(tmp_path: Path) -> Path:
    root = build_tree(tmp_path / "tree", {"a.txt": b"hello\n", "dir/b.txt": b"world\n"})
    result = run_hashpar("make", root, "--algo", "sha256", "-q", "-o", tmp_path / "m.json")
    assert result.returncode == 0
    return tmp_path / "m.json"


# -- export -----------------------------------------------------------------------------------


def test_export_each_format_to_stdout(sha_manifest: Path) -> None:
    sums = f"{HELLO}  a.txt\n{WORLD}  dir/b.txt\n".encode()
    expect(run_hashpar("export", sha_manifest, "--format", "sums"), 0, sums)
    bsd = f"SHA256 (a.txt) = {HELLO}\nSHA256 (dir/b.txt) = {WORLD}\n".encode()
    expect(run_hashpar("export", sha_manifest, "-f", "bsd"), 0, bsd)
    bagit = f"{HELLO}  data/a.txt\n{WORLD}  data/dir/b.txt\n".encode()
    expect(run_hashpar("export", sha_manifest, "-f", "bagit"), 0, bagit)


def test_export_to_a_file(sha_manifest: Path, tmp_path: Path) -> None:
    expect(run_hashpar("export", sha_manifest, "-f", "sums", "-o", tmp_path / "SUMS"), 0)
    assert (tmp_path / "SUMS").read_bytes() == f"{HELLO}  a.txt\n{WORLD}  dir/b.txt\n".encode()
    assert sorted(os.listdir(tmp_path)) == ["SUMS", "m.json", "tree"]  # no temp file left


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-f", "sums", "--bag", "x"], "--bag needs --format bagit"),
        (
            ["-f", "bagit", "--bag", "x", "-o", "y"],
            "--bag writes its files into BAGDIR: leave out -o",
        ),
        (["-f", "csv"], None),
    ],
)
def test_export_usage_errors(sha_manifest: Path, args: list[str], message: str | None) -> None:
    result = run_hashpar("export", sha_manifest, *args)
    if message is None:
        assert result.returncode == 2
        assert result.stderr.startswith(b"hashpar: error: Invalid value for '--format' / '-f'")
    else:
        expect(result, 2, b"", f"hashpar: error: {message}\n")


def test_export_of_a_missing_manifest(tmp_path: Path) -> None:
    expect(
        run_hashpar("export", tmp_path / "nope.json", "-f", "sums"),
        2,
        b"",
        f"hashpar: error: cannot read manifest {tmp_path / 'nope.json'}: "
        "No such file or directory\n",
    )


def test_blake3_cannot_become_bagit(tmp_path: Path) -> None:
    build_tree(tmp_path / "t", {"a": b"x"})
    run_hashpar("make", tmp_path / "t", "-q", "-o", tmp_path / "m.json")
    expect(
        run_hashpar("export", tmp_path / "m.json", "-f", "bagit"),
        2,
        b"",
        "hashpar: error: BagIt has no blake3 manifests (RFC 8493 knows MD5, SHA-1, SHA-256 and "
        "SHA-512): make the manifest with --algo sha256 to export a bag\n",
    )


def test_names_b3sum_cannot_carry_are_an_error_not_a_line(tmp_path: Path) -> None:
    build_tree(tmp_path / "t", {b"caf\xe9": b"x", "ok": b"y"})
    run_hashpar("make", tmp_path / "t", "-q", "-o", tmp_path / "m.json")
    expect(
        run_hashpar("export", tmp_path / "m.json", "-f", "sums", "-o", tmp_path / "B3SUMS"),
        2,
        b"",
        "hashpar: error: 1 name(s) cannot be written for b3sum, whose check files are UTF-8 "
        "and refuse U+FFFD: caf\\xe9 (use --format bsd, or rename them)\n",
    )
    assert not (tmp_path / "B3SUMS").exists()


def test_entries_the_manifest_could_not_hash_are_reported_and_exit_1(tmp_path: Path) -> None:
    manifest = {
        "version": 1,
        "algorithm": "sha256",
        "root": "t",
        "files": {"a": {"size": 6, "digest": HELLO}},
        "errors": {"locked": {"kind": "unreadable", "message": "Permission denied"}},
        "symlinks": {"link": {"target": "a"}},
    }
    (tmp_path / "m.json").write_text(json.dumps(manifest))
    expect(
        run_hashpar("export", tmp_path / "m.json", "-f", "sums"),
        1,
        f"{HELLO}  a\n".encode(),
        "hashpar: locked: not exported: the manifest has no digest (unreadable: Permission "
        "denied)\nhashpar: note: 1 symlink(s) and 0 special file(s) in the manifest are not "
        "regular files and are not exported\n",
    )


# -- export --bag -----------------------------------------------------------------------------


def make_bag_manifest(tmp_path: Path) -> tuple[Path, Path]:
    bag = tmp_path / "bag"
    build_tree(bag / "data", {"a.txt": b"hello\n", "dir/b.txt": b"world\n"})
    result = run_hashpar("make", bag / "data", "--algo", "sha256", "-q", "-o", tmp_path / "m.json")
    assert result.returncode == 0
    return bag, tmp_path / "m.json"


def test_export_bag_writes_the_tag_files_and_keeps_existing_bag_info(tmp_path: Path) -> None:
    bag, manifest = make_bag_manifest(tmp_path)
    (bag / "bag-info.txt").write_bytes(b"Source-Organization: Example\nPayload-Oxum: 1.1\n")
    expect(run_hashpar("export", manifest, "-f", "bagit", "--bag", bag), 0)
    assert (bag / "bagit.txt").read_bytes() == (
        b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
    )
    assert (bag / "manifest-sha256.txt").read_bytes() == (
        f"{HELLO}  data/a.txt\n{WORLD}  data/dir/b.txt\n".encode()
    )
    info = (bag / "bag-info.txt").read_bytes().splitlines()
    assert info[0] == b"Source-Organization: Example"
    assert info[1] == b"Bag-Software-Agent: hashpar 0.1.0"
    assert info[2].startswith(b"Bagging-Date: 20")
    assert info[3:] == [b"Payload-Oxum: 12.2"]
    tags = (bag / "tagmanifest-sha256.txt").read_text().splitlines()
    assert [line[66:] for line in tags] == ["bag-info.txt", "bagit.txt", "manifest-sha256.txt"]


def test_export_bag_refuses_a_manifest_that_is_not_of_data(tmp_path: Path) -> None:
    bag, _ = make_bag_manifest(tmp_path)
    run_hashpar("make", bag, "--algo", "sha256", "-q", "-o", tmp_path / "whole.json")
    expect(
        run_hashpar("export", tmp_path / "whole.json", "-f", "bagit", "--bag", bag),
        2,
        b"",
        f"hashpar: error: the manifest's root is {bag}, not {bag}/data: make the manifest of "
        f"{bag}/data to export this bag\n",
    )
    assert sorted(os.listdir(bag)) == ["data"]


MISMATCH = "the manifest does not match data/ (run hashpar make again)"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            "added",
            "1 payload file(s) not in the manifest: new.txt: " + MISMATCH,
        ),
        (
            "removed",
            "1 payload file(s) gone: a.txt: " + MISMATCH,
        ),
        ("md5", "{bag} has manifest-md5.txt, which would be left stale"),
    ],
)
def test_export_bag_refuses_when_the_bag_would_be_invalid(
    tmp_path: Path, change: str, message: str
) -> None:
    bag, manifest = make_bag_manifest(tmp_path)
    if change == "added":
        (bag / "data" / "new.txt").write_bytes(b"")
    elif change == "removed":
        (bag / "data" / "a.txt").unlink()
    else:
        (bag / "manifest-md5.txt").write_bytes(b"")
    expect(
        run_hashpar("export", manifest, "-f", "bagit", "--bag", bag),
        2,
        b"",
        f"hashpar: error: {message.format(bag=bag)}\n",
    )
    assert not (bag / "bagit.txt").exists()


# -- import -----------------------------------------------------------------------------------


def test_import_names_its_root_escaped_in_its_note(tmp_path: Path) -> None:
    """Found by review (session 8): the note printed the root raw, so a root named with an
    escape sequence and a new line could colour the terminal and forge a line."""
    root = tmp_path / "r\x1b[31m\nx"
    build_tree(root, {"a.txt": b"hello\n"})
    (tmp_path / "SHA256SUMS").write_text(f"{HELLO}  ./a.txt\n{WORLD}  gone.txt\n")
    result = run_hashpar("import", tmp_path / "SHA256SUMS", "--root", root)
    shown = f"{tmp_path}/r\\x1b[31m\\nx"
    expect(
        result,
        0,
        None,
        f"hashpar: note: 1 of 2 file(s) were not found under {shown}: their sizes are left out\n",
    )


def test_import_fills_sizes_from_the_tree_where_files_exist(tmp_path: Path) -> None:
    build_tree(tmp_path / "t", {"a.txt": b"hello\n"})
    (tmp_path / "SHA256SUMS").write_text(f"{HELLO}  ./a.txt\n{WORLD}  gone.txt\n")
    result = run_hashpar("import", tmp_path / "SHA256SUMS", "--root", tmp_path / "t")
    expect(
        result,
        0,
        None,
        f"hashpar: note: 1 of 2 file(s) were not found under {tmp_path / 't'}: "
        "their sizes are left out\n",
    )
    manifest = json.loads(result.stdout)
    assert manifest["algorithm"] == "sha256"
    assert manifest["root"] == os.fspath(tmp_path / "t")
    assert manifest["files"] == {
        "a.txt": {"size": 6, "digest": HELLO},
        "gone.txt": {"digest": WORLD},
    }


def test_import_with_a_root_that_is_not_a_directory_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "SHA256SUMS").write_text(f"{HELLO}  a.txt\n")
    out = tmp_path / "m.json"
    result = run_hashpar("import", tmp_path / "SHA256SUMS", "--root", tmp_path / "nope", "-o", out)
    expect(result, 2, b"", f"hashpar: error: --root {tmp_path / 'nope'}: not a directory\n")
    assert not out.exists()


def test_import_output_verifies_as_a_manifest(tmp_path: Path) -> None:
    build_tree(tmp_path / "t", {"a.txt": b"hello\n"})
    (tmp_path / "sums").write_text(f"{HELLO}  a.txt\n")
    result = run_hashpar(
        "import",
        tmp_path / "sums",
        "--algo",
        "sha256",
        "--root",
        tmp_path / "t",
        "-o",
        tmp_path / "m.json",
    )
    expect(result, 0)
    decoded = decode_manifest((tmp_path / "m.json").read_bytes())
    assert decoded.files["a.txt"].digest == HELLO
    assert decoded.generator == "hashpar 0.1.0"


def test_import_refuses_malformed_lines_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "SHA256SUMS").write_text(f"{HELLO}  a\nnot a line\n{WORLD}  ../up\n")
    expect(
        run_hashpar("import", tmp_path / "SHA256SUMS", "-o", tmp_path / "m.json"),
        2,
        b"",
        f"hashpar: {tmp_path}/SHA256SUMS:2: not a checksum line: expected '<hex digest>  "
        "<path>' or 'ALGO (path) = hex'\n"
        f"hashpar: {tmp_path}/SHA256SUMS:3: '..' path refused: ../up\n"
        f"hashpar: error: {tmp_path}/SHA256SUMS: 2 malformed line(s): nothing imported\n",
    )
    assert not (tmp_path / "m.json").exists()


def test_import_with_no_valid_line_is_exit_2(tmp_path: Path) -> None:
    expect(
        run_hashpar("import", "-", "--algo", "sha256", stdin=b"garbage\n"),
        2,
        b"",
        "hashpar: error: standard input: not a checksum file: line 1: not a checksum line: "
        "expected '<hex digest>  <path>' or 'ALGO (path) = hex'\n",
    )


def test_import_needs_algo_when_nothing_says_it(tmp_path: Path) -> None:
    (tmp_path / "sums.txt").write_text(f"{HELLO}  a\n")
    expect(
        run_hashpar("import", tmp_path / "sums.txt"),
        2,
        b"",
        f"hashpar: error: {tmp_path}/sums.txt: cannot tell SHA-256 from BLAKE3 (both digests "
        "are 64 hex digits and the file name does not say): give --algo sha256 or --algo "
        "blake3\n",
    )


def test_import_a_bag_directory_or_its_manifest(tmp_path: Path) -> None:
    bag, manifest = make_bag_manifest(tmp_path)
    expect(run_hashpar("export", manifest, "-f", "bagit", "--bag", bag), 0)
    from_dir = run_hashpar("import", bag)
    from_file = run_hashpar("import", bag / "manifest-sha256.txt")
    for result in (from_dir, from_file):
        expect(result, 0, None)
        imported = json.loads(result.stdout)
        assert imported["root"] == os.fspath(bag / "data")
        assert imported["files"] == {
            "a.txt": {"size": 6, "digest": HELLO},
            "dir/b.txt": {"size": 6, "digest": WORLD},
        }


def test_import_of_a_directory_that_is_not_a_bag(tmp_path: Path) -> None:
    expect(
        run_hashpar("import", tmp_path),
        2,
        b"",
        f"hashpar: error: {tmp_path}: a directory without bagit.txt is not a bag\n",
    )


def test_import_refuses_a_file_listed_below_another_and_writes_nothing(tmp_path: Path) -> None:
    """No tree holds both "a" and "a/b" as files; verify refused such an import's output."""
    sums = tmp_path / "SHA256SUMS"
    sums.write_text(f"{HELLO}  a/b\n{HELLO}  a\n")
    out = tmp_path / "m.json"
    out.write_bytes(b"old")
    run = run_hashpar("import", sums, "-o", out)
    assert run.returncode == 2
    assert (
        run.stderr
        == (
            f'hashpar: error: {sums}: unsafe path in manifest: files["a/b"]: lies below the file '
            '"a": nothing imported\n'
        ).encode()
    )
    assert out.read_bytes() == b"old"


def test_import_from_standard_input_names_it_so_in_its_last_line(tmp_path: Path) -> None:
    expect(
        run_hashpar("import", "-", "--algo", "sha256", stdin=f"{HELLO}  a\nzz  b\n".encode()),
        2,
        b"",
        "hashpar: standard input:2: not a checksum line: expected '<hex digest>  <path>' or "
        "'ALGO (path) = hex'\n"
        "hashpar: error: standard input: 1 malformed line(s): nothing imported\n",
    )


def test_import_of_a_hashpar_manifest_says_so_in_one_line(tmp_path: Path) -> None:
    build_tree(tmp_path / "t", {"a": b"hello\n"})
    manifest = tmp_path / "m.json"
    expect(run_hashpar("make", tmp_path / "t", "-q", "-o", manifest), 0)
    expect(
        run_hashpar("import", manifest),
        2,
        b"",
        f"hashpar: error: {manifest}: JSON, not a checksum file (a hashpar manifest is verified "
        "without --format; hashpar export writes sums from one)\n",
    )


def test_import_names_the_first_ten_problem_lines_and_counts_the_rest(tmp_path: Path) -> None:
    lines = [f"{HELLO}  a", *(f"{WORLD}  ../{n}" for n in range(2, 14)), f"{WORLD}  a"]
    (tmp_path / "SHA256SUMS").write_text("".join(line + "\n" for line in lines))
    sums = tmp_path / "SHA256SUMS"
    named = "".join(f"hashpar: {sums}:{n}: '..' path refused: ../{n}\n" for n in range(2, 12))
    expect(
        run_hashpar("import", sums),
        2,
        b"",
        named
        + f"hashpar: {sums}: ... and 3 more unusable lines\n"
        + f"hashpar: error: {sums}: 12 malformed and 1 conflicting line(s): nothing imported\n",
    )
