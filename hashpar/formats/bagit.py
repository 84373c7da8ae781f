"""BagIt (RFC 8493): the payload manifest, the tag files, and reading them back. Pure.

A payload manifest line is ``<hex>  data/<path>``. The RFC requires CR, LF and ``%`` in a
path to be percent-encoded (``%0D``, ``%0A``, ``%25``) so that every line is one entry;
hashpar writes exactly that (bagit-python 1.9 encodes CR and LF but not ``%``, its issue #157,
and decodes at most two of each). The manifest is UTF-8 text, so a name that is not valid
UTF-8 cannot be expressed: that is an error, never a line naming some other file. BagIt's
algorithms are MD5, SHA-1, SHA-256 and SHA-512: a BLAKE3 manifest cannot become a bag.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from datetime import date

from hashpar.errors import ManifestError
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
)
from hashpar.models import Algorithm, Manifest
from hashpar.names import display_name

__all__ = [
    "BAGIT_TXT",
    "PAYLOAD_MANIFEST",
    "TAG_MANIFEST",
    "bag_info",
    "check_bagit_txt",
    "decode_path",
    "encode_bagit",
    "encode_path",
    "parse_bagit",
    "parse_bagit_lines",
    "tag_manifest",
]

PAYLOAD_MANIFEST = "manifest-sha256.txt"
TAG_MANIFEST = "tagmanifest-sha256.txt"
BAGIT_TXT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
"""The bag declaration hashpar writes: BagIt 1.0, tag files in UTF-8."""

_ENCODE = {"%": "%25", "\n": "%0A", "\r": "%0D"}
_DECODE = re.compile(r"%(25|0[AaDd])")
_DECODED = {"25": "%", "0a": "\n", "0d": "\r"}
_LINE = re.compile(r"([0-9A-Fa-f]+)[ \t]+(.*)", re.S)
_OURS = ("bag-software-agent", "bagging-date", "payload-oxum")


def encode_path(path: str) -> str:
    """A payload path as a manifest writes it: ``data/`` + path, CR, LF and ``%`` encoded."""
    return "data/" + "".join(_ENCODE.get(char, char) for char in path)


def decode_path(text: str) -> str:
    """The inverse of :func:`encode_path` (without the ``data/``): ``%25 %0A %0D``, any case.

    Any other ``%`` is kept as it is: a writer following the RFC never leaves one, and
    bagit-python's bags (which do) mean the literal character.
    """
    return _DECODE.sub(lambda m: _DECODED[m.group(1).lower()], text)


def encode_bagit(manifest: Manifest) -> bytes:
    """The payload manifest (``manifest-sha256.txt``) for a SHA-256 manifest of ``data/``.

    ManifestError for a BLAKE3 manifest, or for names that are not valid UTF-8.
    """
    if manifest.algorithm is not Algorithm.SHA256:
        raise ManifestError(
            f"BagIt has no {manifest.algorithm} manifests (RFC 8493 knows MD5, SHA-1, SHA-256 "
            "and SHA-512): make the manifest with --algo sha256 to export a bag"
        )
    lines: list[bytes] = []
    bad: list[str] = []
    for path, entry in manifest.files.items():
        try:
            encoded = encode_path(path).encode("utf-8")
        except UnicodeEncodeError:
            bad.append(path)
            continue
        lines.append(entry.digest.encode() + b"  " + encoded + b"\n")
    if bad:
        raise ManifestError(
            f"{len(bad)} name(s) are not valid UTF-8 and cannot be written in a BagIt "
            f"manifest: {name_list(bad)}"
        )
    lines.sort(key=lambda line: line[66:])  # by path: after the digest and two spaces
    return b"".join(lines)


def parse_bagit(data: bytes, *, source: str, root: str) -> ParsedChecksums:
    """:func:`parse_bagit_lines` on the ``\\n``-separated lines of ``data``."""
    return parse_bagit_lines((line for _, line in numbered_lines(data)), source=source, root=root)


def parse_bagit_lines(lines: Iterable[bytes], *, source: str, root: str) -> ParsedChecksums:
    """Read a SHA-256 payload manifest from its ``\\n``-separated lines, one at a time; paths
    lose their ``data/`` and resolve under ``root``.

    Lines end with LF, CR or CRLF (RFC 8493 section 2.1.3); blank lines and ``#`` comments
    are skipped as bagit-python does. NotAChecksumFile as soon as the input is plainly no
    manifest (:class:`~hashpar.formats.records.FormGate`); NoChecksumLines when no line is
    usable.
    """
    gate = FormGate(source)
    problems = ProblemCollector()
    table = EntryTable(problems)
    number = 0
    for piece in lines:
        for raw in piece.splitlines() or [b""]:  # CR and CRLF end lines too
            number += 1
            if raw.strip() == b"" or raw.startswith(b"#"):
                continue
            formed, parsed = _parse_line(raw)
            if isinstance(parsed, str):
                gate.see(number, raw, formed, parsed)
                problems.add(number, parsed)
            else:
                gate.see(number, raw, True)
                table.add(number, *parsed)
    gate.end(number)
    if not table.files:
        raise NoChecksumLines(source, problems.freeze())
    manifest = imported_manifest(Algorithm.SHA256, root, table.files)
    return ParsedChecksums(manifest, problems.freeze(), frozenset({ChecksumFormat.BAGIT}))


def _parse_line(raw: bytes) -> tuple[bool, tuple[str, str] | str]:
    """``(has a manifest line's form, (path, hex) or the reason it cannot be used)``."""
    if raw.startswith(b"\xef\xbb\xbf"):
        return False, "starts with a UTF-8 byte-order mark (RFC 8493 forbids it)"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return False, "not valid UTF-8 (BagIt manifests are UTF-8)"
    match = _LINE.fullmatch(text)
    if match is None:
        return False, "not a manifest line: expected '<hex digest>  data/<path>'"
    digest, filepath = match.groups()
    if len(digest) != 64:
        return True, describe_digest_length(len(digest))
    if not filepath.startswith("data/"):
        return True, f"not a payload path (outside data/): {display_name(filepath)}"
    path, reason = clean_path(decode_path(filepath[5:]))
    if path is None:
        return True, f"{reason}: {display_name(filepath)}"
    return True, (path, digest.lower())


def check_bagit_txt(data: bytes, source: str) -> None:
    """ManifestError unless ``bagit.txt`` declares a BagIt version and UTF-8 tag files."""
    fields = _fields(data, source)
    names = {label.lower(): value for label, value, _ in fields}
    if "bagit-version" not in names:
        raise ManifestError(f"{source}: no BagIt-Version: not a bag declaration")
    encoding = names.get("tag-file-character-encoding", "").strip().lower()
    if encoding not in ("utf-8", "utf8"):
        raise ManifestError(
            f"{source}: Tag-File-Character-Encoding is {encoding or 'missing'!r}; "
            "hashpar reads UTF-8 bags only"
        )


def bag_info(manifest: Manifest, existing: bytes | None, today: date, agent: str) -> bytes:
    """``bag-info.txt``: Payload-Oxum, Bagging-Date and Bag-Software-Agent, keeping any other
    fields of ``existing`` as they were. ManifestError if a file's size is unknown.
    """
    sizes = [entry.size for entry in manifest.files.values()]
    if any(size is None for size in sizes):
        raise ManifestError(
            "Payload-Oxum needs every file's size, and this manifest (imported without its "
            "tree) lacks some: make the manifest of BAGDIR/data with hashpar make"
        )
    octets = sum(size for size in sizes if size is not None)
    kept = b""
    if existing is not None:
        fields = _fields(existing, "bag-info.txt")
        kept = b"".join(raw for label, _, raw in fields if label.lower() not in _OURS)
    ours = (
        f"Bag-Software-Agent: {agent}\n"
        f"Bagging-Date: {today.isoformat()}\n"
        f"Payload-Oxum: {octets}.{len(sizes)}\n"
    )
    return kept + ours.encode("utf-8")


def tag_manifest(tag_files: Mapping[str, bytes]) -> bytes:
    """``tagmanifest-sha256.txt`` listing the given tag files (name -> content)."""
    lines = (f"{hashlib.sha256(data).hexdigest()}  {name}\n" for name, data in tag_files.items())
    return "".join(sorted(lines, key=lambda line: line[66:])).encode("utf-8")


def _fields(data: bytes, source: str) -> list[tuple[str, str, bytes]]:
    """A tag file's ``(label, value, raw lines)`` elements; indented lines continue a value."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ManifestError(f"{source}: not valid UTF-8") from None
    fields: list[tuple[str, str, bytes]] = []
    for line in text.splitlines(keepends=True):
        if line.strip() == "":
            continue
        if line[0] in " \t" and fields:
            label, value, raw = fields[-1]
            fields[-1] = (label, value + " " + line.strip(), raw + line.encode("utf-8"))
            continue
        label, colon, value = line.partition(":")
        if not colon or not label.strip():
            raise ManifestError(f"{source}: not a 'Label: value' line: {display_name(line)}")
        ending = "" if line.endswith(("\n", "\r")) else "\n"
        fields.append((label.strip(), value.strip(), (line + ending).encode("utf-8")))
    return fields
