"""Loading a manifest is a security boundary: every hostile manifest is exit 2, one line.

Each case goes through the real command. Traversal cases point at a FIFO outside the root:
a blocking open would hang (the timeout catches it), and a watcher thread notices any open
at all (a FIFO can be opened for writing without blocking only while someone reads it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import hashpar
import hashpar.api
from conftest import run_hashpar
from hashpar.api import load_manifest
from hashpar.errors import ManifestError
from hashpar.manifest import CanonicalReader

DIGEST = "0" * 64


def document(files: Any = None, **fields: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {"version": 1, "algorithm": "blake3", "root": "ROOT"}
    doc["files"] = {"a": {"size": 1, "digest": DIGEST}} if files is None else files
    doc.update(fields)
    return doc


def encoded(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def patched(old: bytes, new: bytes, doc: dict[str, Any] | None = None) -> bytes:
    data = encoded(document() if doc is None else doc)
    assert old in data
    return data.replace(old, new, 1)


# (id, manifest bytes, the text the one stderr line must contain)
CASES: list[tuple[str, bytes, str]] = [
    ("not-json", b"hello", "not a valid JSON manifest"),
    ("empty-file", b"", "Input data was truncated"),
    ("only-whitespace", b"  \n", "Input data was truncated"),
    ("array", b"[]", "Expected `object`, got `array`"),
    ("truncated", encoded(document())[:-5], "truncated"),
    ("trailing-data", encoded(document()) + b" {}", "trailing characters"),
    ("two-documents", encoded(document()) + encoded(document()), "trailing characters"),
    ("bom", b"\xef\xbb\xbf" + encoded(document()), "invalid character (byte 0)"),
    ("invalid-utf8", patched(b'"a"', b'"\xff"'), "not UTF-8"),
    ("lone-surrogate", patched(b'"a"', b'"\\udc80"'), "surrogate"),
    ("nan", patched(b'"size": 1', b'"size": NaN'), "invalid character"),
    ("infinity", patched(b'"size": 1', b'"size": Infinity'), "invalid character"),
    ("size-float", encoded(document({"a": {"size": 1.0, "digest": DIGEST}})), '["a"]: Expected'),
    ("size-exponent", patched(b'"size": 1', b'"size": 1e3'), "got `float`"),
    ("size-bool", encoded(document({"a": {"size": True, "digest": DIGEST}})), "got `bool`"),
    ("size-string", encoded(document({"a": {"size": "1", "digest": DIGEST}})), "got `str`"),
    (
        "size-negative",
        encoded(document({"a": {"size": -1, "digest": DIGEST}})),
        'files["a"]: Expected `int` >= 0',
    ),
    (
        "size-huge",
        patched(b'"size": 1', b'"size": 1' + b"0" * 400),
        'files["a"]: Expected `int` <= 9223372036854775807',
    ),
    (
        "mtime-huge",
        encoded(document({"a": {"mtime_ns": 2**70, "digest": DIGEST}})),
        "at `$.mtime_ns`",
    ),
    (
        "digest-upper",
        encoded(document({"a": {"digest": "A" * 64}})),
        'files["a"]: Expected `str` matching regex',
    ),
    (
        "digest-short",
        encoded(document({"a": {"digest": "a" * 63}})),
        'files["a"]: Expected `str` matching regex',
    ),
    (
        "digest-not-hex",
        encoded(document({"a": {"digest": "g" * 64}})),
        'files["a"]: Expected `str` matching regex',
    ),
    ("digest-missing", encoded(document({"a": {"size": 1}})), "missing required field"),
    ("entry-not-object", encoded(document({"a": DIGEST})), "got `str`"),
    ("files-missing", encoded({"version": 1, "algorithm": "blake3", "root": "ROOT"}), "`files`"),
    ("version-2", encoded(document(version=2)), "unsupported manifest version 2"),
    ("version-bool", encoded(document(version=True)), "got `bool` - at `$.version`"),
    ("version-string", encoded(document(version="1")), "got `str` - at `$.version`"),
    ("algorithm-unknown", encoded(document(algorithm="md5")), "Invalid enum value 'md5'"),
    ("unknown-field", encoded(document(extra=1)), "unknown field `extra`"),
    ("root-missing", encoded({"version": 1, "algorithm": "blake3", "files": {}}), "`root`"),
    ("root-empty", encoded(document(root="")), "'root' must be a non-empty path"),
    ("root-nul", encoded(document(root="a\0b")), "'root' must be a non-empty path without NUL"),
    ("root-number", encoded(document(root=7)), "got `int` - at `$.root`"),
    ("root-marked-but-utf8", encoded(document(root="\0abc")), "'root' \"\\u0000abc\" is not"),
    ("exclude-marked-but-utf8", encoded(document(excludes=["\0*.tmp"])), "is not canonical"),
    ("exclude-not-gitignore", encoded(document(excludes=["\\"])), "invalid manifest: excludes: "),
    ("exclude-bare-bang", encoded(document(excludes=["!"])), "invalid manifest: excludes: "),
    (
        "exclude-range-backwards",
        encoded(document(excludes=["[z-a]"])),
        "invalid manifest: excludes: '[z-a]': bad character range z-a",
    ),
    (
        "unsafe-name-error-climbing",
        encoded(document(errors={"a/../x": {"kind": "unsafe-name", "message": "m"}})),
        'errors["a/../x"]: not canonical',
    ),
    (
        "drive-form-error-of-another-kind",
        encoded(document(errors={"C:x": {"kind": "unreadable", "message": "m"}})),
        'errors["C:x"]: drive-letter form',
    ),
    (
        "duplicate-path",
        patched(b'"files": {', b'"files": {"a": {"digest": "' + DIGEST.encode() + b'"}, '),
        'duplicate key "a"',
    ),
    ("duplicate-field", patched(b'"size": 1,', b'"size": 1, "size": 2,'), 'duplicate key "size"'),
    ("duplicate-top", patched(b'"version": 1,', b'"version": 1, "version": 1,'), "duplicate key"),
    ("deep-nesting", patched(b'"ROOT"', b"[" * 200_000 + b"]" * 200_000), "got `array`"),
    ("deep-nesting-unknown", b'{"x":' + b"[" * 200_000 + b"]" * 200_000 + b"}", "unknown"),
    ("same-path-twice", encoded(document(symlinks={"a": {"target": "b"}})), '"a" listed twice'),
    ("absolute", encoded(document({"/etc/passwd": {"digest": DIGEST}})), "absolute path"),
    ("dotdot", encoded(document({"../outside/fifo": {"digest": DIGEST}})), "'..' segment"),
    ("dotdot-inner", encoded(document({"a/../../x": {"digest": DIGEST}})), "'..' segment"),
    ("dot-segment", encoded(document({"./a": {"digest": DIGEST}})), "not canonical"),
    ("double-slash", encoded(document({"a//b": {"digest": DIGEST}})), "not canonical"),
    ("trailing-slash", encoded(document({"a/": {"digest": DIGEST}})), "not canonical"),
    ("empty-path", encoded(document({"": {"digest": DIGEST}})), "empty path"),
    ("nul-in-path", encoded(document({"a\0b": {"digest": DIGEST}})), "contains NUL"),
    ("backslash-dotdot", encoded(document({"..\\outside": {"digest": DIGEST}})), "backslashes"),
    ("backslash-root", encoded(document({"\\etc\\passwd": {"digest": DIGEST}})), "absolute"),
    ("drive-form", encoded(document({"C:/x": {"digest": DIGEST}})), "drive-letter form"),
    ("dotdot-symlink-key", encoded(document(symlinks={"../x": {"target": "a"}})), "'..'"),
    ("dotdot-skipped-key", encoded(document(skipped={"../x": {"kind": "fifo"}})), "'..'"),
    ("bad-skipped-kind", encoded(document(skipped={"x": {"kind": "door"}})), "Invalid enum"),
    ("bytes-key-not-canonical", encoded(document({"\0abc": {"digest": DIGEST}})), "canonical"),
    (
        "below-recorded-symlink",
        encoded(document({"out/fifo": {"digest": DIGEST}}, symlinks={"out": {"target": "/"}})),
        'files["out/fifo"]: lies below the symlink "out"',
    ),
    (
        "below-a-file",
        encoded(document({"a": {"digest": DIGEST}, "a/b": {"digest": DIGEST}})),
        'lies below the file "a"',
    ),
]


@pytest.fixture
def outside_fifo(tmp_path: Path) -> Path:
    """A FIFO outside the tree, with nothing writing to it: a blocking open would hang."""
    (tmp_path / "outside").mkdir()
    fifo = tmp_path / "outside" / "fifo"
    os.mkfifo(fifo)
    return fifo


@contextlib.contextmanager
def never_opened(fifo: Path) -> Iterator[Callable[[], bool]]:
    """Watch ``fifo``; the yielded function says whether anyone opened it for reading."""
    opened = threading.Event()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: no reader
                time.sleep(0.001)
                continue
            opened.set()
            os.close(fd)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    try:
        yield opened.is_set
    finally:
        stop.set()
        thread.join()


def test_the_watcher_notices_a_reader(outside_fifo: Path) -> None:
    with never_opened(outside_fifo) as was_opened:
        fd = os.open(outside_fifo, os.O_RDONLY | os.O_NONBLOCK)
        time.sleep(0.2)
        os.close(fd)
    assert was_opened()


@pytest.mark.timeout(20)
@pytest.mark.parametrize(("data", "text"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_hostile_manifest_is_rejected_with_one_line(
    tmp_path: Path, outside_fifo: Path, data: bytes, text: str
) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    (root / "a").write_bytes(b"x")
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(data.replace(b'"ROOT"', json.dumps(str(root)).encode()))
    with never_opened(outside_fifo) as was_opened:
        result = run_hashpar("verify", manifest, cwd=tmp_path, timeout=15)
    stderr = result.stderr.decode()
    assert (result.returncode, result.stdout) == (2, b""), stderr
    assert stderr.startswith(f"hashpar: error: {manifest}: ")
    assert stderr.count("\n") == 1 and stderr.endswith("\n")
    assert text in stderr
    assert "Traceback" not in stderr
    assert not was_opened()


@pytest.mark.timeout(20)
def test_an_entry_through_a_symlink_on_disk_leading_outside_is_missing_and_never_read(
    tmp_path: Path, outside_fifo: Path
) -> None:
    """The manifest cannot be told apart from one whose directory was since replaced by a
    link (data moved to another disk), so it is not refused (it was, exit 2): the entry is
    missing, the link new, and nothing beyond the link is opened."""
    root = tmp_path / "tree"
    root.mkdir()
    (root / "out").symlink_to(outside_fifo.parent)
    manifest = tmp_path / "manifest.json"
    doc = document({"out/fifo": {"digest": DIGEST}}, root=str(root))
    manifest.write_bytes(encoded(doc))
    with never_opened(outside_fifo) as was_opened:
        result = run_hashpar("verify", manifest, "-q", timeout=15)
    assert (result.returncode, result.stdout, result.stderr) == (
        1,
        b"MISSING out/fifo\nNEW out\n",
        b"",
    )
    assert not was_opened()


@pytest.mark.timeout(30)
def test_a_big_manifest_through_a_symlink_leading_outside_is_reported_with_workers(
    tmp_path: Path, outside_fifo: Path
) -> None:
    """Over 1 MiB, the command starts its workers before loading: the entry below the link
    is one more missing entry, reported with the rest, and the FIFO is never opened."""
    root = tmp_path / "tree"
    (root / "d").mkdir(parents=True)
    for i in range(300):
        (root / "d" / f"{i}").write_bytes(b"x")
    (root / "out").symlink_to(outside_fifo.parent)
    files = {f"gone/{i:06d}": {"digest": DIGEST} for i in range(12_000)}
    files["out/fifo"] = {"digest": DIGEST}
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(encoded(document(files, root=str(root))))
    assert manifest.stat().st_size > 1 << 20
    with never_opened(outside_fifo) as was_opened:
        result = run_hashpar("verify", manifest, "-j", "2", "-q", timeout=25)
    assert (result.returncode, result.stderr) == (1, b"")
    lines = result.stdout.decode().splitlines()
    assert len(lines) == 12_000 + 1 + 1 + 300  # missing, out/fifo missing, out new, d/* new
    assert ("MISSING out/fifo" in lines, "NEW out" in lines) == (True, True)
    assert not was_opened()


@pytest.mark.timeout(20)
def test_a_tilde_is_a_plain_name_never_the_home_directory(
    tmp_path: Path, outside_fifo: Path
) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(encoded(document({"~/fifo": {"digest": DIGEST}}, root=str(root))))
    env = {"HOME": str(outside_fifo.parent)}
    with never_opened(outside_fifo) as was_opened:
        result = run_hashpar("verify", manifest, env=env, timeout=15)
    assert (result.returncode, result.stdout.decode().splitlines()[0]) == (1, "MISSING ~/fifo")
    assert not was_opened()


@pytest.mark.timeout(20)
def test_a_manifest_that_is_not_json_is_rejected_after_one_chunk() -> None:
    result = run_hashpar("verify", "/dev/zero", timeout=15)
    assert result.returncode == 2
    assert result.stderr.decode() == (
        "hashpar: error: /dev/zero: not a valid JSON manifest: "
        "JSON is malformed: invalid character (byte 0)\n"
    )


def test_bytes_that_are_not_utf8_are_placed_in_the_file(tmp_path: Path) -> None:
    """The offset is the file's, not the one within the JSON string msgspec was reading."""
    head = b'{"version": 1, "algorithm": "blake3", "root": "t'
    (tmp_path / "m.json").write_bytes(head + b'\xff", "files": {}}')
    result = run_hashpar("verify", "m.json", cwd=tmp_path, timeout=15)
    assert (result.returncode, result.stdout) == (2, b"")
    expected = f"hashpar: error: m.json: not a valid JSON manifest: not UTF-8 (byte {len(head)})\n"
    assert result.stderr.decode() == expected


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("nope.json", "cannot read manifest nope.json: No such file or directory"),
        (".", ".: a directory but not a BagIt bag (no bagit.txt); verify takes a manifest, a"),
    ],
)
def test_an_unreadable_manifest_file_is_named(tmp_path: Path, name: str, message: str) -> None:
    result = run_hashpar("verify", name, cwd=tmp_path, timeout=15)
    assert (result.returncode, result.stdout) == (2, b"")
    assert result.stderr.decode().startswith(f"hashpar: error: {message}")
    assert result.stderr.decode().count("\n") == 1


def test_a_manifest_over_the_size_cap_is_refused(tmp_path: Path) -> None:
    manifest = tmp_path / "big.json"
    manifest.write_bytes(b"{" + b" " * (3 << 20) + b"}")
    with pytest.raises(ManifestError, match=r"big.json: larger than 2097152 bytes"):
        load_manifest(str(manifest), max_bytes=2 << 20)


def test_a_canonical_manifest_over_the_cap_is_refused_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Read in pieces, an oversized manifest would be decoded up to the cap before the cap
    is met: its size is looked at first."""
    files = {f"f{i:04}": hashpar.FileEntry(i, f"{i:064x}", i) for i in range(2000)}
    manifest = tmp_path / "big.json"
    manifest.write_bytes(
        hashpar.encode_manifest(
            hashpar.Manifest(
                hashpar.Algorithm.BLAKE3, "/r", "c", "g", snapshot=hashpar.Snapshot(files=files)
            )
        )
    )
    calls: list[object] = []
    monkeypatch.setattr(CanonicalReader, "open", lambda *args: calls.append(args))
    with pytest.raises(ManifestError, match=r"big.json: larger than 100000 bytes"):
        load_manifest(str(manifest), max_bytes=100_000)
    assert calls == []


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("digest", 'invalid manifest: files["gone/011999"]: Expected `str` matching regex'),
        ("below", 'unsafe path in manifest: files["d/0/x"]: lies below the file "d/0"'),
    ],
)
def test_a_big_canonical_manifest_bad_after_its_header_stops_the_walk_it_started(
    tmp_path: Path, damage: str, message: str
) -> None:
    """Over 1 MiB and canonical, the command starts walking from the manifest's header while
    it reads the entries: an entry found bad then still gives one line and exit 2, with no
    report and no worker left (run() returns only once every holder of stdout is gone)."""
    root = tmp_path / "tree"
    (root / "d").mkdir(parents=True)
    for i in range(300):
        (root / "d" / f"{i}").write_bytes(b"x")
    made = hashpar.make_manifest(root, jobs=1)
    files = dict(made.files)
    files.update({f"gone/{i:06d}": hashpar.FileEntry(1, DIGEST, 1) for i in range(12_000)})
    if damage == "below":
        files["d/0/x"] = hashpar.FileEntry(1, DIGEST, 1)
    snapshot = hashpar.Snapshot(files=dict(sorted(files.items())))
    data = hashpar.encode_manifest(dataclasses.replace(made, snapshot=snapshot))
    if damage == "digest":
        at = data.rindex(DIGEST.encode())
        data = data[:at] + b"F" * 64 + data[at + 64 :]
    manifest = tmp_path / "manifest.json"
    manifest.write_bytes(data)
    assert manifest.stat().st_size > 1 << 20
    result = run_hashpar("verify", manifest, "-j", "2", timeout=50)
    assert (result.returncode, result.stdout) == (2, b"")
    lines = result.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"hashpar: error: {manifest}: {message}")
