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

import itertools
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from io import BytesIO
from typing import Annotated, Any, Protocol, TypeVar

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
from hashpar.names import SAFE_PLAIN_PATH, key_for, path_for, unsafe_reason

__all__ = ["FORMAT_VERSION", "decode_manifest", "encode_manifest", "write_manifest"]

FORMAT_VERSION = 1
_MAX_INT = 2**63 - 1
_CHUNK = 4096  # entries encoded per write, so memory stays flat for huge manifests
_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f"\\]')  # exactly what msgspec escapes in a string
_V = TypeVar("_V")


class _Sink(Protocol):
    def write(self, data: bytes, /) -> object: ...


# -- the schema, as msgspec types (gc=False: a million entries decode without GC pauses) -----


_Digest = Annotated[str, msgspec.Meta(pattern="^[0-9a-f]{64}$")]
_Size = Annotated[int, msgspec.Meta(ge=0, le=_MAX_INT)]
_Time = Annotated[int, msgspec.Meta(ge=-_MAX_INT, le=_MAX_INT)]


class _File(msgspec.Struct, forbid_unknown_fields=True, gc=False):
    digest: _Digest
    size: _Size | None = None
    mtime_ns: _Time | None = None


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
    head = {
        "version": FORMAT_VERSION,
        "generator": manifest.generator,
        "algorithm": str(manifest.algorithm),
        "root": manifest.root,
        "created": manifest.created,
        "follow_symlinks": manifest.follow_symlinks,
        "excludes": list(manifest.excludes),
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
    return f'{{"kind": "{problem.kind}", "message": {_string(problem.message)}}}'


def _write_section(
    stream: _Sink, name: str, entries: Mapping[str, _V], render: Callable[[_V], str], last: bool
) -> None:
    """Write one section, one entry per line, sorted by key."""
    closing = "\n  }\n}\n" if last else "\n  },\n"
    if not entries:
        stream.write(f'  "{name}": {{}}{closing[4:]}'.encode())
        return
    stream.write(f'  "{name}": {{\n'.encode())
    separator = b""
    items = _in_key_order(entries)
    while chunk := list(itertools.islice(items, _CHUNK)):
        lines = ",\n".join([f"    {_string(key)}: {render(value)}" for key, value in chunk])
        stream.write(separator + lines.encode())
        separator = b",\n"
    stream.write(closing.encode())


def _in_key_order(entries: Mapping[str, _V]) -> Iterator[tuple[str, _V]]:
    """(key, value) in sorted key order, without copying a mapping that is already sorted.

    A Snapshot iterates in path order, and keys equal paths except for names that are not
    valid UTF-8, whose keys start with NUL and so sort before every other key. So: those few
    first, then the rest as they come, unless a path turns out of order (then sort them all).
    """
    marked: list[tuple[str, _V]] = []
    previous = ""
    in_order = True
    for path, value in entries.items():
        in_order = in_order and previous <= path
        previous = path
        key = key_for(path)
        if key is not path:
            marked.append((key, value))
    if not in_order:
        yield from sorted((key_for(path), value) for path, value in entries.items())
        return
    yield from sorted(marked)
    for path, value in entries.items():
        if key_for(path) is path:
            yield path, value


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
        raise ManifestError(f"invalid manifest: {_locate(data) or exc}") from None
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
    plain = SAFE_PLAIN_PATH.fullmatch  # a key that is its own safe path: the common case
    manifest = Manifest(
        algorithm=doc.algorithm,
        root=doc.root,
        created=doc.created,
        generator=doc.generator,
        excludes=tuple(doc.excludes),
        follow_symlinks=doc.follow_symlinks,
        snapshot=Snapshot(
            files={
                k if plain(k) else _path("files", k): FileEntry(v.size, v.digest, v.mtime_ns)
                for k, v in doc.files.items()
            },
            symlinks={_path("symlinks", k): _target(k, v.target) for k, v in doc.symlinks.items()},
            skipped={_path("skipped", k): v.kind for k, v in doc.skipped.items()},
            errors={_error_path(k): Problem(v.kind, v.message) for k, v in doc.errors.items()},
        ),
    )
    _check_sections_disjoint(manifest.snapshot)
    _reject_duplicate_keys(data)
    return manifest


_ENTRY_TYPES: dict[str, type[msgspec.Struct]] = {
    "files": _File,
    "symlinks": _Symlink,
    "skipped": _Skipped,
    "errors": _Error,
}


def _locate(data: bytes) -> str | None:
    """Which entry is invalid: msgspec reports ``$.files[...]`` without the key.

    Only called once validation has failed, so its cost (a second, untyped parse) does not
    matter. Returns None when no single entry is to blame.
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


def _path(section: str, key: str) -> str:
    """The path a key stands for, or ManifestError if it is unsafe or not canonical."""
    try:
        path = path_for(key)
    except ValueError as exc:
        raise ManifestError(f"invalid manifest: {section}[{json.dumps(key)}]: {exc}") from None
    reason = unsafe_reason(path)
    if reason is not None:
        raise ManifestError(f"unsafe path in manifest: {section}[{json.dumps(key)}]: {reason}")
    return path


def _error_path(key: str) -> str:
    """An errors key: a path, or "." for a root that could not be listed (as make writes)."""
    return key if key == "." else _path("errors", key)


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


def _reject_duplicate_keys(data: bytes) -> None:
    """Duplicate keys are ambiguous (JSON parsers keep either one): reject them.

    msgspec, like most parsers, silently keeps the last one, so the (already validated)
    document is parsed once more by the standard library with a hook that sees every
    object's key pairs and keeps nothing. Measured: 0.17 s per 100,000 entries, about half
    the cost of proving canonical form by re-encoding.
    """

    def check(pairs: list[tuple[str, Any]]) -> None:
        if len(pairs) > 1 and len(dict(pairs)) != len(pairs):
            counts = Counter(key for key, _ in pairs)
            duplicate = next(key for key, count in counts.items() if count > 1)
            raise ManifestError(f"invalid manifest: duplicate key {json.dumps(duplicate)}")

    json.loads(data, object_pairs_hook=check)
