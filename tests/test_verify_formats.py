"""hashpar verify on sums files and bags: detection, inference, path rules, new-file detection,
malformed lines. Exact stdout, stderr and exit codes through the real command.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import blake3
import pytest

from conftest import build_tree, run_hashpar
from hashpar import verify_tree
from hashpar.compare import Report
from hashpar.formats import parse_checksums

pytestmark = pytest.mark.timeout(60)

A = b"alpha\n"
B = b"beta\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def b3(data: bytes) -> str:
    return str(blake3.blake3(data).hexdigest())


def summary(verified: int, ok: int, *, new: str = "new files not looked for", **counts: int) -> str:
    errors = counts.get("errors", 0)
    lines = "".join(
        f", {counts[kind]} {kind} line{'s' * (counts[kind] != 1)}"
        for kind in ("malformed", "conflicting")
        if counts.get(kind)
    )
    return (
        f"hashpar: {verified} {'entry' if verified == 1 else 'entries'} verified: {ok} ok, "
        f"{counts.get('modified', 0)} modified, {counts.get('missing', 0)} missing, {new}, "
        f"{counts.get('moved', 0)} moved, {errors} {'error' if errors == 1 else 'errors'}{lines}"
    )


def verify(
    *args: str | os.PathLike[str], cwd: Path | None = None, stdin: bytes | None = None
) -> tuple[int, str, str]:
    result = run_hashpar("verify", *args, cwd=cwd, stdin=stdin)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return build_tree(tmp_path / "tree", {"a.txt": A, "sub/b.txt": B})


def write_sums(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def test_a_sums_file_resolves_against_the_current_directory(tree: Path, tmp_path: Path) -> None:
    sums = write_sums(tmp_path / "SHA256SUMS", [f"{sha(A)}  a.txt", f"{sha(B)}  ./sub/b.txt"])
    (tree / "unlisted.txt").write_bytes(b"not looked at")
    assert verify(sums, cwd=tree) == (0, summary(2, 2) + "\n", "")


def test_paths_through_symlinks_inside_the_root_check_as_sha256sum_c_checks_them(
    tree: Path, tmp_path: Path
) -> None:
    """sha256sum -c opens each path, following links: so does verify, inside the root."""
    (tree / "linked").symlink_to("sub")
    (tree / "a-link").symlink_to("a.txt")
    (tree / "out").symlink_to(tmp_path)  # leads out of the root: never followed
    (tmp_path / "secret").write_bytes(A)
    lines = [f"{sha(B)}  linked/b.txt", f"{sha(A)}  a-link", f"{sha(A)}  a.txt"]
    sums = write_sums(tmp_path / "SHA256SUMS", lines)
    checked = subprocess.run(["sha256sum", "-c", sums], cwd=tree, capture_output=True)
    assert checked.returncode == 0, checked.stdout
    assert verify(sums, cwd=tree) == (0, summary(3, 3) + "\n", "")
    write_sums(sums, [*lines, f"{sha(A)}  out/secret"])
    assert verify(sums, cwd=tree) == (
        1,
        "MISSING out/secret\n" + summary(4, 3, missing=1) + "\n",
        "",
    )


def test_with_new_files_looked_for_links_are_not_followed_as_in_make(
    tree: Path, tmp_path: Path
) -> None:
    """Walking the whole tree, a link 'current -> sub' is one new entry, not sub again."""
    (tree / "current").symlink_to("sub")
    sums = write_sums(tmp_path / "SHA256SUMS", [f"{sha(A)}  a.txt", f"{sha(B)}  sub/b.txt"])
    expected = "NEW current\n" + summary(2, 2, new="1 new") + "\n"
    assert verify(sums, "--root", tree) == (1, expected, "")
    imported = run_hashpar("import", sums, "--root", tree)
    assert json.loads(imported.stdout)["follow_symlinks"] is False


def test_with_root_new_files_are_found_and_every_change_reported(
    tree: Path, tmp_path: Path
) -> None:
    sums = write_sums(tmp_path / "B3SUMS", [f"{b3(A)}  a.txt", f"{b3(B)}  sub/b.txt"])
    (tree / "a.txt").write_bytes(b"alpha!\n")
    (tree / "sub" / "b.txt").unlink()
    (tree / "added.txt").write_bytes(b"new\n")
    code, stdout, stderr = verify(sums, "--root", tree)
    assert (code, stderr) == (1, "")
    assert stdout == (
        "MODIFIED a.txt\nMISSING sub/b.txt\nNEW added.txt\n"
        + summary(2, 0, modified=1, missing=1, new="1 new")
        + "\n"
    )
    # from the tree itself, without --root: the same, minus new-file detection
    code, stdout, _ = verify(sums, cwd=tree)
    assert (code, stdout) == (
        1,
        "MODIFIED a.txt\nMISSING sub/b.txt\n" + summary(2, 0, modified=1, missing=1) + "\n",
    )
    code, stdout, _ = verify(sums, "--new-files", cwd=tree)
    assert "NEW added.txt\n" in stdout
    code, stdout, _ = verify(sums, "--root", tree, "--no-new-files")
    assert "NEW" not in stdout and stdout.endswith(summary(2, 0, modified=1, missing=1) + "\n")


def test_the_sums_file_itself_is_not_new(tree: Path) -> None:
    write_sums(tree / "SHA256SUMS", [f"{sha(A)}  a.txt", f"{sha(B)}  sub/b.txt"])
    assert verify("SHA256SUMS", "--new-files", cwd=tree) == (
        0,
        summary(2, 2, new="0 new") + "\n",
        "",
    )


def test_json_says_whether_new_files_were_looked_for(tree: Path, tmp_path: Path) -> None:
    sums = write_sums(tmp_path / "SHA256SUMS", [f"{sha(A)}  a.txt"])
    for extra, checked in (((), False), (("--root", tree), True)):
        code, stdout, _ = verify(sums, "--json", *extra, cwd=tree)
        document = json.loads(stdout)
        assert document["summary"]["new_files_checked"] is checked
        assert document["new"] == (["sub/b.txt"] if checked else [])
        assert code == (1 if checked else 0)


def test_malformed_lines_are_reported_the_valid_ones_checked_and_the_exit_is_1(
    tree: Path, tmp_path: Path
) -> None:
    sums = write_sums(
        tmp_path / "SHA256SUMS",
        [
            f"{sha(A)}  a.txt",
            "garbage",
            f"{sha(B)}  /etc/passwd",
            f"{sha(B)}  ../tree/sub/b.txt",
            f"{sha(B)}  sub/b.txt",
        ],
    )
    assert verify(sums, cwd=tree) == (
        1,
        summary(2, 2, malformed=3) + "\n",
        f"hashpar: {sums}:2: not a checksum line: expected '<hex digest>  <path>' or "
        "'ALGO (path) = hex'\n"
        f"hashpar: {sums}:3: absolute path refused: /etc/passwd\n"
        f"hashpar: {sums}:4: '..' path refused: ../tree/sub/b.txt\n",
    )


def test_no_valid_line_is_exit_2(tree: Path, tmp_path: Path) -> None:
    sums = write_sums(tmp_path / "SHA256SUMS", [f"{sha(A)}  /abs", "# only that"])
    assert verify(sums, cwd=tree) == (
        2,
        "",
        f"hashpar: {sums}:1: absolute path refused: /abs\n"
        f"hashpar: error: {sums}: no properly formatted checksum lines found (1 malformed)\n",
    )


def test_the_algorithm_comes_from_algo_tags_or_the_name(tree: Path, tmp_path: Path) -> None:
    plain = write_sums(tmp_path / "checksums.txt", [f"{b3(A)}  a.txt"])
    assert verify(plain, cwd=tree) == (
        2,
        "",
        f"hashpar: error: {plain}: cannot tell SHA-256 from BLAKE3 (both digests are 64 hex "
        "digits and the file name does not say): give --algo sha256 or --algo blake3\n",
    )
    assert verify(plain, "--algo", "blake3", cwd=tree)[0] == 0
    assert verify(plain, "--algo", "sha256", cwd=tree)[1].startswith("MODIFIED a.txt\n")
    tagged = write_sums(tmp_path / "tags.txt", [f"SHA256 (a.txt) = {sha(A)}"])
    assert verify(tagged, cwd=tree) == (0, summary(1, 1) + "\n", "")


def test_format_restricts_the_line_form(tree: Path, tmp_path: Path) -> None:
    sums = write_sums(
        tmp_path / "SHA256SUMS", [f"SHA256 (a.txt) = {sha(A)}", f"{sha(B)}  sub/b.txt"]
    )
    assert verify(sums, "--format", "bsd", cwd=tree) == (
        1,
        summary(1, 1, malformed=1) + "\n",
        f"hashpar: {sums}:2: not a BSD-tagged line 'ALGO (path) = hex'\n",
    )


def test_a_file_of_the_other_format_is_named_as_not_of_the_format_asked(
    tree: Path, tmp_path: Path
) -> None:
    sums = write_sums(tmp_path / "SHA256SUMS", [f"{sha(A)}  a.txt", f"{sha(B)}  sub/b.txt"])
    code, stdout, stderr = verify(sums, "--format", "bsd", cwd=tree)
    assert (code, stdout) == (2, "")
    assert stderr.startswith(
        f"hashpar: error: {sums}: not a BSD-format checksum file: no BSD-format checksum line "
        "in lines 1-2 (line 1: "
    )


def test_sums_on_standard_input(tree: Path) -> None:
    sums = f"{sha(A)}  a.txt\n".encode()
    assert verify("-", "--algo", "sha256", cwd=tree, stdin=sums) == (0, summary(1, 1) + "\n", "")


def test_unlisted_entries_are_never_looked_at_without_new_file_detection(tmp_path: Path) -> None:
    root = build_tree(tmp_path / "t", {"a.txt": A, "C:odd": b"x", "deep/er/x": b"y"})
    os.mkfifo(root / "fifo")
    sums = write_sums(tmp_path / "SHA256SUMS", [f"{sha(A)}  a.txt"])
    assert verify(sums, cwd=root) == (0, summary(1, 1) + "\n", "")
    code, stdout, _ = verify(sums, "--root", root)
    assert code == 1
    assert "NEW deep/er/x\nNEW fifo\n" in stdout
    assert "ERROR C:odd: drive-letter form (unsafe-name)\n" in stdout


def test_a_bag_is_verified_in_data_with_new_file_detection(tmp_path: Path) -> None:
    bag = tmp_path / "bag"
    build_tree(bag / "data", {"pct%41.txt": A, "trail ": B})  # names bagit-python misreads
    assert (
        run_hashpar(
            "make", bag / "data", "--algo", "sha256", "-q", "-o", tmp_path / "m.json"
        ).returncode
        == 0
    )
    assert run_hashpar("export", tmp_path / "m.json", "-f", "bagit", "--bag", bag).returncode == 0
    assert verify(bag) == (0, summary(2, 2, new="0 new") + "\n", "")
    (bag / "data" / "extra").write_bytes(b"")
    (bag / "data" / "trail ").write_bytes(b"changed")
    assert verify(bag) == (
        1,
        "MODIFIED trail \nNEW extra\n" + summary(2, 1, modified=1, new="1 new") + "\n",
        "",
    )
    assert verify(bag / "manifest-sha256.txt")[0] == 1  # the payload manifest alone: the same


def test_a_directory_that_is_not_a_bag(tmp_path: Path) -> None:
    assert verify(tmp_path) == (
        2,
        "",
        f"hashpar: error: {tmp_path}: a directory but not a BagIt bag (no bagit.txt); "
        "verify takes a manifest, a sums file or a bag\n",
    )
    assert verify(tmp_path, "--format", "bagit") == (
        2,
        "",
        f"hashpar: error: {tmp_path}: a directory without bagit.txt is not a bag\n",
    )


def test_algo_must_match_a_hashpar_manifest(tree: Path, tmp_path: Path) -> None:
    assert run_hashpar("make", tree, "-q", "-o", tmp_path / "m.json").returncode == 0
    assert verify(tmp_path / "m.json", "--algo", "sha256") == (
        2,
        "",
        "hashpar: error: the manifest is blake3, not sha256 (--algo)\n",
    )
    assert verify(tmp_path / "m.json", "--algo", "blake3")[0] == 0


# -- the library: verify_tree(new_files=False) ------------------------------------------------


@pytest.mark.parametrize("jobs", [1, 2])
def test_verify_tree_without_new_files_looks_only_at_listed_paths(
    tmp_path: Path, jobs: int
) -> None:
    root = build_tree(
        tmp_path / "t",
        {"a.txt": A, "sub/b.txt": B, "sub/other": b"o", "elsewhere/x\\..\\y": b"unsafe if walked"},
    )
    parsed = parse_checksums(
        f"{sha(A)}  a.txt\n{sha(A)}  sub/b.txt\n{sha(B)}  gone\n".encode(),
        source="SHA256SUMS",
        root=os.fspath(root),
    )
    report = verify_tree(parsed.manifest, jobs=jobs, new_files=False)
    assert report == Report(
        verified=3, ok=1, modified=("sub/b.txt",), missing=("gone",), new_files_checked=False
    )
    everything = verify_tree(parsed.manifest, jobs=jobs)
    assert everything.new == ("sub/other",)
    assert list(everything.errors) == ["elsewhere/x\\..\\y"]
    assert everything.new_files_checked


# -- every problem of the input is in the report; a wrong input fails fast ---------------------


def test_json_has_every_problem_line_and_the_summary_counts_them(
    tree: Path, tmp_path: Path
) -> None:
    """A CI job reading --json sees why the exit code is 1: here a path listed again with
    another digest (sha256sum -c: FAILED) and a malformed line."""
    sums = write_sums(tmp_path / "SHA256SUMS", [f"{sha(A)}  a.txt", f"{sha(B)}  a.txt", "2"])
    code, stdout, stderr = verify(sums, "--json", cwd=tree)
    assert code == 1
    document = json.loads(stdout)
    assert document["summary"] == {
        "ok": 1,
        "modified": 0,
        "missing": 0,
        "new": 0,
        "moved": 0,
        "errors": 0,
        "verified": 1,
        "ignore_new": False,
        "new_files_checked": False,
        "malformed": 1,
        "conflicting": 1,
    }
    conflict = (
        "a.txt is listed again with another digest (first on line 1, whose digest is checked)"
    )
    assert document["input_lines"] == [
        {"line": 2, "kind": "conflicting", "error": conflict},
        {
            "line": 3,
            "kind": "malformed",
            "error": "not a checksum line: expected '<hex digest>  <path>' or 'ALGO (path) = hex'",
        },
    ]
    assert stderr.startswith(f"hashpar: {sums}:2: {conflict}\nhashpar: {sums}:3: not a checksum")
    assert verify(sums, "-q", cwd=tree)[:2] == (1, "")
    assert verify(sums, cwd=tree)[:2] == (1, summary(1, 1, malformed=1, conflicting=1) + "\n")


def test_stderr_names_the_first_ten_problem_lines_and_json_counts_them_all(
    tree: Path, tmp_path: Path
) -> None:
    sums = write_sums(tmp_path / "SHA256SUMS", [f"{sha(A)}  a.txt", *("junk" for _ in range(30))])
    code, stdout, stderr = verify(sums, "--json", cwd=tree)
    named = [
        f"hashpar: {sums}:{n}: not a checksum line: expected '<hex digest>  <path>' or "
        "'ALGO (path) = hex'"
        for n in range(2, 12)
    ]
    assert (code, stderr) == (
        1,
        "\n".join([*named, f"hashpar: {sums}: ... and 20 more unusable lines"]) + "\n",
    )
    document = json.loads(stdout)
    assert document["summary"]["malformed"] == 30
    assert [entry["line"] for entry in document["input_lines"]] == list(range(2, 32))


def test_a_file_that_is_no_checksum_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    numbers = tmp_path / "n.txt"
    numbers.write_text("".join(f"{n}\n" for n in range(1, 200_001)))
    assert verify(numbers, "--algo", "sha256") == (
        2,
        "",
        f"hashpar: error: {numbers}: not a checksum file: no checksum line in lines 1-10 (line 1: "
        "not a checksum line: expected '<hex digest>  <path>' or 'ALGO (path) = hex')\n",
    )


def test_a_hashpar_manifest_given_as_a_sums_file_is_named_so(tree: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "m.json"
    assert run_hashpar("make", tree, "-q", "-o", manifest).returncode == 0
    assert verify(manifest, "--format", "sums") == (
        2,
        "",
        f"hashpar: error: {manifest}: JSON, not a checksum file (a hashpar manifest is verified "
        "without --format; hashpar export writes sums from one)\n",
    )


def test_endless_input_that_is_no_checksum_file_stops_at_once_in_bounded_memory() -> None:
    """``yes | hashpar verify -`` filled memory (4 GiB allowed) before saying anything."""

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    yes = subprocess.Popen(["yes"], stdout=subprocess.PIPE)
    try:
        assert yes.stdout is not None
        result = subprocess.run(
            [sys.executable, "-m", "hashpar", "verify", "-", "--algo", "sha256"],
            stdin=yes.stdout,
            capture_output=True,
            timeout=50,
            preexec_fn=limit,
            check=False,
        )
    finally:
        yes.kill()
        yes.wait()
    assert (result.returncode, result.stdout) == (2, b"")
    assert result.stderr == (
        b"hashpar: error: standard input: not a checksum file: no checksum line in lines 1-10 "
        b"(line 1: not a checksum line: expected '<hex digest>  <path>' or 'ALGO (path) = hex')\n"
    )
