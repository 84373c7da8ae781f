"""The kinds hashpar names: algorithms, entries never opened, and problems.

Plain enums with no dependency, kept apart from :mod:`hashpar.models` so that a worker
process (which imports :mod:`hashpar.hashing`) and the CLI's option parsing load nothing
else. :mod:`hashpar.models` re-exports all three. Also the one bound the manifest format
puts on its integers, which workers apply too.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = [
    "DIGEST_BYTES",
    "INT64_MAX",
    "UNKNOWN",
    "Algorithm",
    "ProblemKind",
    "SpecialKind",
    "known",
]

INT64_MAX = 2**63 - 1
"""The largest size, and the largest mtime_ns either side of zero, that a manifest records:
a signed 64-bit integer, which JSON readers in other languages keep exactly. An mtime
beyond it (before 1677-09-21 or after 2262-04-11) is recorded as unknown."""

UNKNOWN = -(2**63)
"""The one signed 64-bit value that is never a size or an mtime_ns a manifest records
(see INT64_MAX): what a column of 64-bit integers holds for "unknown" (None elsewhere)."""


def known(value: int) -> int | None:
    """A size or mtime_ns from a 64-bit column: None for :data:`UNKNOWN`."""
    return None if value == UNKNOWN else value


DIGEST_BYTES = 32
"""Bytes in a raw digest, for both algorithms."""


class Algorithm(StrEnum):
    """A supported digest; the value is the name used on the command line and in manifests."""

    BLAKE3 = "blake3"
    SHA256 = "sha256"


class SpecialKind(StrEnum):
    """A directory entry that is never opened: recorded as skipped, with its kind."""

    FIFO = "fifo"
    SOCKET = "socket"
    CHAR_DEVICE = "char-device"
    BLOCK_DEVICE = "block-device"
    OTHER = "other"


class ProblemKind(StrEnum):
    """Why an entry could not be hashed (or, in verify, checked)."""

    UNREADABLE = "unreadable"
    """Permission denied, an I/O error, or a directory that cannot be listed."""
    VANISHED = "vanished"
    """The entry disappeared between being listed and being read."""
    CHANGED = "changed"
    """The file changed while it was being read; no digest is trustworthy."""
    LOOP = "symlink-loop"
    """With --follow-symlinks: a directory link that leads back into its own ancestry."""
    UNSAFE_NAME = "unsafe-name"
    """A name that could not be stored safely (e.g. a drive form such as ``C:``)."""
    TYPE_CHANGED = "type-changed"
    """verify: the manifest lists a file, the tree now has something else at that path."""
    FAILED = "failed"
    """An unexpected error while hashing this one entry."""


UNLISTABLE = "cannot list directory: "
"""How a problem's message begins when a directory could not be listed (the walk writes
it): verify and diff then report nothing below that directory as new."""
