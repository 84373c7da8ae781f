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
    EntryTable,
    FormGate,
    NoChecksumLines,
    ParsedChecksums,
    ProblemCollector,
    clean_path,
    describe_digest_length,
    imported_manifest,
    name_list,
    numbered_lines,
    resolve_algorithm,
)
from hashpar.models import Algorithm, Manifest
from hashpar.names import display_name

__all__ = ["encode_bsd", "encode_sums", "parse_checksum_lines", "parse_checksums"]

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
    """:func:`parse_checksum_lines` on the ``\\n``-separated lines of ``data``."""
    lines = (line for _, line in numbered_lines(data))
    return parse_checksum_lines(lines, source=source, algorithm=algorithm, only=only, root=root)


def parse_checksum_lines(
    lines: Iterable[bytes],
    *,
    source: str,
    algorithm: Algorithm | None = None,
    only: ChecksumFormat | None = None,
    root: str = ".",
) -> ParsedChecksums:
    """Read a GNU or BSD checksum file (either line form, or a mix, unless ``only`` is given)
    from its lines (``\\n`` removed), one at a time: what is kept is the entries, the first
    :data:`~hashpar.formats.records.MAX_KEPT` problem lines and counts of the rest.

    ``source`` names the file in messages and, without ``algorithm``, may announce the
    algorithm (``SHA256SUMS``, ``x.b3``); BSD tags announce it too. UsageError when the
    algorithm cannot be told; NotAChecksumFile as soon as the input is plainly no checksum
    file (:class:`~hashpar.formats.records.FormGate`); NoChecksumLines when no line is usable.
    Every other problem is a MalformedLine; the valid lines become ``manifest.files`` (sizes
    unknown) under ``root``.
    """
    reader = _Reader(source, algorithm, only)
    number = 0
    for number, raw in enumerate(lines, start=1):
        if raw and not raw.startswith(b"#"):  # blank lines and comments are skipped
            reader.line(number, raw)
    return reader.finish(number, root)


class _Reader:
    """One checksum file's reading state. The algorithm is ``--algo``'s, else the BSD tags',
    else the file name's; until a tag or the end decides it, a GNU line ending in CR (which
    ``sha256sum -c`` drops and ``b3sum --check`` keeps) waits in ``pending``."""

    def __init__(self, source: str, given: Algorithm | None, only: ChecksumFormat | None) -> None:
        self.source, self.given, self.only = source, given, only
        self.gate = FormGate(source, only)
        self.problems = ProblemCollector()
        self.table = EntryTable(self.problems)
        self.formats: set[ChecksumFormat] = set()
        self.tagged: dict[Algorithm, int] = {}
        self.pending: list[tuple[int, bytes]] = []
        self.gnu_usable = False  # a GNU line usable whatever the algorithm: the name must say
        self.algorithm = given  # decided: given, or the first tag's

    def line(self, number: int, raw: bytes) -> None:
        bsd = _BSD_LINE.fullmatch(raw.removesuffix(b"\r"))
        if bsd is not None and bsd.group(2) in _TAG_ALGORITHMS:
            self._tag(_TAG_ALGORITHMS[bsd.group(2)], number)
        gnu = bsd is None and self.only is not ChecksumFormat.BSD
        algorithm = self.algorithm
        if algorithm is None and gnu and raw.endswith(b"\r"):
            as_sha = _parse_line(raw, None, Algorithm.SHA256, self.only)[1]
            if isinstance(as_sha, str) and isinstance(_parse_line(raw, None, None, None)[1], str):
                formed = _GNU_LINE.fullmatch(raw) is not None
                self.gate.see(number, raw, formed, as_sha)
                self.problems.add(number, as_sha)  # unusable either way: no need to wait
                return
            self.gate.see(number, raw, True)
            self.gnu_usable = True
            self.pending.append((number, raw))
            return
        kind, parsed = _parse_line(raw, bsd, algorithm, self.only)
        if isinstance(parsed, str):
            formed = _GNU_LINE.fullmatch(raw) is not None if gnu else bsd is not None
            self.gate.see(number, raw, formed and self.only is not _OTHER[kind], parsed)
            self.problems.add(number, parsed)
            return
        if not self.gate.formed:
            self.gate.see(number, raw, True)
        self.gnu_usable = self.gnu_usable or kind is ChecksumFormat.SUMS
        self._accept(number, kind, parsed)

    def _tag(self, algorithm: Algorithm, number: int) -> None:
        if algorithm in self.tagged:
            return
        self.tagged[algorithm] = number
        if self.given is None and len(self.tagged) > 1:
            (a, first), (b, second) = sorted(self.tagged.items(), key=lambda item: item[1])
            raise UsageError(
                f"{self.source}: mixes {a} (line {first}) and {b} (line {second}) digests: "
                "give --algo to check one of them"
            )
        if self.given is None:  # decided: the tags' algorithm
            self.algorithm = algorithm
            self._flush(algorithm)

    def _flush(self, algorithm: Algorithm) -> None:
        pending, self.pending = self.pending, []
        for number, raw in pending:
            kind, parsed = _parse_line(raw, None, algorithm, self.only)
            if isinstance(parsed, str):
                self.problems.add(number, parsed)
            else:
                self._accept(number, kind, parsed)

    def _accept(self, number: int, kind: ChecksumFormat, parsed: tuple[bytes, str]) -> None:
        name, digest = parsed
        path, reason = clean_path(os.fsdecode(name))
        if path is None:
            self.problems.add(number, f"{reason}: {_shown(name)}")
        elif self.table.add(number, path, digest):
            self.formats.add(kind)

    def finish(self, last: int, root: str) -> ParsedChecksums:
        self.gate.end(last)
        algorithm = self.algorithm
        if algorithm is None and self.gnu_usable:  # only asked then: MD5 sums get that message
            algorithm = resolve_algorithm(None, None, self.source)
        self._flush(algorithm or Algorithm.SHA256)  # without one, only the reasons count
        problems = self.problems.freeze()
        if not self.table.files or algorithm is None:
            raise NoChecksumLines(self.source, problems)
        manifest = imported_manifest(algorithm, root, self.table.files)
        return ParsedChecksums(manifest, problems, frozenset(self.formats))


_OTHER = {ChecksumFormat.SUMS: ChecksumFormat.BSD, ChecksumFormat.BSD: ChecksumFormat.SUMS}
"""The ``--format`` under which a line of this form is refused (it then has no form)."""


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
    if digits < _SHORTEST_DIGEST:  # "2", "deadbeef x": no digest, whatever follows
        return "not a checksum line: expected '<hex digest>  <path>' or 'ALGO (path) = hex'"
    if body[digits : digits + 2] not in (b"  ", b" *") and len(body) > digits:
        return "expected two spaces (or ' *') between the digest and the path"
    return "no path after the digest"


_SHORTEST_DIGEST = 32
"""Hex digits in the shortest digest worth naming (MD5): a shorter hex run is no digest."""


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
