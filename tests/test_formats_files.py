"""hashpar.formats on disk: loading sums files and bags, filling sizes, preparing a bag."""

from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path

import pytest

from conftest import build_tree
from hashpar.errors import ManifestError, UsageError
from hashpar.formats import (
    ChecksumFormat,
    bag_tag_files,
    fill_sizes,
    load_checksums,
)
from hashpar.formats.files import looks_like_manifest, read_input
from hashpar.models import Algorithm, FileEntry, Manifest, Problem, ProblemKind, Snapshot

HELLO = hashlib.sha256(b"hello\n").hexdigest()


def bag_dir(tmp_path: Path) -> Path:
    bag = build_tree(tmp_path / "bag", {"data/a.txt": b"hello\n"})
    (bag / "bagit.txt").write_bytes(b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n")
    (bag / "manifest-sha256.txt").write_text(f"{HELLO}  data/a.txt\n")
    return bag


def data_manifest(bag: Path, **files: FileEntry) -> Manifest:
    entries = files or {"a.txt": FileEntry(6, HELLO, None)}
    return Manifest(Algorithm.SHA256, os.fspath(bag / "data"), "", "", Snapshot(files=entries))


def test_a_directory_is_read_as_a_bag_rooted_at_its_data(tmp_path: Path) -> None:
    bag = bag_dir(tmp_path)
    for parsed in (load_checksums(os.fspath(bag)), load_checksums(f"{bag}/manifest-sha256.txt")):
        assert parsed.manifest.root == os.fspath(bag / "data")
        assert dict(parsed.manifest.files) == {"a.txt": FileEntry(None, HELLO, None)}
        assert parsed.formats == {ChecksumFormat.BAGIT}
    assert load_checksums(os.fspath(bag), root="copy").manifest.root == "copy"


def test_a_bag_needs_its_declaration_and_a_sha256_manifest(tmp_path: Path) -> None:
    bag = bag_dir(tmp_path)
    (bag / "manifest-sha256.txt").rename(bag / "manifest-md5.txt")
    with pytest.raises(UsageError, match=r"no manifest-sha256.txt \(it has manifest-md5.txt\)"):
        load_checksums(os.fspath(bag))
    with pytest.raises(UsageError, match=r"manifest-md5.txt: hashpar checks SHA-256 bag"):
        load_checksums(f"{bag}/manifest-md5.txt")
    (bag / "bagit.txt").unlink()
    with pytest.raises(UsageError, match=r"a directory without bagit.txt is not a bag"):
        load_checksums(os.fspath(bag))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"algorithm": Algorithm.BLAKE3}, "cannot be checked as blake3"),
        ({"only": ChecksumFormat.SUMS}, "is a directory, not a sums file"),
    ],
)
def test_a_bag_is_sha256_and_not_a_sums_file(
    tmp_path: Path, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        load_checksums(os.fspath(bag_dir(tmp_path)), **kwargs)  # type: ignore[arg-type]


def test_sums_files_resolve_in_the_current_directory_unless_a_root_is_given(
    tmp_path: Path,
) -> None:
    (tmp_path / "SHA256SUMS").write_text(f"{HELLO}  a.txt\n")
    assert load_checksums(f"{tmp_path}/SHA256SUMS").manifest.root == "."
    assert load_checksums(f"{tmp_path}/SHA256SUMS", root="t").manifest.root == "t"


def test_a_missing_sums_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^cannot read .*/nope: No such file or directory$"):
        load_checksums(f"{tmp_path}/nope")


def test_fill_sizes_takes_regular_files_only(tmp_path: Path) -> None:
    build_tree(tmp_path, {"file": b"12345", "dir/x": b"", "outside/secret": b"123"})
    os.symlink("file", tmp_path / "link")
    os.symlink(tmp_path / "outside", tmp_path / "dirlink")
    entry = FileEntry(None, HELLO, None)
    names = ("file", "dir", "link", "absent", "dirlink/secret", "file/below", "dir/x")
    manifest = Manifest(
        Algorithm.SHA256, os.fspath(tmp_path), "", "", Snapshot(files=dict.fromkeys(names, entry))
    )
    filled, count = fill_sizes(manifest)
    assert count == 2
    assert {p: e.size for p, e in filled.files.items()} == {
        "file": 5,
        "dir": None,
        "link": None,
        "absent": None,
        "dirlink/secret": None,  # never through a symlink
        "file/below": None,
        "dir/x": 0,
    }


def test_bag_tag_files_in_write_order(tmp_path: Path) -> None:
    bag = build_tree(tmp_path / "bag", {"data/a.txt": b"hello\n"})
    files = bag_tag_files(data_manifest(bag), os.fspath(bag))
    assert list(files) == [
        "manifest-sha256.txt",
        "bag-info.txt",
        "bagit.txt",
        "tagmanifest-sha256.txt",
    ]
    assert files["manifest-sha256.txt"] == f"{HELLO}  data/a.txt\n".encode()
    assert files["bag-info.txt"].endswith(b"Payload-Oxum: 6.1\n")


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ("errors", ManifestError, "1 unreadable, 0 symlink"),
        ("symlinks", ManifestError, "0 unreadable, 1 symlink"),
        ("excludes", ManifestError, "1 exclude pattern"),
        ("no size", ManifestError, "Payload-Oxum needs every file's size"),
        ("blake3", ManifestError, "BagIt has no blake3 manifests"),
        ("no data", UsageError, "no data/ directory"),
    ],
)
def test_bag_tag_files_refuses_what_would_not_be_a_valid_bag(
    tmp_path: Path, change: str, error: type[Exception], message: str
) -> None:
    bag = build_tree(tmp_path / "bag", {"data/a.txt": b"hello\n"})
    manifest = data_manifest(bag)
    snapshot = manifest.snapshot
    if change == "errors":
        problem = Problem(ProblemKind.UNREADABLE, "Permission denied")
        manifest = replace(manifest, snapshot=replace(snapshot, errors={"b": problem}))
    elif change == "symlinks":
        manifest = replace(manifest, snapshot=replace(snapshot, symlinks={"l": "a.txt"}))
    elif change == "excludes":
        manifest = replace(manifest, excludes=("*.tmp",))
    elif change == "no size":
        manifest = data_manifest(bag, **{"a.txt": FileEntry(None, HELLO, None)})
    elif change == "blake3":
        manifest = replace(manifest, algorithm=Algorithm.BLAKE3)
    else:
        (bag / "data" / "a.txt").unlink()
        (bag / "data").rmdir()
    with pytest.raises(error, match=message):
        bag_tag_files(manifest, os.fspath(bag))


def test_input_without_line_ends_is_refused_at_once() -> None:
    with pytest.raises(UsageError, match=r"^/dev/zero: a line longer than 1048576 bytes"):
        load_checksums("/dev/zero", algorithm=Algorithm.SHA256)


def test_a_pipe_is_read_like_a_file(tmp_path: Path) -> None:
    read, write = os.pipe()
    os.write(write, f"{HELLO}  a.txt\n".encode())
    os.close(write)
    try:
        parsed = load_checksums(f"/dev/fd/{read}", algorithm=Algorithm.SHA256)
    finally:
        os.close(read)
    assert list(parsed.manifest.files) == ["a.txt"]


@pytest.mark.parametrize(
    ("data", "name", "expected"),
    [
        (b'{"version": 1}', "m", True),
        (b"\n  {", "m", True),
        (b"[1]", "m", True),
        (b"\xef\xbb\xbf{}", "m", True),
        (b"\0\0", "m", True),  # binary: the manifest decoder says what it is not
        (b"", "manifest.JSON", True),
        (b"not json", "dir/m.json", True),
        (HELLO.encode() + b"  {x}", "SHA256SUMS", False),
        (b"\xef\xbb\xbf" + HELLO.encode() + b"  x", "sums", False),
        (b"", "SHA256SUMS", False),
    ],
)
def test_looks_like_manifest(data: bytes, name: str, expected: bool) -> None:
    assert looks_like_manifest(data, name) is expected


def test_read_input_lets_one_line_json_through_only_when_a_manifest_is_welcome(
    tmp_path: Path,
) -> None:
    one_line = b"{" + b" " * (2 << 20) + b"}"
    (tmp_path / "m.json").write_bytes(one_line)
    assert read_input(f"{tmp_path}/m.json", manifest_ok=True) == one_line
    with pytest.raises(UsageError, match="a line longer than"):
        read_input(f"{tmp_path}/m.json")


def test_read_input_stops_at_the_first_chunk_of_binary_input() -> None:
    head = read_input("/dev/zero", manifest_ok=True)
    assert head and not head.strip(b"\0")
    assert len(head) <= 1 << 20
