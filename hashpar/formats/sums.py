"""GNU sums (``sha256sum``, ``b3sum``) and BSD tagged lines, written and read exactly as those
tools do (docs/formats.md has the rules and the reasons). Pure: bytes in, bytes out.

Writing reproduces the tools' own output byte for byte:

* SHA-256 ``sums`` is ``sha256sum``'s (coreutils 9): a name holding a backslash, newline or
  carriage return is written with ``\\\\``, ``\\n``, ``\\r`` and the line starts with ``\\``;
  any other byte, valid UTF-8 or not, is written as it is.
* BLAKE3 ``sums`` is ``b3sum``'s: only backslash and newline are escaped (``b3sum --check``
  refuses ``\\r``, so a carriage return stays literal) and the file must be UTF-8, so a name
  that is not valid UTF-8, or holds U+FFFD (which ``b3sum --check`` refuses), is an error.
* ``bsd`` is ``sha256sum --tag``'s, for both algorithms (tags ``SHA256`` and ``BLAKE3``).

Reading accepts what the tools write plus what ``sha256sum -c`` accepts of other writers:
upper-case hex, the ``*`` binary-mode marker, ``#`` comments, blank lines, ``./`` prefixes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from hashpar.errors import ManifestError, UsageError
from hashpar.formats.records import (
    ChecksumFormat,
    MalformedLine,
    NoChecksumLines,
    ParsedChecksums,
    clean_path,
    describe_digest_length,
    imported_manifest,
    name_list,
    numbered_lines,
    resolve_algorithm,
)
from hashpar.models import Algorithm, FileEntry, Manifest
from hashpar.names import display_name

__all__ = ["encode_bsd", "encode_sums", "parse_checksums"]

_TAGS = {Algorithm.SHA256: b"SHA256", Algorithm.BLAKE3: b"BLAKE3"}
_TAG_ALGORITHMS = {tag: algorithm for algorithm, tag in _TAGS.items()}
_GNU_ESCAPES = {b"\\": b"\\\\", b"\n": b"\\n", b"\r": b"\\r"}
_B3_ESCAPES = {b"\\": b"\\\\", b"\n": b"\\n"}
_UNESCAPES = {ord("\\"): b"\\", ord("n"): b"\n", ord("r"): b"\r"}
_BSD_LINE = re.compile(rb"(\\?)([A-Za-z0-9][A-Za-z0-9_-]*) \((.*)\) = ([0-9A-Fa-f]+)", re.S)
_GNU_LINE = re.compile(rb"(\\?)([0-9A-Fa-f]+)(?:  | \*)(.+)", re.S)


# -- writing ----------------------------------------------------------------------------------


def encode_sums(manifest: Manifest) -> bytes:
    """``<hex>  <path>`` lines, as ``sha256sum`` (SHA-256) or ``b3sum`` (BLAKE3) print them.

    Files only, sorted by the bytes of their path. ManifestError if a BLAKE3 manifest holds a
    name ``b3sum --check`` cannot read back (not valid UTF-8, or containing U+FFFD).
    """
    if manifest.algorithm is Algorithm.BLAKE3:
        _require_b3sum_names(manifest.files)
        escapes = _B3_ESCAPES
    else:
        escapes = _GNU_ESCAPES
    lines = []
    for name, digest in _sorted_names(manifest):
        escaped, prefix = _escape(name, escapes)
        lines.append(prefix + digest + b"  " + escaped + b"\n")
    return b"".join(lines)


def encode_bsd(manifest: Manifest) -> bytes:
    """``SHA256 (<path>) = <hex>`` / ``BLAKE3 (...)`` lines, as ``sha256sum --tag`` prints them."""
    tag = _TAGS[manifest.algorithm]
    lines = []
    for name, digest in _sorted_names(manifest):
        escaped, prefix = _escape(name, _GNU_ESCAPES)
        lines.append(prefix + tag + b" (" + escaped + b") = " + digest + b"\n")
    return b"".join(lines)


def _sorted_names(manifest: Manifest) -> list[tuple[bytes, bytes]]:
    entries = ((os.fsencode(path), entry.digest.encode()) for path, entry in manifest.files.items())
    return sorted(entries)


def _escape(name: bytes, escapes: dict[bytes, bytes]) -> tuple[bytes, bytes]:
    """The name with the given characters escaped, and the line prefix (``\\`` if any were)."""
    if not any(char in name for char in escapes):
        return name, b""
    for char, replacement in escapes.items():  # backslash first: it is the escape character
        name = name.replace(char, replacement)
    return name, b"\\"


def _require_b3sum_names(files: Iterable[str]) -> None:
    bad = []
    for path in files:
        try:
            text = path.encode("utf-8").decode("utf-8")
        except UnicodeEncodeError:
            bad.append(path)
            continue
        if "\ufffd" in text:
            bad.append(path)
    if bad:
        raise ManifestError(
            f"{len(bad)} name(s) cannot be written for b3sum, whose check files are UTF-8 "
            f"and refuse U+FFFD: {name_list(bad)} (use --format bsd, or rename them)"
        )


# -- reading ----------------------------------------------------------------------------------


def parse_checksums(
    data: bytes,
    *,
    source: str,
    algorithm: Algorithm | None = None,
    only: ChecksumFormat | None = None,
    root: str = ".",
) -> ParsedChecksums:
    """Read a GNU or BSD checksum file (either line form, or a mix, unless ``only`` is given).

    ``source`` names the file in messages and, without ``algorithm``, may announce the
    algorithm (``SHA256SUMS``, ``x.b3``); BSD tags announce it too. UsageError when the
    algorithm cannot be told; NoChecksumLines when no line is usable. Every other problem is
    a MalformedLine; the valid lines become ``manifest.files`` (sizes unknown) under ``root``.
    """
    lines = [
        (number, raw, _BSD_LINE.fullmatch(raw.removesuffix(b"\r")))
        for number, raw in numbered_lines(data)
        if raw and not raw.startswith(b"#")  # blank lines and comments are skipped
    ]
    algo = _algorithm(lines, algorithm, source)
    malformed: list[MalformedLine] = []
    files: dict[str, FileEntry] = {}
    first_line: dict[str, int] = {}
    seen: set[ChecksumFormat] = set()
    for number, raw, bsd in lines:
        kind, parsed = _parse_line(raw, bsd, algo, only)
        if isinstance(parsed, str):
            malformed.append(MalformedLine(number, parsed))
            continue
        path, reason = clean_path(os.fsdecode(parsed[0]))
        if path is None:
            malformed.append(MalformedLine(number, f"{reason}: {_shown(parsed[0])}"))
        elif path in first_line:
            malformed.append(MalformedLine(number, _duplicate(path, first_line[path])))
        else:
            first_line[path] = number
            files[path] = FileEntry(size=None, digest=parsed[1], mtime_ns=None)
            seen.add(kind)
    if not files or algo is None:
        raise NoChecksumLines(source, tuple(malformed))
    return ParsedChecksums(imported_manifest(algo, root, files), tuple(malformed), frozenset(seen))


_Line = tuple[int, bytes, "re.Match[bytes] | None"]


def _algorithm(lines: list[_Line], given: Algorithm | None, source: str) -> Algorithm | None:
    """Given, else the BSD tags' one, else the file name's (only asked when a GNU line is
    usable: a file of MD5 sums deserves that message, not a question about --algo).
    """
    tagged: dict[Algorithm, int] = {}
    for number, _, bsd in lines:
        if bsd is not None and bsd.group(2) in _TAG_ALGORITHMS:
            tagged.setdefault(_TAG_ALGORITHMS[bsd.group(2)], number)
    if given is None and len(tagged) > 1:
        (a, first), (b, second) = sorted(tagged.items(), key=lambda item: item[1])[:2]
        raise UsageError(
            f"{source}: mixes {a} (line {first}) and {b} (line {second}) digests: "
            "give --algo to check one of them"
        )
    algorithm = given or next(iter(tagged), None)
    if algorithm is None and any(isinstance(_parse_gnu(raw), tuple) for _, raw, _ in lines):
        algorithm = resolve_algorithm(None, None, source)
    return algorithm


def _parse_line(
    raw: bytes,
    bsd: re.Match[bytes] | None,
    algorithm: Algorithm | None,
    only: ChecksumFormat | None,
) -> tuple[ChecksumFormat, tuple[bytes, str] | str]:
    """``(format, (name bytes, lowercase hex))`` for a usable line, or ``(format, reason)``."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return ChecksumFormat.SUMS, "starts with a UTF-8 byte-order mark"
    if bsd is not None:
        if only is ChecksumFormat.SUMS:
            return ChecksumFormat.BSD, "a BSD-tagged line, but --format sums was given"
        return ChecksumFormat.BSD, _parse_bsd(bsd, algorithm)
    if only is ChecksumFormat.BSD:
        return ChecksumFormat.SUMS, "not a BSD-tagged line 'ALGO (path) = hex'"
    if algorithm is Algorithm.SHA256:  # sha256sum -c drops a DOS line ending; b3sum does not
        raw = raw.removesuffix(b"\r")
    return ChecksumFormat.SUMS, _parse_gnu(raw)


def _parse_bsd(match: re.Match[bytes], algorithm: Algorithm | None) -> tuple[bytes, str] | str:
    escaped, tag, name, digest = match.groups()
    tagged = _TAG_ALGORITHMS.get(tag)
    if tagged is None:
        return f"unsupported algorithm tag {tag.decode('ascii')!r} (SHA256 and BLAKE3 are)"
    if tagged is not algorithm:
        return f"a {tag.decode('ascii')} line in a {algorithm} check"
    return _finish(name, digest, bool(escaped))


def _parse_gnu(raw: bytes) -> tuple[bytes, str] | str:
    match = _GNU_LINE.fullmatch(raw)
    if match is not None:
        escaped, digest, name = match.groups()
        return _finish(name, digest, bool(escaped))
    body = raw.removeprefix(b"\\")
    digits = len(body) - len(body.lstrip(b"0123456789abcdefABCDEF"))
    if digits == 0:
        return "not a checksum line: expected '<hex digest>  <path>' or 'ALGO (path) = hex'"
    if body[digits : digits + 2] not in (b"  ", b" *"):
        return "expected two spaces (or ' *') between the digest and the path"
    return "no path after the digest"


def _finish(name: bytes, digest: bytes, escaped: bool) -> tuple[bytes, str] | str:
    if len(digest) != 64:
        return describe_digest_length(len(digest))
    if escaped:
        unescaped = _unescape(name)
        if unescaped is None:
            return "invalid escape in path (only \\\\, \\n and \\r are defined)"
        name = unescaped
    return name, digest.decode("ascii").lower()


def _unescape(name: bytes) -> bytes | None:
    out = bytearray()
    pos = 0
    while (found := name.find(b"\\", pos)) != -1:
        out += name[pos:found]
        replacement = _UNESCAPES.get(name[found + 1]) if found + 1 < len(name) else None
        if replacement is None:
            return None
        out += replacement
        pos = found + 2
    return bytes(out + name[pos:])


def _shown(name: bytes) -> str:
    return display_name(os.fsdecode(name))


def _duplicate(path: str, first: int) -> str:
    return f"{display_name(path)} is listed again (first on line {first})"
