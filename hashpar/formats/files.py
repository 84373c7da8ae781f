"""Checksum files and bags on disk: load one into a Manifest, prepare a bag's tag files.

This is the I/O side of :mod:`hashpar.formats`; the format rules themselves are pure
functions in ``sums.py`` and ``bagit.py``.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Iterable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import BinaryIO

from hashpar import __version__
from hashpar.errors import ManifestError, UsageError
from hashpar.formats import bagit
from hashpar.formats.records import ChecksumFormat, ParsedChecksums, name_list, numbered_lines
from hashpar.formats.sums import parse_checksum_lines
from hashpar.models import Algorithm, FileEntry, Manifest, Snapshot
from hashpar.names import display_name, input_name

__all__ = [
    "MAX_INPUT",
    "MAX_LINE",
    "bag_tag_files",
    "fill_sizes",
    "is_bag",
    "is_manifest_file",
    "load_checksums",
    "looks_like_manifest",
    "parse_input",
    "parse_lines",
    "read_bag",
    "read_checksums",
    "read_input",
]

_SHOWN = 5
_CHUNK = 1 << 20
MAX_LINE = 1 << 20
"""Longest line accepted in a checksum file, in bytes."""
MAX_INPUT = 4 << 30
"""Largest manifest or tag file read whole, in bytes. Checksum files are read line by line,
whatever their size (:func:`read_checksums`)."""


def load_checksums(
    path: str,
    *,
    algorithm: Algorithm | None = None,
    only: ChecksumFormat | None = None,
    root: str | None = None,
) -> ParsedChecksums:
    """Read a sums file, a BagIt payload manifest or a bag directory (``-``: stdin).

    A directory is a bag; anything else is read a piece at a time and parsed line by line
    (:func:`read_checksums`). UsageError/ManifestError for unreadable or unusable input.
    """
    if path != "-" and os.path.isdir(path):
        if only not in (None, ChecksumFormat.BAGIT):
            raise UsageError(f"{path} is a directory, not a {only} file")
        return read_bag(path, algorithm=algorithm, root=root)
    parsed = read_checksums(path, algorithm=algorithm, only=only, root=root)
    assert isinstance(parsed, ParsedChecksums)  # without manifest_ok, never bytes
    return parsed


def read_checksums(
    path: str,
    *,
    algorithm: Algorithm | None = None,
    only: ChecksumFormat | None = None,
    root: str | None = None,
    manifest_ok: bool = False,
) -> ParsedChecksums | bytes:
    """Read checksum file ``path`` (``-``: stdin; pipes and ``<(...)`` work), once, a piece at
    a time, and parse it line by line (:func:`parse_lines`): memory holds the entries and the
    problem lines kept, never the file, so a huge or endless input costs no more.

    With ``manifest_ok``, input whose first chunk :func:`looks_like_manifest` is returned as
    its bytes instead (read whole up to MAX_INPUT; binary input: the first chunk only), for
    the manifest decoder. A line longer than MAX_LINE is refused as soon as it is seen.
    """
    name = input_name(path)
    try:
        with _opened(path) as stream:
            head = stream.read(_CHUNK)
            if manifest_ok and looks_like_manifest(head, path):
                return head if b"\0" in head else _read_rest(head, stream, name)
            lines = _split_lines(head, stream, name)
            return parse_lines(lines, path, algorithm=algorithm, only=only, root=root)
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror}") from None


def parse_input(
    data: bytes,
    path: str,
    *,
    algorithm: Algorithm | None = None,
    only: ChecksumFormat | None = None,
    root: str | None = None,
) -> ParsedChecksums:
    """:func:`parse_lines` on the ``\\n``-separated lines of ``data``."""
    lines = (line for _, line in numbered_lines(data))
    return parse_lines(lines, path, algorithm=algorithm, only=only, root=root)


def parse_lines(
    lines: Iterable[bytes],
    path: str,
    *,
    algorithm: Algorithm | None = None,
    only: ChecksumFormat | None = None,
    root: str | None = None,
) -> ParsedChecksums:
    """Parse the lines of checksum file ``path`` (``-``: stdin), by ``only`` or by its name.

    A file named ``manifest-<algo>.txt`` is a BagIt payload manifest whose paths resolve in
    ``data/`` beside it; anything else is a GNU/BSD file (line forms detected per line) whose
    paths resolve in the current directory, as ``sha256sum -c`` resolves them. ``root``
    replaces either.
    """
    source = input_name(path)
    name = os.path.basename(path)
    is_bag_manifest = name.startswith("manifest-") and name.endswith(".txt")
    if only is ChecksumFormat.BAGIT or (only is None and is_bag_manifest):
        _require_sha256(algorithm, name, path)
        bag_root = os.path.join(os.path.dirname(path) or ".", "data")
        return bagit.parse_bagit_lines(lines, source=source, root=root or bag_root)
    return parse_checksum_lines(
        lines, source=source, algorithm=algorithm, only=only, root=root or "."
    )


def looks_like_manifest(head: bytes, name: str = "") -> bool:
    """True when input starting with ``head`` (named ``name``) is read as a hashpar manifest.

    No checksum line starts with ``{`` or ``[`` (after a byte-order mark and whitespace), so
    that is JSON; a NUL byte means binary, which is no checksum file either (the manifest
    decoder then says what it is not). Otherwise a name ending in ``.json`` decides (an empty
    ``manifest.json`` is a broken manifest, not an empty sums file).
    """
    start = head.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r\n")[:1]
    return start in (b"{", b"[") or b"\0" in head[:_CHUNK] or name.lower().endswith(".json")


def is_manifest_file(path: str) -> bool:
    """True when ``path`` is a regular file whose first chunk :func:`looks_like_manifest`
    (what :func:`read_input` would decide); False for anything else, errors included, which
    :func:`read_input` then names."""
    try:
        with open(path, "rb") as stream:
            regular = stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
            return regular and looks_like_manifest(stream.read(_CHUNK), path)
    except OSError:
        return False


def is_bag(directory: str) -> bool:
    """True when ``directory`` has a ``bagit.txt``: a BagIt bag (RFC 8493 section 2.1.1)."""
    return os.path.isfile(os.path.join(directory, "bagit.txt"))


def read_bag(
    bagdir: str, *, algorithm: Algorithm | None = None, root: str | None = None
) -> ParsedChecksums:
    """Read a bag's declaration and SHA-256 payload manifest; paths resolve in ``data/``."""
    declaration = os.path.join(bagdir, "bagit.txt")
    if not os.path.isfile(declaration):
        raise UsageError(f"{bagdir}: a directory without bagit.txt is not a bag")
    bagit.check_bagit_txt(read_input(declaration), declaration)
    manifest_path = os.path.join(bagdir, bagit.PAYLOAD_MANIFEST)
    if not os.path.isfile(manifest_path):
        others = sorted(n for n in os.listdir(bagdir) if n.startswith("manifest-"))
        found = f" (it has {', '.join(others)})" if others else ""
        raise UsageError(
            f"{bagdir}: no {bagit.PAYLOAD_MANIFEST}{found}: hashpar checks SHA-256 bags only"
        )
    _require_sha256(algorithm, bagit.PAYLOAD_MANIFEST, bagdir)
    data_dir = os.path.join(bagdir, "data")
    parsed = read_checksums(manifest_path, only=ChecksumFormat.BAGIT, root=root or data_dir)
    assert isinstance(parsed, ParsedChecksums)
    return parsed


def fill_sizes(manifest: Manifest) -> tuple[Manifest, int]:
    """The manifest with each size taken from its file under ``manifest.root``, where that
    file exists and is a regular file reached through real directories only (lstat each
    step: nothing is read, no symlink is followed out of the tree); the others keep
    ``size=None``. Returns the manifest and how many sizes were filled.
    """
    seen: dict[str, os.stat_result | None] = {}

    def lstat_inside(path: str) -> os.stat_result | None:
        parts = path.split("/")
        for depth in range(1, len(parts) + 1):
            prefix = "/".join(parts[:depth])
            if prefix not in seen:
                try:
                    seen[prefix] = os.lstat(os.path.join(manifest.root, prefix))
                except OSError:
                    seen[prefix] = None
            found = seen[prefix]
            if found is None or (depth < len(parts) and not stat.S_ISDIR(found.st_mode)):
                return None
        return seen[path]

    files: dict[str, FileEntry] = {}
    filled = 0
    for path, entry in manifest.files.items():
        found = lstat_inside(path)
        if found is not None and stat.S_ISREG(found.st_mode):
            entry = FileEntry(found.st_size, entry.digest, entry.mtime_ns)
            filled += 1
        files[path] = entry
    return replace(manifest, snapshot=Snapshot(files=files)), filled


def bag_tag_files(manifest: Manifest, bagdir: str) -> dict[str, bytes]:
    """The tag files that make ``bagdir`` a bag of ``manifest``, in the order to write them.

    Refused with UsageError/ManifestError unless the manifest's root is ``bagdir/data``, it
    is SHA-256, it lists every payload file and only files (a listing of ``data/`` is
    compared with it; nothing is hashed), and no other algorithm's manifest would be left
    stale. Fields of an existing ``bag-info.txt`` other than hashpar's three are kept.
    """
    data_dir = os.path.join(bagdir, "data")
    if not os.path.isdir(data_dir):
        raise UsageError(f"{bagdir}: no data/ directory: a bag keeps its payload in data/")
    if os.path.realpath(manifest.root) != os.path.realpath(data_dir):
        raise UsageError(
            f"the manifest's root is {display_name(manifest.root)}, not {display_name(data_dir)}"
            f": make the manifest of {display_name(data_dir)} to export this bag"
        )
    snapshot = manifest.snapshot
    if snapshot.errors or snapshot.symlinks or snapshot.skipped or manifest.excludes:
        raise ManifestError(
            "a bag's manifest must list every payload file, but this one has "
            f"{len(snapshot.errors)} unreadable, {len(snapshot.symlinks)} symlink(s), "
            f"{len(snapshot.skipped)} special file(s) and {len(manifest.excludes)} exclude "
            "pattern(s)"
        )
    _check_payload(manifest, data_dir)
    stale = sorted(
        name
        for name in os.listdir(bagdir)
        if name.startswith(("manifest-", "tagmanifest-"))
        and name not in (bagit.PAYLOAD_MANIFEST, bagit.TAG_MANIFEST)
    )
    if stale:
        raise UsageError(f"{bagdir} has {', '.join(stale)}, which would be left stale")
    info_path = os.path.join(bagdir, "bag-info.txt")
    existing = read_input(info_path) if os.path.isfile(info_path) else None
    files = {
        bagit.PAYLOAD_MANIFEST: bagit.encode_bagit(manifest),
        "bag-info.txt": bagit.bag_info(
            manifest, existing, datetime.now(UTC).date(), f"hashpar {__version__}"
        ),
        "bagit.txt": bagit.BAGIT_TXT,
    }
    files[bagit.TAG_MANIFEST] = bagit.tag_manifest(files)
    return files


def _check_payload(manifest: Manifest, data_dir: str) -> None:
    """UsageError if the files under ``data_dir`` are not exactly the manifest's files."""
    on_disk = set(_walk_files(data_dir))
    listed = set(manifest.files)
    for label, names in (("not in the manifest", on_disk - listed), ("gone", listed - on_disk)):
        if names:
            raise UsageError(
                f"{len(names)} payload file(s) {label}: {name_list(names, _SHOWN)}: the "
                "manifest does not match data/ (run hashpar make again)"
            )


def _walk_files(top: str) -> Iterator[str]:
    """Relative '/'-separated paths of every non-directory under ``top``; errors raise."""

    def fail(error: OSError) -> None:
        raise UsageError(f"cannot list {error.filename}: {error.strerror}")

    for dirpath, _dirs, names in os.walk(top, onerror=fail):
        relative = os.path.relpath(dirpath, top)
        for name in names:
            yield name if relative == "." else f"{relative.replace(os.sep, '/')}/{name}"


def _require_sha256(algorithm: Algorithm | None, name: str, where: str) -> None:
    if name != bagit.PAYLOAD_MANIFEST and name.startswith("manifest-"):
        raise UsageError(f"{where}: {name}: hashpar checks SHA-256 bag manifests only")
    if algorithm not in (None, Algorithm.SHA256):
        raise UsageError(f"{where}: a BagIt SHA-256 manifest cannot be checked as {algorithm}")


def read_input(path: str, *, manifest_ok: bool = False) -> bytes:
    """The bytes of a checksum file (``-``: stdin; pipes and ``<(...)`` work too), read once.

    Checksum files are lines: input with a "line" longer than MAX_LINE (a path is at most a
    few KiB even escaped), or bigger than MAX_INPUT, is refused as soon as it is seen, so
    ``/dev/zero`` fails at once instead of filling memory. With ``manifest_ok``, input whose
    first chunk :func:`looks_like_manifest` is not held to the line rule (JSON may be one
    line), and binary input stops after that chunk: the manifest decoder says what is wrong.
    """
    name = input_name(path)
    try:
        if path == "-":
            return _read_lines(sys.stdin.buffer, name, manifest_ok)
        with open(path, "rb") as stream:
            return _read_lines(stream, name, manifest_ok)
    except OSError as exc:
        raise UsageError(f"cannot read {name}: {exc.strerror}") from None


@contextlib.contextmanager
def _opened(path: str) -> Iterator[BinaryIO]:
    if path == "-":
        yield sys.stdin.buffer
    else:
        with open(path, "rb") as stream:
            yield stream


def _split_lines(head: bytes, stream: BinaryIO, name: str) -> Iterator[bytes]:
    """The ``\\n``-separated lines of ``head`` and the rest of ``stream``, terminators removed
    (as :func:`~hashpar.formats.records.numbered_lines`), read a chunk at a time."""
    rest = b""
    chunk = head
    while chunk:
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        if len(rest) > MAX_LINE:
            raise UsageError(f"{name}: a line longer than {MAX_LINE} bytes: not a checksum file")
        yield from lines
        chunk = stream.read(_CHUNK)
    if rest:
        yield rest


def _read_rest(head: bytes, stream: BinaryIO, name: str) -> bytes:
    """``head`` and the rest of ``stream``: a manifest, which may be one long line."""
    chunks = [head]
    total = len(head)
    while chunk := stream.read(_CHUNK):
        chunks.append(chunk)
        total += len(chunk)
        if total > MAX_INPUT:
            raise UsageError(f"{name}: larger than {MAX_INPUT} bytes: refusing to read it")
    return b"".join(chunks)


def _read_lines(stream: BinaryIO, name: str, manifest_ok: bool) -> bytes:
    chunks: list[bytes] = []
    total = since_newline = 0
    lines = True
    while chunk := stream.read(_CHUNK):
        if not chunks and manifest_ok and looks_like_manifest(chunk):
            if b"\0" in chunk:
                return chunk  # binary: no manifest, no checksum file either
            lines = False  # JSON may be written on one line
        chunks.append(chunk)
        total += len(chunk)
        if total > MAX_INPUT:
            raise UsageError(f"{name}: larger than {MAX_INPUT} bytes: refusing to read it")
        if lines:
            newline = chunk.rfind(b"\n")
            since_newline = len(chunk) - newline - 1 if newline >= 0 else since_newline + len(chunk)
            if since_newline > MAX_LINE:
                raise UsageError(
                    f"{name}: a line longer than {MAX_LINE} bytes: not a checksum file"
                )
    return b"".join(chunks)
