"""The values hashpar works with: algorithms, entries, snapshots of a tree, manifests.

Everything here is an immutable value with no I/O. Paths are relative, '/'-separated ``str``
as produced by ``os.fsdecode`` (see :mod:`hashpar.names` for how they are written to JSON).
"""

from __future__ import annotations

import itertools
from array import array
from collections.abc import ItemsView, Iterator, Mapping, ValuesView
from dataclasses import dataclass, field
from operator import add, lt, ne
from typing import TypeVar

import msgspec

from hashpar.kinds import DIGEST_BYTES, UNKNOWN, Algorithm, ProblemKind, SpecialKind, known

__all__ = [
    "Algorithm",
    "FileEntry",
    "FileTable",
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


class FileTable(Mapping[str, FileEntry]):
    """Files by path, held as four columns in path order: what a walk found.

    A tree can hold millions of files, and the parent of the workers holds them all until
    the manifest is written. As a dict of FileEntry each costs 378 bytes (the path, a hex
    digest of 128, the entry, two ints, a dict slot); here 136 (the path and its list slot,
    then 48 bytes of columns: the raw digest, the size, the mtime), and taking in a
    worker's result is a few copies in C instead of four objects per file
    (benchmarks/README.md, *Defaults*).

    A read-only Mapping like any other: iteration is in path order, and each entry read is
    a FileEntry made on demand. A lookup by path builds an index the first time (about 74
    bytes per file); iteration, ``values()`` and ``items()`` need none. The manifest writer
    reads the columns directly (:meth:`rows`).
    """

    __slots__ = ("_digests", "_index", "_mtimes", "_paths", "_sizes")

    def __init__(
        self,
        paths: list[str],
        digests: bytes | bytearray,
        sizes: array[int],
        mtimes: array[int],
    ) -> None:
        """The files ``paths[i]`` with digest ``digests[32*i : 32*(i+1)]``, ``sizes[i]`` and
        ``mtimes[i]`` (kinds.UNKNOWN where not known), in any order; paths must be unique.
        The columns are copied into path order; the arguments are not kept."""
        if not all(map(isinstance, paths, itertools.repeat(str))):
            raise TypeError("FileTable: paths must be str")
        if not isinstance(digests, bytes | bytearray):
            raise TypeError("FileTable: digests must be bytes")
        if not all(
            isinstance(column, array) and column.typecode == "q" for column in (sizes, mtimes)
        ):
            raise TypeError("FileTable: sizes and mtimes must be array('q')")
        count = len(paths)
        if len(digests) != count * DIGEST_BYTES or not len(sizes) == len(mtimes) == count:
            raise ValueError("FileTable: the columns differ in length")
        if sizes and min(sizes) < 0 and any(size < 0 and size != UNKNOWN for size in sizes):
            raise ValueError("FileTable: a size is negative")
        self._paths: list[str] = []
        joined = bytearray()
        self._sizes = array("q")
        self._mtimes = array("q")
        for row, stop in _runs_in_order(paths):  # a walk's results come in a few long runs
            self._paths += paths[row:stop]
            joined += digests[row * DIGEST_BYTES : stop * DIGEST_BYTES]
            self._sizes += sizes[row:stop]
            self._mtimes += mtimes[row:stop]
        if not all(map(lt, self._paths, itertools.islice(self._paths, 1, None))):
            raise ValueError("FileTable: a path is given twice")
        self._digests = bytes(joined)
        self._index: dict[object, int] | None = None

    def rows(self, start: int, stop: int) -> tuple[list[str], bytes, array[int], array[int]]:
        """Rows ``start`` to ``stop`` (in path order, both ``>= 0``) as columns: the paths,
        the raw digests joined, the sizes and the mtimes (kinds.UNKNOWN where not known)."""
        _check_rows(start, stop)
        return (
            self._paths[start:stop],
            self._digests[start * DIGEST_BYTES : stop * DIGEST_BYTES],
            self._sizes[start:stop],
            self._mtimes[start:stop],
        )

    def entries(self, start: int, stop: int) -> Iterator[FileEntry]:
        """The entries of rows ``start`` to ``stop`` (both ``>= 0``), in path order."""
        _check_rows(start, stop)
        return map(self._entry, range(start, min(stop, len(self._paths))))

    def _entry(self, row: int) -> FileEntry:
        return FileEntry(
            known(self._sizes[row]),
            self._digests[row * DIGEST_BYTES : (row + 1) * DIGEST_BYTES].hex(),
            known(self._mtimes[row]),
        )

    def _row(self, key: object) -> int | None:
        if self._index is None:
            self._index = dict(zip(self._paths, range(len(self._paths)), strict=True))
        return self._index.get(key)  # an unhashable key: TypeError, as from a dict

    def __getitem__(self, key: str) -> FileEntry:
        row = self._row(key)
        if row is None:
            raise KeyError(key)
        return self._entry(row)

    def __contains__(self, key: object) -> bool:
        return self._row(key) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._paths)

    def __len__(self) -> int:
        return len(self._paths)

    def items(self) -> ItemsView[str, FileEntry]:
        """(path, entry) pairs in path order, without the index."""
        return _TableItems(self)

    def values(self) -> ValuesView[FileEntry]:
        """Entries in path order, without the index."""
        return _TableValues(self)

    def __repr__(self) -> str:
        return f"FileTable({dict(self.items())!r})"


def _check_rows(start: int, stop: int) -> None:
    if start < 0 or stop < 0:  # a negative index would count from the end, as in a list
        raise ValueError(f"FileTable: rows are numbered from 0, not {start} to {stop}")


def _runs_in_order(paths: list[str]) -> Iterator[tuple[int, int]]:
    """The rows of ``paths`` in sorted order, as (first, stop) stretches of rows that are
    already consecutive.

    What a walk found arrives a task's results at a time, each in directory order, so the
    sorted order is a few long stretches (123 for the 100,000 files of the benchmark's small
    tree): copying each as one slice per column is what makes sorting a table cheap (11-14
    ms there, against 42-45 ms for a copy per row; benchmarks/README.md, *Defaults*). Found
    in C: a sort of the row numbers by path, then the positions where the next row is not
    the one after.
    """
    order = sorted(range(len(paths)), key=paths.__getitem__)
    after = map(add, order, itertools.repeat(1))
    breaks = itertools.compress(
        range(1, len(order)), map(ne, itertools.islice(order, 1, None), after)
    )
    first = 0
    for position in itertools.chain(breaks, [len(order)]):
        if position:
            yield order[first], order[first] + position - first
        first = position


class _TableItems(ItemsView[str, FileEntry]):
    _mapping: FileTable

    def __iter__(self) -> Iterator[tuple[str, FileEntry]]:
        table = self._mapping
        return zip(table, table.entries(0, len(table)), strict=True)


class _TableValues(ValuesView[FileEntry]):
    _mapping: FileTable

    def __iter__(self) -> Iterator[FileEntry]:
        table = self._mapping
        return table.entries(0, len(table))


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
