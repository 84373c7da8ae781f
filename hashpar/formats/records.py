"""What the format parsers return, and the rules they share: line splitting, path cleaning,
and guessing the algorithm from a file name. Pure: no I/O.
"""

from __future__ import annotations

import heapq
import itertools
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
    "FORM_LINES",
    "MAX_KEPT",
    "ChecksumFormat",
    "EntryTable",
    "FormGate",
    "LineKind",
    "LineProblems",
    "MalformedLine",
    "NoChecksumLines",
    "NotAChecksumFile",
    "ParsedChecksums",
    "ProblemCollector",
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


class LineKind(StrEnum):
    """Why a line of a checksum file was not used."""

    MALFORMED = "malformed"
    """It cannot be used: not a checksum line, an unsafe path, a digest of another length..."""
    CONFLICTING = "conflicting"
    """It lists a path an earlier line lists, with another digest: the file cannot match both."""


@dataclass(frozen=True, slots=True)
class MalformedLine:
    """A line that is not a usable checksum line: its 1-based number, why, and which kind."""

    line: int
    message: str
    kind: LineKind = LineKind.MALFORMED


MAX_KEPT = 1000
"""How many problem lines a parse keeps, the first by line number; all of them are counted."""


@dataclass(frozen=True, slots=True)
class LineProblems:
    """The lines of a checksum file that were not used: the first :data:`MAX_KEPT` of them in
    line order, and how many of each kind there were in all (a huge wrong file costs no more
    memory than a short one)."""

    kept: tuple[MalformedLine, ...] = ()
    malformed: int = 0
    conflicting: int = 0

    @property
    def total(self) -> int:
        """Every problem line, kept or not."""
        return self.malformed + self.conflicting


class ProblemCollector:
    """Gathers problem lines, in any order, into a :class:`LineProblems` (bounded memory)."""

    def __init__(self, keep: int = MAX_KEPT) -> None:
        self._keep = keep
        self._heap: list[tuple[int, int, MalformedLine]] = []  # (-line, arrival, problem)
        self._arrival = itertools.count()
        self._counts = dict.fromkeys(LineKind, 0)

    def add(self, line: int, message: str, kind: LineKind = LineKind.MALFORMED) -> None:
        self._counts[kind] += 1
        item = (-line, next(self._arrival), MalformedLine(line, message, kind))
        if len(self._heap) < self._keep:
            heapq.heappush(self._heap, item)
        elif line < -self._heap[0][0]:
            heapq.heapreplace(self._heap, item)

    @property
    def total(self) -> int:
        return sum(self._counts.values())

    def freeze(self) -> LineProblems:
        kept = tuple(problem for *_, problem in sorted(self._heap, key=lambda i: -i[0]))
        return LineProblems(
            kept, self._counts[LineKind.MALFORMED], self._counts[LineKind.CONFLICTING]
        )


@dataclass(frozen=True)
class ParsedChecksums:
    """A checksum file read into a Manifest, plus the lines that could not be used.

    ``manifest.files`` holds one FileEntry per valid line, with ``size`` and ``mtime_ns`` None
    (a sums file records neither). ``formats`` says which line formats were seen.
    """

    manifest: Manifest
    problems: LineProblems
    formats: frozenset[ChecksumFormat]

    @property
    def malformed(self) -> tuple[MalformedLine, ...]:
        """The problem lines kept (see :class:`LineProblems`), in line order."""
        return self.problems.kept


class NoChecksumLines(ManifestError):
    """A checksum file without a single usable line (exit 2, like coreutils' "no properly
    formatted checksum lines found"); ``problems`` holds why lines were refused.
    """

    def __init__(self, source: str, problems: LineProblems) -> None:
        detail = (
            f" ({problems.total} malformed)"
            if problems.total
            else " (only blank lines and comments)"
        )
        super().__init__(f"{source}: no properly formatted checksum lines found{detail}")
        self.problems = problems
        self.malformed = problems.kept


class NotAChecksumFile(ManifestError):
    """Input that is no checksum file at all (exit 2, one message): a hashpar manifest, other
    JSON, or text none of whose first :data:`FORM_LINES` lines has a checksum line's form."""


FORM_LINES = 10
"""A file none of whose first this many lines (blank lines and comments aside) has the form of
a checksum line is not read further: it is not a checksum file. sha256sum -c reads to the end
and names every line; a signed SUMS file (``-----BEGIN PGP SIGNED MESSAGE-----``, ``Hash:``)
has three such lines before its first checksum line."""


class FormGate:
    """Decides, line by line, whether the input is a checksum file at all (pure).

    :meth:`see` is told each line that is neither blank nor a comment, and whether it has a
    checksum line's form; it raises :class:`NotAChecksumFile` on the :data:`FORM_LINES`-th
    such line when none had that form, or when the input opens like JSON. :meth:`end` applies
    the same rule to a file that ended sooner.
    """

    def __init__(self, source: str, only: ChecksumFormat | None = None) -> None:
        self.source = source
        self.only = only  # a --format: the file is then refused as not one of that format
        self.formed = False
        self._seen = 0
        self._first: tuple[int, str] | None = None
        self._json = False

    def see(self, number: int, raw: bytes, formed: bool, reason: str = "") -> None:
        if self.formed:
            return
        if formed:
            self.formed = True
            return
        self._seen += 1
        if self._first is None:
            self._first = (number, reason)
            self._json = raw.removeprefix(b"\xef\xbb\xbf").lstrip(b" \t\r")[:1] in (b"{", b"[")
        if self._json and b'"version"' in raw:
            raise NotAChecksumFile(
                f"{self.source}: JSON, not a checksum file (a hashpar manifest is verified "
                "without --format; hashpar export writes sums from one)"
            )
        if self._seen >= FORM_LINES:
            self._refuse(number)

    def end(self, last: int) -> None:
        if not self.formed and self._seen:
            self._refuse(last)

    def _refuse(self, last: int) -> None:
        assert self._first is not None
        number, reason = self._first
        form = {ChecksumFormat.SUMS: "sums-format ", ChecksumFormat.BSD: "BSD-format "}
        noun = f"{form.get(self.only, '') if self.only is not None else ''}checksum"
        what = f"JSON, not a {noun} file" if self._json else f"not a {noun} file"
        if self._seen == 1:  # the file's only line that is not blank or a comment
            raise NotAChecksumFile(f"{self.source}: {what}: line {number}: {reason}")
        raise NotAChecksumFile(
            f"{self.source}: {what}: no {noun} line in lines 1-{last} (line {number}: {reason})"
        )


class EntryTable:
    """The entries of a checksum file being read, first line wins: a path listed again is a
    problem line of the later line, :attr:`LineKind.CONFLICTING` when its digest differs
    (``sha256sum -c`` checks both lines, so one of them FAILS), else malformed. Lines may
    arrive out of order (a line whose meaning waits for the algorithm)."""

    def __init__(self, problems: ProblemCollector) -> None:
        from hashpar.models import FileEntry

        self.problems = problems
        self.files: dict[str, FileEntry] = {}
        self._first: dict[str, int] = {}
        self._entry = FileEntry

    def add(self, number: int, path: str, digest: str) -> bool:
        """Add line ``number``'s entry; False (and a problem line) if the path is listed."""
        entry = self._entry(size=None, digest=digest, mtime_ns=None)
        first = self._first.setdefault(path, number)
        if first == number:
            self.files[path] = entry
            return True
        accepted = number < first  # it came late but is the earlier line: it is the first
        if accepted:
            later, later_digest = first, self.files[path].digest
            self._first[path] = number
            self.files[path] = entry
        else:
            later, later_digest = number, digest
        first, shown = self._first[path], display_name(path)
        if later_digest == self.files[path].digest:
            self.problems.add(later, f"{shown} is listed again (first on line {first})")
        else:
            self.problems.add(
                later,
                f"{shown} is listed again with another digest (first on line {first}, "
                "whose digest is checked)",
                LineKind.CONFLICTING,
            )
        return accepted


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
    algorithm: Algorithm,
    root: str,
    files: dict[str, FileEntry],
    *,
    created: str = "",
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
