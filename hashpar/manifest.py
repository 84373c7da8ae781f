"""Manifest v1: write it canonically, read it strictly (docs/manifest-format.md).

Writing is deterministic: fixed key order, entries sorted by key, one entry per line, so the
same tree gives the same bytes whatever ``--jobs`` is, and manifests diff well.

Reading treats the manifest as hostile input. Anything that does not fit the schema exactly is
a :class:`~hashpar.errors.ManifestError` naming the problem and the entry: not JSON, trailing
data, a BOM, wrong types (``true`` is not a size), out-of-range numbers, digests of the wrong
length or case, unknown fields or versions, duplicate keys, absurd nesting, invalid UTF-8,
every path that is absolute, non-canonical or could climb out of the root
(:mod:`hashpar.names`), and any entry below another entry (``link/x`` below the symlink
``link``: a walk never produces one). The one non-path key is ``"."`` in ``errors``: the root
itself could not be listed.

Reading a million-entry manifest takes about 9 s on the reference machine (docs/verify.md);
the fast paths below (a screen before ``unsafe_reason``, direct formatting of file entries
for the canonical re-encoding that proves there are no duplicate keys) are tested against
the generic code they stand in for.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Mapping
from io import BytesIO
from typing import Any, Protocol

import msgspec

from hashpar.errors import ManifestError
from hashpar.models import (
    Algorithm,
    FileEntry,
    Manifest,
    Problem,
    ProblemKind,
    Snapshot,
    SpecialKind,
)
from hashpar.names import BYTES_MARKER, key_for, path_for, unsafe_reason

__all__ = ["FORMAT_VERSION", "decode_manifest", "encode_manifest", "write_manifest"]

FORMAT_VERSION = 1
_MAX_INT = 2**63 - 1
_HEX = re.compile(r"[0-9a-f]*")
_CHUNK = 4096  # entries encoded per write, so memory stays flat for huge manifests


class _Sink(Protocol):
    def write(self, data: bytes, /) -> object: ...


# -- the schema, as msgspec types (gc=False: a million entries decode without GC pauses) -----


class _File(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    digest: str
    size: int | None = None
    mtime_ns: int | None = None


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
    generator: str = ""
    created: str = ""
    follow_symlinks: bool = False
    excludes: list[str] = []
    symlinks: dict[str, _Symlink] = {}
    skipped: dict[str, _Skipped] = {}
    errors: dict[str, _Error] = {}


_DECODER = msgspec.json.Decoder(_Document)


# -- writing ----------------------------------------------------------------------------------


def write_manifest(manifest: Manifest, stream: _Sink) -> None:
    """Write ``manifest`` to a binary stream in canonical form, a few thousand entries a time."""
    enc = msgspec.json.encode
    head = {
        "version": FORMAT_VERSION,
        "generator": manifest.generator,
        "algorithm": str(manifest.algorithm),
        "root": manifest.root,
        "created": manifest.created,
        "follow_symlinks": manifest.follow_symlinks,
        "excludes": list(manifest.excludes),
    }
    stream.write(
        b"{\n" + b"".join(b'  "%s": %s,\n' % (k.encode(), enc(v)) for k, v in head.items())
    )
    snap = manifest.snapshot
    sections: list[tuple[bytes, Mapping[str, Any]]] = [
        (b"files", {k: _file_json(v) for k, v in snap.files.items()}),
        (b"symlinks", {k: {"target": key_for(t)} for k, t in snap.symlinks.items()}),
        (b"skipped", {k: {"kind": str(v)} for k, v in snap.skipped.items()}),
        (
            b"errors",
            {k: {"kind": str(v.kind), "message": v.message} for k, v in snap.errors.items()},
        ),
    ]
    for number, (name, entries) in enumerate(sections):
        closing = b"\n  }" + (b",\n" if number < len(sections) - 1 else b"\n}\n")
        _write_section(stream, name, entries, closing)


def _file_json(entry: FileEntry) -> bytes:
    """A file entry's JSON, formatted directly in the common case: a million entries are
    written (and, to prove a manifest canonical, re-encoded) in about a second."""
    if type(entry.size) is int and type(entry.mtime_ns) is int:
        return b'{"size": %d, "mtime_ns": %d, "digest": %s}' % (
            entry.size,
            entry.mtime_ns,
            msgspec.json.encode(entry.digest),
        )
    return _entry_json(_file_value(entry))


def _file_value(entry: FileEntry) -> dict[str, Any]:
    value: dict[str, Any] = {}
    if entry.size is not None:
        value["size"] = entry.size
    if entry.mtime_ns is not None:
        value["mtime_ns"] = entry.mtime_ns
    value["digest"] = entry.digest
    return value


def _write_section(stream: _Sink, name: bytes, entries: Mapping[str, Any], closing: bytes) -> None:
    if not entries:
        stream.write(b'  "%s": {}%s' % (name, closing[4:]))
        return
    stream.write(b'  "%s": {\n' % name)
    enc = msgspec.json.encode
    items = sorted((key_for(path), value) for path, value in entries.items())
    for start in range(0, len(items), _CHUNK):
        chunk = items[start : start + _CHUNK]
        lines = (
            b"    " + enc(key) + b": " + (value if type(value) is bytes else _entry_json(value))
            for key, value in chunk
        )
        stream.write((b"" if start == 0 else b",\n") + b",\n".join(lines))
    stream.write(closing)


def _entry_json(value: Mapping[str, Any]) -> bytes:
    """``{"a": 1, "b": "x"}``: msgspec's escaping, with a space after each separator."""
    enc = msgspec.json.encode
    return b"{" + b", ".join(enc(k) + b": " + enc(v) for k, v in value.items()) + b"}"


def encode_manifest(manifest: Manifest) -> bytes:
    """The canonical bytes of ``manifest`` (see :func:`write_manifest`)."""
    buffer = BytesIO()
    write_manifest(manifest, buffer)
    return buffer.getvalue()


# -- reading ----------------------------------------------------------------------------------


def decode_manifest(data: bytes) -> Manifest:
    """Parse and validate manifest bytes; ManifestError names the first problem found."""
    try:
        doc = _DECODER.decode(data)
    except msgspec.ValidationError as exc:
        raise ManifestError(f"invalid manifest: {exc}") from None
    except msgspec.DecodeError as exc:
        raise ManifestError(f"not a valid JSON manifest: {exc}") from None
    except UnicodeDecodeError as exc:  # msgspec raises this for invalid UTF-8 in a string
        raise ManifestError(f"not a valid JSON manifest: not UTF-8 (byte {exc.start})") from None
    except RecursionError:
        raise ManifestError("not a valid JSON manifest: nested too deeply") from None
    if doc.version != FORMAT_VERSION:
        raise ManifestError(f"unsupported manifest version {doc.version} (this hashpar reads 1)")
    if not doc.root or "\0" in doc.root:
        raise ManifestError("invalid manifest: 'root' must be a non-empty path without NUL")
    manifest = Manifest(
        algorithm=doc.algorithm,
        root=doc.root,
        created=doc.created,
        generator=doc.generator,
        excludes=tuple(doc.excludes),
        follow_symlinks=doc.follow_symlinks,
        snapshot=Snapshot(
            files={_path("files", k): _checked_file(k, v) for k, v in doc.files.items()},
            symlinks={_path("symlinks", k): _target(k, v.target) for k, v in doc.symlinks.items()},
            skipped={_path("skipped", k): v.kind for k, v in doc.skipped.items()},
            errors={_error_path(k): Problem(v.kind, v.message) for k, v in doc.errors.items()},
        ),
    )
    _check_sections_disjoint(manifest.snapshot)
    _check_nothing_below_leaves(manifest.snapshot)
    _reject_duplicate_keys(data, manifest)
    return manifest


def _path(section: str, key: str) -> str:
    """The path a key stands for, or ManifestError if it is unsafe or not canonical."""
    try:
        path = key if key[:1] != BYTES_MARKER else path_for(key)
    except ValueError as exc:
        raise ManifestError(f"invalid manifest: {_where(section, key)}: {exc}") from None
    if _maybe_unsafe(path):
        reason = unsafe_reason(path)
        if reason is not None:
            raise ManifestError(f"unsafe path in manifest: {_where(section, key)}: {reason}")
    return path


def _maybe_unsafe(path: str) -> bool:
    """True for every path :func:`unsafe_reason` could reject (and a few more, such as
    dot files): a screen made of C-speed tests, as unsafe_reason is slow for a million."""
    return (
        not path
        or path[0] in "/\\."
        or path[-1] == "/"
        or path[1:2] == ":"
        or "//" in path
        or "/." in path
        or "\\." in path
        or "\0" in path
    )


def _where(section: str, key: str) -> str:
    return f"{section}[{json.dumps(key)}]"


def _error_path(key: str) -> str:
    """An errors key: a path, or "." for a root that could not be listed (as make writes)."""
    return key if key == "." else _path("errors", key)


def _checked_file(key: str, value: _File) -> FileEntry:
    problem = None
    if len(value.digest) != 64 or not _HEX.fullmatch(value.digest):
        problem = "digest must be 64 lowercase hex digits"
    elif value.size is not None and not 0 <= value.size <= _MAX_INT:
        problem = "size out of range"
    elif value.mtime_ns is not None and not -_MAX_INT <= value.mtime_ns <= _MAX_INT:
        problem = "mtime_ns out of range"
    if problem is not None:
        raise ManifestError(f"invalid manifest: {_where('files', key)}: {problem}")
    return FileEntry(value.size, value.digest, value.mtime_ns)


def _target(key: str, target: str) -> str:
    try:
        return path_for(target)
    except ValueError as exc:
        raise ManifestError(f"invalid manifest: symlinks[{json.dumps(key)}]: {exc}") from None


def _check_sections_disjoint(snapshot: Snapshot) -> None:
    seen: set[str] = set()
    sections: Iterable[Mapping[str, object]] = (
        snapshot.files,
        snapshot.symlinks,
        snapshot.skipped,
        snapshot.errors,
    )
    for section in sections:
        clash = seen.intersection(section)
        if clash:
            raise ManifestError(f"invalid manifest: {json.dumps(min(clash))} listed twice")
        seen.update(section)


def _check_nothing_below_leaves(snapshot: Snapshot) -> None:
    """No entry may lie below a file, symlink or skipped entry (``link/x`` below ``link``).

    A walk never produces one, and a manifest that claims ``link/etc/passwd`` below a symlink
    ``link`` is an attempt to make a checker look through the link: rejected outright.
    """
    sections: dict[str, Mapping[str, object]] = {
        "files": snapshot.files,
        "symlinks": snapshot.symlinks,
        "skipped": snapshot.skipped,
        "errors": snapshot.errors,
    }
    parents: set[str] = set()
    for entries in sections.values():
        for path in entries:
            while "/" in path:
                path = path.rpartition("/")[0]
                if path in parents:
                    break
                parents.add(path)
    nouns = {"files": "the file", "symlinks": "the symlink", "skipped": "the skipped entry"}
    for kind, noun in nouns.items():
        leaves = sections[kind]
        clash = parents.intersection(leaves)
        if not clash:
            continue
        leaf = min(clash)
        section, path = min(
            (name, path)
            for name, entries in sections.items()
            for path in entries
            if path.startswith(leaf + "/")
        )
        raise ManifestError(
            f"unsafe path in manifest: {section}[{json.dumps(key_for(path))}]: lies below "
            f"{noun} {json.dumps(key_for(leaf))}"
        )


def _reject_duplicate_keys(data: bytes, manifest: Manifest) -> None:
    """Duplicate keys are ambiguous (JSON parsers keep either one): reject them.

    A manifest in hashpar's own canonical form cannot hold a duplicate, and re-encoding
    proves it cheaply; any other layout gets a full parse that sees every key pair.
    """
    sink = _Comparer(data)
    write_manifest(manifest, sink)
    if sink.equal and sink.position == len(data):
        return

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result = dict(items)
        if len(result) != len(items):
            counts = Counter(key for key, _ in items)
            duplicate = next(key for key, count in counts.items() if count > 1)
            raise ManifestError(f"invalid manifest: duplicate key {json.dumps(duplicate)}")
        return result

    json.loads(data, object_pairs_hook=pairs)


class _Comparer:
    """A write-only stream that checks what is written against ``expected``, byte for byte."""

    def __init__(self, expected: bytes) -> None:
        self.expected = memoryview(expected)
        self.position = 0
        self.equal = True

    def write(self, data: bytes) -> int:
        end = self.position + len(data)
        if self.equal and self.expected[self.position : end] != data:
            self.equal = False
        self.position = end
        return len(data)
