"""Manifest v1: write it canonically, read it strictly (docs/manifest-format.md).

Writing is deterministic: fixed key order, entries sorted by key, one entry per line, so the
same tree gives the same bytes whatever ``--jobs`` is, and manifests diff well.

Reading treats the manifest as hostile input. Anything that does not fit the schema exactly is
a :class:`~hashpar.errors.ManifestError` naming the problem and the entry: not JSON, trailing
data, a BOM, wrong types (``true`` is not a size), out-of-range numbers, digests of the wrong
length or case, unknown fields or versions, duplicate keys, absurd nesting, invalid UTF-8,
every path that is absolute, non-canonical or could climb out of the root
(:mod:`hashpar.names`). The one non-path key is ``"."`` in ``errors``: the root itself could
not be listed (as make records it).
"""

from __future__ import annotations

import codecs
import dataclasses
import itertools
import json
import re
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator, Mapping
from io import BytesIO
from operator import attrgetter, countOf, le
from typing import Annotated, Any, BinaryIO, Protocol, TypeVar, cast

import msgspec
from msgspec import UNSET, UnsetType

from hashpar.errors import ManifestError
from hashpar.kinds import DIGEST_BYTES, INT64_MAX, UNKNOWN
from hashpar.models import (
    Algorithm,
    FileEntry,
    FileTable,
    Manifest,
    Problem,
    ProblemKind,
    Snapshot,
    SpecialKind,
)
from hashpar.names import SAFE_PLAIN_PATH, key_for, path_for, unsafe_reason, utf8_text
from hashpar.scan import check_patterns

__all__ = [
    "FORMAT_VERSION",
    "CanonicalReader",
    "decode_manifest",
    "drained",
    "encode_manifest",
    "read_canonical",
    "write_manifest",
]

FORMAT_VERSION = 1
_MAX_INT = INT64_MAX
_CHUNK = 4096  # entries encoded per write, so memory stays flat for huge manifests
_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f"\\]')  # exactly what msgspec escapes in a string
_DRIVE_KEY = re.compile(r"\0[A-Za-z]:")  # a drive form at the start of a NUL-separated key
_V = TypeVar("_V")
_R = TypeVar("_R")


class _Sink(Protocol):
    def write(self, data: bytes, /) -> object: ...


# -- the schema, as msgspec types (gc=False: a million entries decode without GC pauses) -----
#
# Optional fields default to UNSET rather than their value, so a reader can tell an absent
# field from one given explicitly (the duplicate-key check below counts the fields present).
# A digest is checked here for its length only; that it is lowercase hex is checked once for
# all digests together (_file_entries), which is a third of the cost of a regex per digest.

_Digest = Annotated[str, msgspec.Meta(min_length=64, max_length=64)]
_Size = Annotated[int, msgspec.Meta(ge=0, le=_MAX_INT)]
_Time = Annotated[int, msgspec.Meta(ge=-_MAX_INT, le=_MAX_INT)]


class _File(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    digest: _Digest
    size: _Size | UnsetType | None = UNSET
    mtime_ns: _Time | UnsetType | None = UNSET


class _Symlink(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    target: str


class _Skipped(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    kind: SpecialKind


class _Error(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    kind: ProblemKind
    message: str


class _Document(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    version: int
    algorithm: Algorithm
    root: str
    files: dict[str, _File]
    generator: str | UnsetType = UNSET
    created: str | UnsetType = UNSET
    follow_symlinks: bool | UnsetType = UNSET
    excludes: list[str] | UnsetType = UNSET
    symlinks: dict[str, _Symlink] | UnsetType = UNSET
    skipped: dict[str, _Skipped] | UnsetType = UNSET
    errors: dict[str, _Error] | UnsetType = UNSET


class _StrictFile(msgspec.Struct, forbid_unknown_fields=True):
    """A file entry exactly as documented, one at a time: only to name an invalid entry."""

    digest: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}\Z")]
    size: _Size | None = None
    mtime_ns: _Time | None = None


_DECODER = msgspec.json.Decoder(_Document)
_ENTRY_FIELDS = attrgetter("size", "digest", "mtime_ns")
_DIGEST = attrgetter("digest")
_SIZE, _MTIME = attrgetter("size"), attrgetter("mtime_ns")  # of a FileEntry or a _File
_HEX = b"0123456789abcdef"
_HEAD_BYTES = 1 << 20  # read_canonical: its first read, which must hold the files' opening;
_PIECE_BYTES = 256 << 10  # then each read (pieces of 256 KiB-1 MiB: fastest, measured)
_LINE_MAX = 1 << 20  # an entry line hashpar writes is under 32 KiB (a 4 KiB path, escaped)
_FILES_OPEN = b'\n  "files": {\n'  # how a canonical non-empty files section opens,
_FILES_CLOSE = b"\n  }"  # how it closes (an entry line starts with four spaces and a quote)
_ENTRY_END = b'},\n    "'  # and where one entry line ends and the next begins
_FILES_DECODER = msgspec.json.Decoder(dict[str, _File])


# -- writing ----------------------------------------------------------------------------------


def write_manifest(manifest: Manifest, stream: _Sink) -> None:
    """Write ``manifest`` to a binary stream in canonical form, a few thousand entries a time."""
    head = {
        "version": FORMAT_VERSION,
        "generator": manifest.generator,
        "algorithm": str(manifest.algorithm),
        "root": key_for(manifest.root),  # a root that is not UTF-8 is written as a key is
        "created": manifest.created,
        "follow_symlinks": manifest.follow_symlinks,
        "excludes": [key_for(pattern) for pattern in manifest.excludes],  # the same for these
    }
    enc = msgspec.json.encode
    stream.write(
        b"{\n" + b"".join(b'  "%s": %s,\n' % (k.encode(), enc(v)) for k, v in head.items())
    )
    snap = manifest.snapshot
    _write_section(stream, "files", snap.files, _file_json, last=False)
    _write_section(stream, "symlinks", snap.symlinks, _symlink_json, last=False)
    _write_section(stream, "skipped", snap.skipped, _skipped_json, last=False)
    _write_section(stream, "errors", snap.errors, _error_json, last=True)


def _string(text: str) -> str:
    """A JSON string literal exactly as msgspec writes it; the common case needs no escaping."""
    if _NEEDS_ESCAPE.search(text) is None:
        return f'"{text}"'
    return msgspec.json.encode(text).decode()


def _file_json(entry: FileEntry) -> str:
    if entry.size is not None and entry.mtime_ns is not None:  # what make writes
        return f'{{"size": {entry.size}, "mtime_ns": {entry.mtime_ns}, "digest": "{entry.digest}"}}'
    fields = [f'"size": {entry.size}'] if entry.size is not None else []
    fields += [f'"mtime_ns": {entry.mtime_ns}'] if entry.mtime_ns is not None else []
    return "{" + ", ".join([*fields, f'"digest": "{entry.digest}"']) + "}"


def _symlink_json(target: str) -> str:
    return f'{{"target": {_string(key_for(target))}}}'


def _skipped_json(kind: SpecialKind) -> str:
    return f'{{"kind": "{kind}"}}'


def _error_json(problem: Problem) -> str:
    return f'{{"kind": "{problem.kind}", "message": {_string(utf8_text(problem.message))}}}'


def _write_section(
    stream: _Sink, name: str, entries: Mapping[str, _V], render: Callable[[_V], str], last: bool
) -> None:
    """Write one section, one entry per line, sorted by key, ``_CHUNK`` entries a time."""
    closing = "\n  }\n}\n" if last else "\n  },\n"
    if not entries:
        stream.write(f'  "{name}": {{}}{closing[4:]}'.encode())
        return
    stream.write(f'  "{name}": {{\n'.encode())
    if isinstance(entries, FileTable) and all(map(str.isascii, entries)):
        _write_table(stream, entries)  # keys are the paths, and the table is in their order
        stream.write(closing.encode())
        return
    keys, values = _key_order(entries)
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        chunk_values = list(itertools.islice(values, len(chunk)))
        lines = _plain_lines(chunk, chunk_values) if render is _file_json else None
        if lines is None:
            pairs = zip(chunk, chunk_values, strict=True)
            lines = ",\n".join([f"    {_string(key)}: {render(value)}" for key, value in pairs])
        if start:
            stream.write(b",\n")
        stream.write(lines.encode())
    stream.write(closing.encode())


def _write_table(stream: _Sink, table: FileTable) -> None:
    """The lines of a FileTable's entries, from its columns ``_CHUNK`` rows a time.

    No FileEntry is made: a chunk's digests are hexed in one call, and each line is one
    f-string (:func:`_lines`). A chunk with a key that needs escaping or a size
    or mtime not known goes through the general writer (the same bytes; tested).
    """
    for start in range(0, len(table), _CHUNK):
        stop = min(start + _CHUNK, len(table))
        keys, digests, sizes, mtimes = table.rows(start, stop)
        if (
            _NEEDS_ESCAPE.search("".join(keys)) is None
            and UNKNOWN not in sizes
            and UNKNOWN not in mtimes
        ):
            lines = _lines(keys, sizes, mtimes, digests.hex(" ", DIGEST_BYTES).split(" "))
        else:
            pairs = zip(keys, table.entries(start, stop), strict=True)
            lines = ",\n".join([f"    {_string(key)}: {_file_json(entry)}" for key, entry in pairs])
        if start:
            stream.write(b",\n")
        stream.write(lines.encode())


def _plain_lines(keys: list[str], values: list[Any]) -> str | None:
    """The lines of a chunk of file entries, one f-string each, or None when an entry needs
    the general writer: a key that needs escaping, or a size or mtime of None. The bytes are
    those of ``_string`` and ``_file_json`` (tested). Every check runs in C over the chunk.
    """
    if (
        _NEEDS_ESCAPE.search("".join(keys)) is not None
        or None in map(_SIZE, values)
        or None in map(_MTIME, values)
    ):
        return None
    return _lines(keys, map(_SIZE, values), map(_MTIME, values), map(_DIGEST, values))


def _lines(
    keys: Iterable[str], sizes: Iterable[int], mtimes: Iterable[int], digests: Iterable[str]
) -> str:
    """Plain entries' lines, one f-string each: keys that need no escaping, known sizes
    and mtimes, hex digests (what _string and _file_json write for them; tested)."""
    return ",\n".join(
        [
            f'    "{k}": {{"size": {size}, "mtime_ns": {mtime}, "digest": "{digest}"}}'
            for k, size, mtime, digest in zip(keys, sizes, mtimes, digests, strict=True)
        ]
    )


def _key_order(entries: Mapping[str, _V]) -> tuple[list[str], Iterator[_V]]:
    """The section's keys in sorted order, and their values in the same order.

    A Snapshot iterates in path order, and keys equal paths except for names that are not
    valid UTF-8, whose keys start with NUL. So: when every path is ASCII (checked in C,
    without a Python call per path) and in order, the paths as they come; else each path's
    key, as they come when those are in order, else sorted by key. The values then come
    from one pass over ``values()``, not a lookup per key, and are drawn a chunk at a time,
    so no list of them is held (a snapshot's ``KeyOrdered.values`` maps its dict's lookup
    over the key order in C). Measured on the 100,000 entries of a small-corpus make:
    ``write_manifest`` 47.3 -> 43.4 ms (session 5) against a lookup per key. Keys are one
    list, 8 bytes per entry; chunks of pairs from ``items()`` took 16 ms to draw against
    3-5 ms (session 4).
    """
    paths = list(entries)
    if _ascii_in_order(paths):
        return paths, iter(entries.values())
    keys = list(map(key_for, paths))
    if all(map(le, keys, itertools.islice(keys, 1, None))):
        return keys, iter(entries.values())
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return [keys[i] for i in order], map(entries.__getitem__, [paths[i] for i in order])


def _ascii_in_order(paths: list[str]) -> bool:
    """True when every path is ASCII (so is its own manifest key) and they come sorted."""
    return all(map(str.isascii, paths)) and all(map(le, paths, itertools.islice(paths, 1, None)))


def encode_manifest(manifest: Manifest) -> bytes:
    """The canonical bytes of ``manifest`` (see :func:`write_manifest`)."""
    buffer = BytesIO()
    write_manifest(manifest, buffer)
    return buffer.getvalue()


# -- reading ----------------------------------------------------------------------------------


def decode_manifest(data: bytes) -> Manifest:
    """Parse and validate manifest bytes; ManifestError names the first problem found."""
    doc = _decode(data)
    _check_digests(data, doc.files)
    if doc.version != FORMAT_VERSION:
        raise ManifestError(f"unsupported manifest version {doc.version} (this hashpar reads 1)")
    root = _root(doc.root)
    symlinks = _given(doc.symlinks, {})
    skipped = _given(doc.skipped, {})
    errors = _given(doc.errors, {})
    plain_keys, key_colons = _plain_keys(doc.files)  # every path, checked and counted
    files, fields = _file_entries(doc.files, plain_keys)
    manifest = Manifest(
        algorithm=doc.algorithm,
        root=root,
        created=_given(doc.created, ""),
        generator=_given(doc.generator, ""),
        excludes=_patterns(_given(doc.excludes, [])),
        follow_symlinks=_given(doc.follow_symlinks, False),
        snapshot=Snapshot(
            files=files,
            symlinks={_path("symlinks", k): _target(k, v.target) for k, v in symlinks.items()},
            skipped={_path("skipped", k): v.kind for k, v in skipped.items()},
            errors={_error_path(k, v.kind): Problem(v.kind, v.message) for k, v in errors.items()},
        ),
    )
    _check_sections_disjoint(manifest.snapshot)
    if not _surely_no_duplicate_keys(data, doc, fields, key_colons):
        _reject_duplicate_keys(data)
    return manifest


def _root(text: str) -> str:
    """The root a manifest names: a path, written as :func:`hashpar.names.key_for` writes a
    key (so a root that is not UTF-8 has the NUL-marked escaped form)."""
    root = _unescaped("'root'", text)
    if not root or "\0" in root:
        raise ManifestError("invalid manifest: 'root' must be a non-empty path without NUL")
    return root


def _patterns(texts: list[str]) -> tuple[str, ...]:
    """The excludes, each written as the root is, and all of them valid gitignore patterns
    (verify walks with them; a bad one is the manifest's fault, named here, not a usage
    error about an --exclude the user never gave)."""
    patterns = tuple(_unescaped("exclude pattern", text) for text in texts)
    try:
        check_patterns(patterns)  # pathspec is imported only when there are patterns
    except (ValueError, TypeError) as exc:
        raise ManifestError(f"invalid manifest: excludes: {exc}") from None
    return patterns


def _unescaped(what: str, text: str) -> str:
    """``text`` decoded as :func:`hashpar.names.path_for` decodes a key."""
    try:
        return path_for(text)
    except ValueError:
        raise ManifestError(
            f"invalid manifest: {what} {json.dumps(text)} is not canonical"
        ) from None


def _decode(data: bytes) -> _Document:
    try:
        return _DECODER.decode(data)
    except msgspec.ValidationError as exc:
        raise ManifestError(f"invalid manifest: {_locate(data) or exc}") from None
    except msgspec.DecodeError as exc:
        raise ManifestError(f"not a valid JSON manifest: {exc}") from None
    except UnicodeDecodeError:  # msgspec raises this for invalid UTF-8 in a string
        where = _first_bad_utf8(data)  # msgspec's offset is within that string
        raise ManifestError(f"not a valid JSON manifest: not UTF-8 (byte {where})") from None
    except RecursionError:
        raise ManifestError("not a valid JSON manifest: nested too deeply") from None


def _first_bad_utf8(data: bytes) -> int:
    """The offset in ``data`` of its first byte that is not valid UTF-8 (-1 if none), found
    a megabyte at a time: only an error message needs it."""
    carry, offset = b"", 0  # bytes of a character cut by a chunk's end, and where they are
    for start in range(0, len(data), 1 << 20):
        chunk = carry + data[start : start + (1 << 20)]
        try:
            _, used = codecs.utf_8_decode(chunk, "strict", start + (1 << 20) >= len(data))
        except UnicodeDecodeError as exc:
            return offset + exc.start
        carry, offset = chunk[used:], offset + used
    return -1


def read_canonical(stream: BinaryIO, max_bytes: int) -> Manifest | None:
    """The manifest in ``stream`` when it is in the canonical form hashpar writes, read and
    decoded a piece at a time; None for anything else (the caller then reads it whole and
    :func:`decode_manifest` accepts it or names the problem). See :class:`CanonicalReader`.
    """
    reader = CanonicalReader.open(stream, max_bytes)
    return None if reader is None else reader.read()


class CanonicalReader:
    """A manifest in canonical form being read: its header at once, its files a piece at a
    time (:meth:`read`), so verify can start walking before the entries are in.

    Decoding a whole document holds its bytes and the decoded objects together: on
    1,000,000 entries, 155 and 321 bytes per entry. Here the files section is cut at the end
    of an entry line (``},`` then a new line, four spaces and a quote, which no JSON string
    can hold) and each piece is decoded as an object of its own, checked as
    :func:`decode_manifest` checks the whole, and merged; only one piece of bytes exists at
    a time. What is left, the document with an empty files section (the *skeleton*), must
    decode and be byte for byte what :func:`encode_manifest` writes for it. Then the file is
    that skeleton with the pieces' members in its files object, so decoding it whole gives
    the same manifest: each piece starts at a member (the first by the skeleton's form, the
    next because the one before decoded as complete members), the pieces' members are the
    section's members, and no key repeats (counted within a piece as
    :func:`_surely_no_duplicate_keys` counts, and across pieces by the merged length).
    Anything else gives None, never an error of its own: a manifest is accepted or
    rejected exactly as :func:`decode_manifest` would.

    The header is everything before the files section, decoded as a document with no
    entries, and it must be byte for byte what :func:`encode_manifest` writes before the
    files: every setting is there, in its place (one written after the files, which the
    format allows, would otherwise be taken for its default). The skeleton starts with those
    same bytes, so a manifest :meth:`read` returns has exactly that header.

    Pieces of 256 KiB rather than 4 MiB (``load_manifest`` in a fresh process, medians of
    3-11): 100,000 entries 0.085 -> 0.078 s and 67 -> 59 MB; 1,000,000 entries 0.91 ->
    0.84 s and 360 -> 346 MB. 256 KiB to 1 MiB measured alike; 8 MiB was slower still.
    """

    def __init__(
        self, stream: BinaryIO, max_bytes: int, head: bytes, buffer: bytearray, header: Manifest
    ) -> None:
        self.stream = stream
        """The file being read (the caller closes it)."""
        self.max_bytes = max_bytes
        """The most bytes it may have."""
        self._head = head
        self._buffer = buffer
        self.header = header
        """The manifest's settings (algorithm, root, excludes, ...), with no entries."""

    @classmethod
    def open(cls, stream: BinaryIO, max_bytes: int) -> CanonicalReader | None:
        """Read the start of ``stream``; None when it does not open as a canonical manifest
        with entries, or its header does not decode."""
        buffer = bytearray(stream.read(_HEAD_BYTES))
        opening = buffer.find(_FILES_OPEN)
        if opening < 0:
            return None
        head = bytes(buffer[: opening + len(_FILES_OPEN) - 1])  # through '"files": {'
        del buffer[: len(head)]  # the buffer starts with the new line before the first entry
        try:
            header = decode_manifest(head + b"}\n}")
        except ManifestError:
            return None
        if not encode_manifest(header).startswith(head + b"},\n"):
            return None  # a field after the files, or another layout: only the whole can say
        return cls(stream, max_bytes, head, buffer, header)

    def read(self) -> Manifest | None:
        """The whole manifest, or None if it is not canonical after all. Call it once."""
        return drained(self.read_in_pieces())

    def read_in_pieces(self) -> Generator[None, None, Manifest | None]:
        """:meth:`read`, a piece at a time: yields each time a piece of the files section
        (a read of ``_PIECE_BYTES``) is decoded, and returns what :meth:`read` returns."""
        stream, max_bytes, buffer = self.stream, self.max_bytes, self._buffer
        self._buffer = bytearray()
        total = len(self._head) + len(buffer)
        files: dict[str, FileEntry] = {}
        while (closing := buffer.find(_FILES_CLOSE)) < 0:
            cut = buffer.rfind(_ENTRY_END)
            if cut >= 0:
                merged = _merged(files, _piece(buffer, cut + 1))
                if merged is None:
                    return None
                files = merged
                del buffer[: cut + 1]  # O(1): a bytearray drops its front in place
                yield
            elif len(buffer) > _LINE_MAX:
                return None  # no line hashpar writes is this long; and the buffer stays bounded
            block = stream.read(_PIECE_BYTES)
            total += len(block)
            if not block or total > max_bytes:
                return None
            buffer += block
        merged = _merged(files, _piece(buffer, closing))
        if merged is None:
            return None
        files = merged
        tail = [bytes(buffer[closing + len(_FILES_CLOSE) :])]
        del buffer
        while block := stream.read(_PIECE_BYTES):
            total += len(block)
            if total > max_bytes:
                return None
            tail.append(block)
        skeleton = self._head + b"}" + b"".join(tail)
        try:
            manifest = decode_manifest(skeleton)
            if encode_manifest(manifest) != skeleton:
                return None
            snapshot = dataclasses.replace(manifest.snapshot, files=files)
            _check_sections_disjoint(snapshot)
        except ManifestError:
            return None
        return dataclasses.replace(manifest, snapshot=snapshot)


def drained(pieces: Generator[object, None, _R]) -> _R:
    """Run a generator that works a piece at a time to its end; return what it returns."""
    while True:
        try:
            next(pieces)
        except StopIteration as stop:
            return cast(_R, stop.value)


def _piece(buffer: bytearray, end: int) -> dict[str, FileEntry] | None:
    """The entries in ``buffer[:end]``, checked as :func:`decode_manifest` checks a files
    section; None when that is not certain to be what decoding the whole would give.

    ``buffer[0]`` is the byte before the piece's first entry (the new line after the
    section's opening brace, or the comma after the piece before) and ``buffer[end]`` the
    byte after its last (a comma, or the new line before the section's closing brace): they
    become its braces, so the piece is decoded where it lies, never copied.
    """
    buffer[0], buffer[end] = ord("{"), ord("}")
    with memoryview(buffer) as view, view[: end + 1] as data:
        try:
            entries = _FILES_DECODER.decode(data)
            _check_digests(data, entries)
            plain_keys, key_colons = _plain_keys(entries)
            files, fields = _file_entries(entries, plain_keys)
        except (msgspec.DecodeError, ManifestError, UnicodeDecodeError, RecursionError):
            return None
    if buffer.find(b"\\", 0, end) >= 0 and (
        buffer.find(b"\\u003a", 0, end) >= 0 or buffer.find(b"\\u003A", 0, end) >= 0
    ):
        return None  # a colon the raw bytes do not show: the count below cannot tell
    if buffer.count(b":", 0, end) != len(files) + fields + key_colons:
        return None  # a key repeated within the piece (or within an entry)
    return files


def _merged(
    files: dict[str, FileEntry], piece: dict[str, FileEntry] | None
) -> dict[str, FileEntry] | None:
    """``files`` with ``piece``'s entries added (the first piece is taken as it is, so a
    manifest of one piece is never copied); None if there is no piece or a key repeats."""
    if piece is None or not files:
        return piece
    before = len(files)
    files.update(piece)
    return files if len(files) == before + len(piece) else None


def _given(value: _V | UnsetType, default: _V) -> _V:
    return default if isinstance(value, UnsetType) else value


def _check_digests(data: bytes | memoryview, entries: dict[str, _File]) -> None:
    """Every digest is lowercase hex, checked for all at once (what the schema's regex says).

    Each is known to have 64 characters; joined, every byte of their UTF-8 must be one of
    0-9a-f, since UTF-8 writes any other character with bytes outside that set. Measured: a
    third of the cost of msgspec matching a regex per digest. Joined _CHUNK at a time: all
    at once, the joined text and its bytes held 128 bytes per entry at the peak of a load.
    """
    digests = map(_DIGEST, entries.values())
    while chunk := "".join(itertools.islice(digests, _CHUNK)):
        if chunk.encode().translate(None, _HEX):
            raise ManifestError(f"invalid manifest: {_locate(data) or 'a digest is not hex'}")


def _file_entries(entries: dict[str, _File], plain_keys: bool) -> tuple[dict[str, FileEntry], int]:
    """The files section as path -> FileEntry, and how many entry fields the JSON gave.

    ``plain_keys``: every key is known to be its own safe path (:func:`_plain_keys`); then
    ``entries`` itself becomes the result, each value replaced in place (no key is added or
    removed, so iterating it meanwhile is sound), and each decoded entry is freed as its
    FileEntry takes its place: the peak never holds both, nor two dicts (80 bytes per
    entry). Otherwise the keys are checked one by one into a new dict.
    """
    values = entries.values()
    unset = countOf(map(_SIZE, values), UNSET) + countOf(map(_MTIME, values), UNSET)
    rows: Iterator[FileEntry]
    if unset:  # size or mtime_ns absent (imported manifests): FileEntry says None
        rows = (FileEntry(_given(f.size, None), f.digest, _given(f.mtime_ns, None)) for f in values)
    else:  # FileEntry(*fields) without a Python call per entry
        rows = itertools.starmap(FileEntry, map(_ENTRY_FIELDS, values))
    fields = 3 * len(entries) - unset
    if plain_keys:
        files = cast(dict[str, Any], entries)
        files.update(zip(entries, rows, strict=True))
        return files, fields
    plain = SAFE_PLAIN_PATH.fullmatch  # a key that is its own safe path: the common case
    return {
        k if plain(k) else _path("files", k): row for k, row in zip(entries, rows, strict=True)
    }, fields


def _plain_keys(keys: Iterable[str]) -> tuple[bool, int]:
    """(True only when every key is its own path and safe, the colons in all keys), checked
    a few thousand keys at a time, all at once within each chunk.

    Each chunk is joined with NUL, which no such key contains (the count of NULs proves it).
    No key may have a backslash. With every NUL turned into '/' and a '/' at both ends, each
    segment of every key lies between two slashes: no '//' means no empty key, no leading
    or trailing '/' and no empty segment; no '/./' or '/../' means no '.' or '..' segment;
    and no NUL followed by a letter and ':' means no drive form. Those are all of
    unsafe_reason's rules for a key without NUL or backslash, and such a key is its own
    path (path_for). In chunks, so the joined copies stay small (all keys at once held 70
    bytes per entry at the peak of a 1,000,000-entry load).
    """
    plain, colons = True, 0
    keys = iter(keys)
    while chunk := list(itertools.islice(keys, _CHUNK)):
        joined = "\0".join(chunk)
        colons += joined.count(":")
        if plain:
            plain = _plain_chunk(joined, len(chunk))
    return plain, colons


def _plain_chunk(joined: str, count: int) -> bool:
    if "\\" in joined or joined.count("\0") != count - 1:
        return False
    slashed = "/" + joined.replace("\0", "/") + "/"
    if "//" in slashed or "/./" in slashed or "/../" in slashed:
        return False
    return ":" not in joined or _DRIVE_KEY.search("\0" + joined) is None


_ENTRY_TYPES: dict[str, type[msgspec.Struct]] = {
    "files": _StrictFile,
    "symlinks": _Symlink,
    "skipped": _Skipped,
    "errors": _Error,
}


def _locate(data: bytes | memoryview) -> str | None:
    """Which entry is invalid: msgspec reports ``$.files[...]`` without the key.

    Only called once validation has failed, so its cost (a second, untyped parse) does not
    matter. Each entry is checked against the documented schema (a digest must match the
    regex), so the answer does not depend on which check found the problem first. Returns
    None when no single entry is to blame.
    """
    try:
        document = msgspec.json.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(document, dict):
        return None
    for section, entry_type in _ENTRY_TYPES.items():
        entries = document.get(section)
        if not isinstance(entries, dict):
            continue
        for key, value in entries.items():
            try:
                msgspec.convert(value, entry_type)
            except msgspec.ValidationError as exc:
                return f"{section}[{json.dumps(key)}]: {exc}"
    return None


def _path(section: str, key: str, *, windows: bool = True) -> str:
    """The path a key stands for, or ManifestError if it is unsafe or not canonical
    (``windows``: see :func:`hashpar.names.unsafe_reason`)."""
    try:
        path = path_for(key)
    except ValueError as exc:
        raise ManifestError(f"invalid manifest: {section}[{json.dumps(key)}]: {exc}") from None
    reason = unsafe_reason(path, windows=windows)
    if reason is not None:
        raise ManifestError(f"unsafe path in manifest: {section}[{json.dumps(key)}]: {reason}")
    return path


def _error_path(key: str, kind: ProblemKind) -> str:
    """An errors key: a path, or "." for a root that could not be listed (as make writes).

    Under kind ``unsafe-name`` a key may break the rules kept for Windows readers: that is
    where make lists the names it will not store as entries (``C:x``, ``..\\x``, ``\\x``),
    each one harmless component on Linux, so that a tree holding one still gives a manifest
    hashpar reads back. The other rules still hold, and nothing is ever opened at an errors
    path.
    """
    if key == ".":
        return key
    return _path("errors", key, windows=kind != ProblemKind.UNSAFE_NAME)


def _target(key: str, target: str) -> str:
    try:
        return path_for(target)
    except ValueError as exc:
        raise ManifestError(f"invalid manifest: symlinks[{json.dumps(key)}]: {exc}") from None


def _check_sections_disjoint(snapshot: Snapshot) -> None:
    """ManifestError if a path is in two sections; looks up only the keys of the later one,
    so the (usually much the largest) files section is never copied into a set."""
    sections: tuple[Mapping[str, object], ...] = (
        snapshot.files,
        snapshot.symlinks,
        snapshot.skipped,
        snapshot.errors,
    )
    for index, section in enumerate(sections[1:], start=1):
        earlier = sections[:index]
        clash = [path for path in section if any(path in other for other in earlier)]
        if clash:
            raise ManifestError(f"invalid manifest: {json.dumps(min(clash))} listed twice")


def _surely_no_duplicate_keys(
    data: bytes, doc: _Document, file_fields: int, file_key_colons: int
) -> bool:
    r"""True only if no object in ``data`` repeats a key; False means "check key by key".

    Exact by counting colons, for a document msgspec has decoded into ``doc``. Every key is
    followed by exactly one ':' outside strings (JSON has no other use for one), so the raw
    ``data.count(b":")`` is P + L: P the key/value pairs as written, L the colons inside all
    string tokens. Decoding keeps one pair per distinct key of each object, so P >= P', the
    pairs ``doc`` holds, with equality only when no object repeats a key: a repeated key's
    earlier pair (and everything nested in its value) is dropped. Every object in a decoded
    manifest is the top level, a section or an entry, all with known fields, and UNSET tells
    an absent optional field from a present one, so P' is counted exactly below. L >= L',
    the colons in the decoded strings counted below (one string per kept token), because a
    decoded string has the colons its token has, except that an escape ``\u003a`` or
    ``\u003A`` decodes to a colon that the raw bytes lack: when either occurs anywhere we
    return False. So P + L == P' + L' implies P == P': no duplicate key, at any level. (The
    converse holds whenever L' counts every string that can hold a colon, as here; it only
    decides whether the exact, slow check must run.)
    """
    # Every escape starts with a backslash: one memchr (0.2 ms for 16 MB) usually settles it;
    # a search for the escapes themselves costs 8 ms each.
    if b"\\" in data and (b"\\u003a" in data or b"\\u003A" in data):
        return False
    optional = (doc.generator, doc.created, doc.follow_symlinks, doc.excludes)
    symlinks = _given(doc.symlinks, {})
    skipped = _given(doc.skipped, {})
    errors = _given(doc.errors, {})
    sections = (doc.symlinks, doc.skipped, doc.errors)
    pairs = 4 + sum(value is not UNSET for value in (*optional, *sections))  # top level
    pairs += len(doc.files) + file_fields  # each key: {"digest", and "size", "mtime_ns" given}
    pairs += 2 * len(symlinks) + 2 * len(skipped) + 3 * len(errors)  # key: {1, 1 or 2 fields}
    strings = [
        doc.root,  # the other top-level strings are an enum value or optional
        *(value for value in optional[:2] if isinstance(value, str)),
        *_given(doc.excludes, []),
        *symlinks,
        *(link.target for link in symlinks.values()),
        *skipped,
        *errors,
        *(error.message for error in errors.values()),
    ]  # and the keys of files; digests are hex, kinds are enum values: no colon
    colons = "\0".join(strings).count(":") + file_key_colons
    return data.count(b":") == pairs + colons


def _reject_duplicate_keys(data: bytes) -> None:
    """Duplicate keys are ambiguous (JSON parsers keep either one): reject them.

    msgspec, like most parsers, silently keeps the last one, so the (already validated)
    document is parsed once more by the standard library with a hook that sees every
    object's key pairs and keeps nothing. Measured: 0.17 s per 100,000 entries; run only
    when :func:`_surely_no_duplicate_keys` cannot prove the answer.
    """

    def check(pairs: list[tuple[str, Any]]) -> None:
        if len(pairs) > 1 and len(dict(pairs)) != len(pairs):
            counts = Counter(key for key, _ in pairs)
            duplicate = next(key for key, count in counts.items() if count > 1)
            raise ManifestError(f"invalid manifest: duplicate key {json.dumps(duplicate)}")

    json.loads(data, object_pairs_hook=check)
