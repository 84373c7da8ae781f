"""Pure comparison: a manifest against what a walk found now, or two manifests (no I/O).

:func:`compare` sorts every manifest entry into exactly one of *ok*, *modified*, *missing*,
*moved* (as the source of a move) or *errors*, and every path found only on disk into *new*,
*moved* (as the target) or *errors*. So ``verified == ok + modified + missing + moved +
(errors among the manifest's entries)`` always holds, and nothing is left out. The rules are
written down in docs/verify.md; in short:

* a regular file is **modified** when its digest differs, or its size differs where the
  manifest records one (a manifest imported from a sums file may not);
* a symlink is modified when its target differs; a skipped entry (FIFO, socket, device) is ok
  while the same kind of entry is still there;
* **missing** and **new** are set differences of the keys (the walk already applied the
  manifest's excludes);
* a missing file and a new file with the same digest and size are one **move**. Ambiguous
  duplicates pair deterministically: first missing and new paths with the same base name, in
  sorted order, then the rest in sorted order. Only regular files move;
* **errors**: the walk could not read the entry (or a directory above it), or the entry's
  type changed (a file is now a symlink, a directory or a FIFO). An unreadable file is never
  reported as modified. Entries the manifest itself lists as unreadable are errors too: they
  were never hashed, so they cannot be vouched for.
"""

from __future__ import annotations

import bisect
import functools
import itertools
from collections import defaultdict, deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from hashpar.errors import ManifestError
from hashpar.formats.records import LineProblems
from hashpar.kinds import UNLISTABLE
from hashpar.models import FileEntry, Manifest, Problem, ProblemKind, Snapshot

__all__ = ["Move", "Report", "compare", "diff"]


@dataclass(frozen=True, slots=True)
class Move:
    """A file that is missing at ``source`` and present, byte for byte, at ``target``."""

    source: str
    target: str


@dataclass(frozen=True)
class Report:
    """The outcome of a verify or a diff. Every tuple is sorted; paths are relative.

    ``verified`` counts the manifest's entries that were checked (files, symlinks and skipped
    entries); each of them is exactly one of ok, modified, missing, a move's source, or an
    error.
    """

    verified: int = 0
    ok: int = 0
    modified: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    new: tuple[str, ...] = ()
    moved: tuple[Move, ...] = ()
    errors: Mapping[str, Problem] = field(default_factory=dict)
    """Path -> why it could not be checked; iterates in sorted path order."""
    ignore_new: bool = False
    """True when new entries are reported but do not count as a difference."""
    new_files_checked: bool = True
    """False when only the listed paths were checked (a sums file without a root), so new
    files and moves could not be found."""
    input_lines: LineProblems = field(default_factory=LineProblems)
    """The lines of a checksum file that could not be used (malformed) or contradict an
    earlier line (conflicting): counted in full, the first ones kept. A hashpar manifest has
    none (it is refused whole when any entry is wrong)."""

    @property
    def differs(self) -> bool:
        """True when the tree differs from the manifest, something could not be checked, or a
        line of the checksum file could not be used."""
        return bool(
            self.modified
            or self.missing
            or self.moved
            or self.errors
            or self.input_lines.total
            or (self.new and not self.ignore_new)
        )


def compare(manifest: Manifest, observed: Snapshot, *, ignore_new: bool = False) -> Report:
    """Compare ``manifest`` with ``observed``, a walk of the tree now (see the module doc)."""
    comparison = _Comparison(manifest.snapshot, observed, type_change_modifies=False)
    return comparison.report(ignore_new)


def diff(old: Manifest, new: Manifest) -> Report:
    """Compare two manifests: what changed from ``old`` to ``new``.

    The categories are those of :func:`compare`, except that a changed type (a file in
    ``old``, a symlink in ``new``) is *modified*: neither manifest is read from disk, so the
    only errors are entries that either manifest records as unreadable. Raises ManifestError
    when the manifests use different algorithms (their digests can never match).
    """
    if old.algorithm != new.algorithm:
        raise ManifestError(
            f"cannot compare a {old.algorithm} manifest with a {new.algorithm} manifest: "
            "digests of different algorithms never match"
        )
    comparison = _Comparison(
        old.snapshot,
        new.snapshot,
        type_change_modifies=True,
        expected_name="the old manifest",
        observed_note="unreadable in the new manifest: ",
    )
    return comparison.report(ignore_new=False)


_PATH_MAX = 4096


def _unlistable(problem: Problem) -> bool:
    return problem.message.startswith(UNLISTABLE)


def _ancestors(path: str, longest: int) -> Iterator[str]:
    """``a/b/c`` -> ``.`` (the root, as the walker names it in errors), ``a``, ``a/b``.

    Only ancestors of at most ``longest`` characters: those are the only ones that can be
    keys of the walk's errors, and it keeps a hostile, very deep manifest path from costing
    a string per ancestor.
    """
    yield "."
    end = path.find("/")
    while 0 <= end <= longest:
        yield path[:end]
        end = path.find("/", end + 1)


class _Comparison:
    """One comparison's working state; :meth:`report` freezes it into a Report."""

    def __init__(
        self,
        expected: Snapshot,
        observed: Snapshot,
        *,
        type_change_modifies: bool,
        expected_name: str = "the manifest",
        observed_note: str = "",
    ) -> None:
        self.expected = expected
        self.observed = observed
        self.type_change_modifies = type_change_modifies
        self.expected_name = expected_name
        self.observed_note = observed_note
        self.ok = 0
        self.modified: list[str] = []
        self.missing: dict[str, FileEntry | None] = {}
        self.errors: dict[str, Problem] = {}
        self._check_entries()

    def _check_entries(self) -> None:
        expected, observed = self.expected, self.observed
        for path, entry in expected.files.items():
            seen = observed.files.get(path)
            if seen is None:
                self._absent(path, "regular file", entry)
            elif seen.digest != entry.digest or entry.size not in (None, seen.size):
                self.modified.append(path)
            else:
                self.ok += 1
        for path, target in expected.symlinks.items():
            now = observed.symlinks.get(path)
            if now is None:
                self._absent(path, "symbolic link", None)
            elif now != target:
                self.modified.append(path)
            else:
                self.ok += 1
        for path, kind in expected.skipped.items():
            if observed.skipped.get(path) == kind:
                self.ok += 1
            else:
                self._absent(path, str(kind), None)
        for path, problem in expected.errors.items():
            seen_problem = observed.errors.get(path)
            if seen_problem is not None:
                self.errors[path] = self._observed_problem(seen_problem)
            else:
                self.errors[path] = Problem(
                    problem.kind,
                    f"not checked: {self.expected_name} records it as unreadable "
                    f"({problem.message})",
                )

    def _observed_problem(self, problem: Problem) -> Problem:
        if not self.observed_note:
            return problem
        return Problem(problem.kind, self.observed_note + problem.message)

    def _absent(self, path: str, was: str, entry: FileEntry | None) -> None:
        """``path`` is not what the manifest says: an error, a type change, or missing."""
        observed = self.observed
        problem = observed.errors.get(path)
        if problem is not None:
            self.errors[path] = self._observed_problem(problem)
            return
        now = self._kind_now(path)
        if now is not None:
            if self.type_change_modifies:
                self.modified.append(path)
            else:
                self.errors[path] = Problem(
                    ProblemKind.TYPE_CHANGED, f"was a {was}, is now a {now}"
                )
            return
        for directory in _ancestors(path, self.longest_error):
            problem = observed.errors.get(directory)
            if problem is not None:
                where = "the root" if directory == "." else directory
                message = f"not checked: {where}: {self.observed_note}{problem.message}"
                self.errors[path] = Problem(problem.kind, message)
                return
        self.missing[path] = entry

    @functools.cached_property
    def observed_order(self) -> list[str]:
        """Every walked path with '/' as NUL, sorted: a directory's contents follow it.

        Built only once an entry turns out to be absent. Linear in size, however deep the
        paths (a set of every ancestor would not be, for a hostile manifest in a diff).
        """
        observed = self.observed
        paths = itertools.chain(
            observed.files, observed.symlinks, observed.skipped, observed.errors
        )
        return sorted(path.replace("/", "\0") for path in paths)

    def _is_directory_now(self, path: str) -> bool:
        """True when the walk found something below ``path``."""
        prefix = path.replace("/", "\0") + "\0"
        order = self.observed_order
        index = bisect.bisect_left(order, prefix)
        return index < len(order) and order[index].startswith(prefix)

    def _below_a_recorded_error(self, path: str) -> bool:
        """True when ``path`` lies below a directory the manifest records as unlistable (the
        root included): whatever is there now, the manifest could not have listed it, and
        the directory is reported as an error already. Only a directory's listing error
        counts: a file or a link loop recorded as unreadable, replaced by a directory since,
        hides nothing."""
        unlistable, longest = self.unlistable
        if not unlistable:
            return False
        return any(directory in unlistable for directory in _ancestors(path, longest))

    @functools.cached_property
    def unlistable(self) -> tuple[frozenset[str], int]:
        """The directories the manifest records as unlistable, and the longest one's length
        (at most PATH_MAX, as for :attr:`longest_error`)."""
        errors = self.expected.errors
        found = frozenset(path for path, problem in errors.items() if _unlistable(problem))
        return found, min(max(map(len, found), default=0), _PATH_MAX)

    @functools.cached_property
    def longest_error(self) -> int:
        """Length of the longest path with an error (0 when none), at most PATH_MAX: a walk
        cannot list a longer one, and a hostile manifest (in a diff) must not make every
        absent path cost a string per ancestor."""
        return min(max(map(len, self.observed.errors), default=0), _PATH_MAX)

    def _kind_now(self, path: str) -> str | None:
        observed = self.observed
        if path in observed.files:
            return "regular file"
        if path in observed.symlinks:
            return "symbolic link"
        if path in observed.skipped:
            return str(observed.skipped[path])
        if self._is_directory_now(path):
            return "directory"
        return None

    def report(self, ignore_new: bool) -> Report:
        expected, observed = self.expected, self.observed
        claimed = (
            expected.files.keys() | expected.symlinks.keys() | expected.skipped.keys()
        ) | expected.errors.keys()
        new = sorted(
            path
            for section in (observed.files, observed.symlinks, observed.skipped)
            for path in section
            if path not in claimed and not self._below_a_recorded_error(path)
        )
        for path, problem in observed.errors.items():
            if path not in claimed:
                self.errors[path] = self._observed_problem(problem)
        moved = _pair_moves(
            {p: e for p, e in self.missing.items() if e is not None},
            {p: observed.files[p] for p in new if p in observed.files},
        )
        sources = {move.source for move in moved}
        targets = {move.target for move in moved}
        return Report(
            verified=len(expected.files) + len(expected.symlinks) + len(expected.skipped),
            ok=self.ok,
            modified=tuple(sorted(self.modified)),
            missing=tuple(sorted(p for p in self.missing if p not in sources)),
            new=tuple(p for p in new if p not in targets),
            moved=tuple(sorted(moved, key=lambda m: m.source)),
            errors=dict(sorted(self.errors.items())),
            ignore_new=ignore_new,
        )


def _pair_moves(missing: Mapping[str, FileEntry], new: Mapping[str, FileEntry]) -> list[Move]:
    """Pair missing and new files with equal digests (and sizes, where both are known).

    Within one digest, paths with the same base name pair first, each side in sorted order;
    the rest then pair in sorted order. O(n log n) even for thousands of identical files.
    """
    by_digest: defaultdict[str, list[str]] = defaultdict(list)
    for path in sorted(new):
        by_digest[new[path].digest].append(path)
    wanted: defaultdict[str, list[str]] = defaultdict(list)
    for path in sorted(missing):
        if missing[path].digest in by_digest:
            wanted[missing[path].digest].append(path)
    moves: list[Move] = []
    for digest, sources in wanted.items():
        targets = by_digest[digest]
        by_name: defaultdict[str, deque[str]] = defaultdict(deque)
        for target in targets:
            by_name[target.rpartition("/")[2]].append(target)
        taken: set[str] = set()
        unpaired: list[str] = []
        for source in sources:
            same_name = by_name.get(source.rpartition("/")[2])
            if same_name:
                target = same_name.popleft()
                taken.add(target)
                moves.append(Move(source, target))
            else:
                unpaired.append(source)
        rest = (t for t in targets if t not in taken)
        moves.extend(Move(s, t) for s, t in zip(unpaired, rest, strict=False))
    return [m for m in moves if missing[m.source].size in (None, new[m.target].size)]
