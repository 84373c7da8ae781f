"""What the format parsers return, and the rules they share: line splitting, path cleaning,
and guessing the algorithm from a file name. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from hashpar.errors import ManifestError, UsageError
from hashpar.kinds import Algorithm
from hashpar.names import display_name, unsafe_reason

if TYPE_CHECKING:  # models imports msgspec: a command's --help must not pay for it
    from hashpar.models import FileEntry, Manifest

__all__ = [
    "ChecksumFormat",
    "MalformedLine",
    "NoChecksumLines",
    "ParsedChecksums",
    "algorithm_from_name",
    "clean_path",
    "describe_digest_length",
    "imported_manifest",
    "name_list",
    "numbered_lines",
    "resolve_algorithm",
]


class ChecksumFormat(StrEnum):
    """A checksum-file format hashpar reads and writes."""

    SUMS = "sums"
    """GNU coreutils / b3sum: ``<hex>  <path>``, with a leading ``\\`` when the path is escaped."""
    BSD = "bsd"
    """BSD tagged: ``SHA256 (<path>) = <hex>``, ``BLAKE3 (<path>) = <hex>``."""
    BAGIT = "bagit"
    """A BagIt (RFC 8493) payload manifest: ``<hex>  data/<percent-encoded path>``."""


@dataclass(frozen=True, slots=True)
class MalformedLine:
    """A line that is not a usable checksum line: its 1-based number and why."""

    line: int
    message: str


@dataclass(frozen=True)
class ParsedChecksums:
    """A checksum file read into a Manifest, plus every line that could not be used.

    ``manifest.files`` holds one FileEntry per valid line, with ``size`` and ``mtime_ns`` None
    (a sums file records neither). ``formats`` says which line formats were seen.
    """

    manifest: Manifest
    malformed: tuple[MalformedLine, ...]
    formats: frozenset[ChecksumFormat]


class NoChecksumLines(ManifestError):
    """A checksum file without a single usable line (exit 2, like coreutils' "no properly
    formatted checksum lines found"); ``malformed`` lists why each line was refused.
    """

    def __init__(self, source: str, malformed: tuple[MalformedLine, ...]) -> None:
        detail = (
            f" ({len(malformed)} malformed)" if malformed else " (only blank lines and comments)"
        )
        super().__init__(f"{source}: no properly formatted checksum lines found{detail}")
        self.malformed = malformed


def numbered_lines(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Yield ``(number, line)`` for each ``\\n``-terminated line; the terminator is removed.

    A last line without a newline counts; an empty file has no lines.
    """
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    yield from enumerate(lines, start=1)


def clean_path(path: str) -> tuple[str | None, str | None]:
    """Normalise a checked path the way the file system would read it; refuse unsafe ones.

    Leading ``./``, doubled slashes and ``.`` segments are dropped (``find . | xargs
    sha256sum`` writes ``./a``; ``a//b`` names the same file as ``a/b``). Absolute paths,
    ``..`` segments and the other forms :func:`hashpar.names.unsafe_reason` rejects are
    refused. Returns ``(path, None)`` or ``(None, reason)``.
    """
    if path.startswith("/"):
        return None, "absolute path refused"
    if path.endswith("/"):
        return None, "names a directory, not a file"
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        return None, "'..' path refused"
    cleaned = "/".join(parts)
    reason = unsafe_reason(cleaned)
    if reason is not None:
        return None, f"unsafe path refused: {reason}"
    return cleaned, None


_SHA256_WORDS = frozenset({"sha256", "sha256sum", "sha256sums", "sha2"})
_BLAKE3_WORDS = frozenset({"b3", "b3sum", "b3sums", "blake3", "blake3sum", "blake3sums"})


def algorithm_from_name(name: str) -> Algorithm | None:
    """The algorithm a checksum file's name announces, or None when it says nothing clear.

    The base name is split into words at anything but letters and digits, case ignored:
    ``SHA256SUMS``, ``release.sha256``, ``manifest-sha256.txt`` say SHA-256; ``B3SUMS``,
    ``photos.b3``, ``x.blake3`` say BLAKE3. A name with words for both says nothing.
    """
    base = name.replace("\\", "/").rsplit("/", 1)[-1].lower()
    words = set(re.split(r"[^a-z0-9]+", base))
    sha, b3 = bool(words & _SHA256_WORDS), bool(words & _BLAKE3_WORDS)
    if sha == b3:
        return None
    return Algorithm.SHA256 if sha else Algorithm.BLAKE3


def resolve_algorithm(given: Algorithm | None, tagged: Algorithm | None, source: str) -> Algorithm:
    """The algorithm to check with: given, else the tags' one, else the name's; or UsageError."""
    if given is not None:
        return given
    if tagged is not None:
        return tagged
    named = algorithm_from_name(source)
    if named is not None:
        return named
    raise UsageError(
        f"{source}: cannot tell SHA-256 from BLAKE3 (both digests are 64 hex digits and the "
        "file name does not say): give --algo sha256 or --algo blake3"
    )


def imported_manifest(
    algorithm: Algorithm, root: str, files: dict[str, FileEntry], *, created: str = ""
) -> Manifest:
    """A Manifest for entries read from a checksum file (sorted by path, sizes as given)."""
    from hashpar.models import Manifest, Snapshot

    return Manifest(
        algorithm=algorithm,
        root=root,
        created=created,
        generator="",
        snapshot=Snapshot(files=dict(sorted(files.items()))),
    )


def describe_digest_length(length: int) -> str:
    """Why a hex digest of this length cannot be checked (never 64: that length is fine)."""
    known = {32: "MD5", 40: "SHA-1", 56: "SHA-224", 96: "SHA-384", 128: "SHA-512 or BLAKE2b"}
    guess = f" ({known[length]}?)" if length in known else ""
    return (
        f"a {length}-hex-digit digest{guess}: hashpar checks SHA-256 and BLAKE3 "
        "(64 hex digits) only"
    )


def name_list(paths: Iterable[str], shown: int = 3) -> str:
    """``a, b, c and 4 more``: the first few paths, sorted and escaped, for a message."""
    ordered = sorted(paths)
    text = ", ".join(display_name(path) for path in ordered[:shown])
    return text + (f" and {len(ordered) - shown} more" if len(ordered) > shown else "")
