"""Walk a tree: decide what each entry is and hand regular files out in batches of names.

The walk runs in the parent and does as little per file as it can: ``os.scandir`` already
knows each entry's type (d_type), so a regular file costs no ``stat`` here; the worker that
hashes it does the ``fstat``. What is not a regular file is settled here:

* a directory is descended into (an unreadable one is an error, never silently skipped);
* a symlink is recorded with its target and never followed, unless ``follow_symlinks``, in
  which case links that stay inside the root are followed, a directory link leading back into
  its own ancestry is a ``symlink-loop`` error, and a link leading outside the root is recorded
  as a symlink, not followed (so no run ever reads outside its root);
* a FIFO, socket or device is recorded as skipped and never opened;
* a name that cannot be stored safely (see :func:`hashpar.names.unsafe_reason`) is an error.
"""

from __future__ import annotations

import errno
import functools
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from hashpar.hashing import Group
from hashpar.models import Problem, ProblemKind, SpecialKind
from hashpar.names import unsafe_reason

__all__ = ["Excluder", "Walker"]

Excluder = Callable[[str, bool], bool]
"""A predicate on (relative path, is-directory): True leaves the entry out of the walk."""

_SPECIAL_KINDS: tuple[tuple[Callable[[int], bool], SpecialKind], ...] = (
    (stat.S_ISFIFO, SpecialKind.FIFO),
    (stat.S_ISSOCK, SpecialKind.SOCKET),
    (stat.S_ISCHR, SpecialKind.CHAR_DEVICE),
    (stat.S_ISBLK, SpecialKind.BLOCK_DEVICE),
)


def special_kind(mode: int) -> SpecialKind:
    """The kind of a non-regular, non-directory, non-symlink entry."""
    return next((kind for test, kind in _SPECIAL_KINDS if test(mode)), SpecialKind.OTHER)


@dataclass(frozen=True)
class _Dir:
    """A directory waiting to be listed, and the (dev, inode) chain of its ancestors."""

    rel: str
    ancestry: frozenset[tuple[int, int]] = frozenset()


@dataclass
class Walker:
    """Walks ``root`` once; :meth:`batches` yields file groups, the rest lands in the fields."""

    root: str
    """Absolute path of the root directory."""
    follow_symlinks: bool = False
    is_excluded: Excluder | None = None
    """Called with (relative path, is-directory); True leaves the entry out of the walk.
    None: nothing is excluded, and plain names take the walk's fast path."""
    skip_paths: frozenset[str] = frozenset()
    """Relative paths left out silently: hashpar's own output and manifest files."""
    batch_files: int = 256
    files_found: int = 0
    symlinks: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, SpecialKind] = field(default_factory=dict)
    errors: dict[str, Problem] = field(default_factory=dict)

    def batches(self) -> Iterator[list[Group]]:
        """Yield lists of (directory, names) holding at most ``batch_files`` names in all.

        Directories are listed in sorted order and names sorted within each, so results come
        back nearly sorted and the final sort is cheap.
        """
        real_root = os.path.realpath(self.root)
        start = os.stat(self.root)
        stack = [_Dir("", frozenset({(start.st_dev, start.st_ino)}))]
        groups: list[Group] = []
        count = 0
        while stack:
            directory = stack.pop()
            subdirs: list[_Dir] = []
            names = self._scan(directory, real_root, subdirs)
            stack.extend(sorted(subdirs, key=lambda d: d.rel, reverse=True))
            if not names:
                continue
            names.sort()
            self.files_found += len(names)
            while names:
                room = self.batch_files - count
                groups.append((directory.rel, names[:room]))
                count += len(names[:room])
                names = names[room:]
                if count >= self.batch_files:
                    yield groups
                    groups, count = [], 0
        if groups:
            yield groups

    def _scan(self, directory: _Dir, real_root: str, subdirs: list[_Dir]) -> list[str]:
        """List one directory: return the regular files' names, record everything else.

        The loop is the walk's hot path, run once per entry of the tree: a plain name (no
        backslash, no possible drive form, not on the skip list, no excludes in force)
        costs only the d_type checks. Anything else takes :meth:`_place`, which builds the
        relative path and applies every rule.
        """
        rel_dir = directory.rel
        prefix = f"{rel_dir}/" if rel_dir else ""
        careful = self.is_excluded is not None
        skip_names = self._skip_names
        names: list[str] = []
        try:
            with os.scandir(os.path.join(self.root, rel_dir)) as it:
                for entry in it:
                    name = entry.name
                    if (
                        careful
                        or "\\" in name
                        or name in skip_names
                        or (not rel_dir and name[1:2] == ":")
                    ):
                        if self._place(entry, prefix + name, directory, real_root, subdirs):
                            names.append(name)
                    elif entry.is_file(follow_symlinks=False):
                        names.append(name)
                    elif entry.is_dir(follow_symlinks=False):
                        subdirs.append(_Dir(prefix + name, self._ancestry(entry, directory)))
                    elif self._place(entry, prefix + name, directory, real_root, subdirs):
                        names.append(name)
        except OSError as exc:
            kind = (
                ProblemKind.VANISHED
                if isinstance(exc, FileNotFoundError)
                else (ProblemKind.UNREADABLE)
            )
            self.errors[rel_dir or "."] = Problem(kind, f"cannot list directory: {exc.strerror}")
        return names

    @functools.cached_property
    def _skip_names(self) -> frozenset[str]:
        """Base names of ``skip_paths``: only entries with these names need the check."""
        return frozenset(path.rsplit("/", 1)[-1] for path in self.skip_paths)

    def _place(
        self, entry: os.DirEntry[str], rel: str, parent: _Dir, real_root: str, subdirs: list[_Dir]
    ) -> bool:
        """Apply every rule to one entry; True when it is a regular file to hash."""
        if rel in self.skip_paths:
            return False
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
            if self.is_excluded is not None and self.is_excluded(rel, is_dir):
                return False
            reason = unsafe_reason(rel)
            if reason is not None:
                self.errors[rel] = Problem(ProblemKind.UNSAFE_NAME, reason)
                return False
            if is_dir:
                subdirs.append(_Dir(rel, self._ancestry(entry, parent)))
                return False
            if entry.is_file(follow_symlinks=False):
                return True
            if entry.is_symlink():
                return self._symlink(entry, rel, parent, real_root, subdirs)
            self.skipped[rel] = special_kind(entry.stat(follow_symlinks=False).st_mode)
        except OSError as exc:
            kind = (
                ProblemKind.VANISHED
                if isinstance(exc, FileNotFoundError)
                else (ProblemKind.UNREADABLE)
            )
            self.errors[rel] = Problem(kind, exc.strerror or str(exc))
        return False

    def _ancestry(self, entry: os.DirEntry[str], parent: _Dir) -> frozenset[tuple[int, int]]:
        """The ancestry of a subdirectory; only tracked when links are followed."""
        if not self.follow_symlinks:
            return frozenset()
        st = entry.stat(follow_symlinks=False)
        return parent.ancestry | {(st.st_dev, st.st_ino)}

    def _symlink(
        self, entry: os.DirEntry[str], rel: str, parent: _Dir, real_root: str, subdirs: list[_Dir]
    ) -> bool:
        """Record a symlink, or with ``follow_symlinks`` follow it when it stays in the root."""
        target = os.readlink(entry.path)
        if not self.follow_symlinks:
            self.symlinks[rel] = target
            return False
        resolved = os.path.realpath(entry.path)
        if os.path.commonpath([real_root, resolved]) != real_root:
            self.symlinks[rel] = target
            return False
        try:
            st = os.stat(entry.path)
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # links pointing at each other in a circle
                self.errors[rel] = Problem(ProblemKind.LOOP, f"symbolic link loop ({target})")
            else:  # dangling: nothing to follow, so it stays a symlink
                self.symlinks[rel] = target
            return False
        if stat.S_ISREG(st.st_mode):
            return True
        if stat.S_ISDIR(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if key in parent.ancestry:
                self.errors[rel] = Problem(
                    ProblemKind.LOOP, f"leads back to an ancestor ({target})"
                )
            else:
                subdirs.append(_Dir(rel, parent.ancestry | {key}))
            return False
        self.skipped[rel] = special_kind(st.st_mode)
        return False
