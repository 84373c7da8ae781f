"""The values hashpar works with: algorithms, entries, snapshots of a tree, manifests.

Everything here is an immutable value with no I/O. Paths are relative, '/'-separated ``str``
as produced by ``os.fsdecode`` (see :mod:`hashpar.names` for how they are written to JSON).
"""

from __future__ import annotations

from collections.abc import ItemsView, Iterator, Mapping, ValuesView
from dataclasses import dataclass, field
from typing import TypeVar

import msgspec

from hashpar.kinds import Algorithm, ProblemKind, SpecialKind

__all__ = [
    "Algorithm",
    "FileEntry",
    "KeyOrdered",
    "Manifest",
    "Problem",
    "ProblemKind",
    "Snapshot",
    "SpecialKind",
]


class FileEntry(msgspec.Struct, frozen=True, gc=False):
    """A regular file: its size in bytes, lowercase hex digest and modification time.

    A tree can hold millions, so this is the cheapest immutable record measured: a frozen
    msgspec Struct that the cyclic garbage collector does not track (it holds only ints and
    a str, so it can never be part of a cycle). Against the NamedTuple it replaced: 40 bytes
    instead of 64, made from a worker's columns in C (``itertools.starmap``: 4.5 ms per
    100,000 instead of 59 ms for ``_make``), and never walked by a collection. Equal and
    hashable by value; positional order (size, digest, mtime_ns).
    """

    size: int | None
    """Bytes; None only in a manifest imported from a sums file without its tree."""
    digest: str
    mtime_ns: int | None
    """None when unknown: imported manifests, and a file dated outside what a manifest can
    record (before 1677 or after 2262, :data:`hashpar.kinds.INT64_MAX`)."""

    def matches(self, seen: FileEntry) -> bool:
        """True when ``seen``, found on disk now, has the content this entry records: the
        same digest, and the same size where this entry records one (mtime is not compared)."""
        return self.digest == seen.digest and self.size in (None, seen.size)


@dataclass(frozen=True, slots=True)
class Problem:
    """An entry that could not be read or checked, with a stable kind and a message."""

    kind: ProblemKind
    message: str


_V = TypeVar("_V")


class KeyOrdered(Mapping[str, _V]):
    """A read-only view of a dict that iterates in sorted key order, without copying it.

    A tree's files arrive from the workers in no particular order; re-inserting a million
    of them into a sorted dict would hold two hash tables at once (measured: +70 bytes per
    entry at the peak). This keeps the one dict and a sorted list of its keys (8 bytes per
    entry). The dict must not change afterwards.
    """

    __slots__ = ("_data", "_order")

    def __init__(self, data: dict[str, _V]) -> None:
        self._data = data
        self._order = sorted(data)

    def __getitem__(self, key: str) -> _V:
        return self._data[key]

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        return iter(self._order)

    def __len__(self) -> int:
        return len(self._data)

    def items(self) -> ItemsView[str, _V]:
        """(key, value) pairs in key order, iterated without a Python call per item."""
        return _OrderedItems(self)

    def values(self) -> ValuesView[_V]:
        """Values in key order, iterated without a Python call per item."""
        return _OrderedValues(self)

    def __repr__(self) -> str:
        return f"KeyOrdered({dict(self.items())!r})"


class _OrderedItems(ItemsView[str, _V]):
    _mapping: KeyOrdered[_V]

    def __iter__(self) -> Iterator[tuple[str, _V]]:
        order = self._mapping._order
        return zip(order, map(self._mapping._data.__getitem__, order), strict=True)


class _OrderedValues(ValuesView[_V]):
    _mapping: KeyOrdered[_V]

    def __iter__(self) -> Iterator[_V]:
        return map(self._mapping._data.__getitem__, self._mapping._order)


@dataclass(frozen=True)
class Snapshot:
    """What one walk of a tree found: files with digests, symlinks, skipped entries, errors.

    Each mapping is keyed by relative path and iterates in sorted key order.
    """

    files: Mapping[str, FileEntry] = field(default_factory=dict)
    symlinks: Mapping[str, str] = field(default_factory=dict)
    """Symlink path -> its target, exactly as ``os.readlink`` returned it."""
    skipped: Mapping[str, SpecialKind] = field(default_factory=dict)
    errors: Mapping[str, Problem] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    """A manifest: a snapshot of ``root`` plus what is needed to check it again later."""

    algorithm: Algorithm
    root: str
    """The root as given on the command line (verify resolves it against the cwd)."""
    created: str
    """RFC 3339 UTC timestamp, e.g. ``2026-11-26T01:30:00Z``."""
    generator: str
    """``hashpar X.Y.Z``."""
    snapshot: Snapshot
    excludes: tuple[str, ...] = ()
    """gitignore-style patterns, relative to root, that were left out of the walk."""
    follow_symlinks: bool = False

    @property
    def files(self) -> Mapping[str, FileEntry]:
        """Shortcut for ``snapshot.files``."""
        return self.snapshot.files
