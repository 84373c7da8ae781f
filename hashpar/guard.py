"""Verify's checks of a manifest's paths: one on the manifest alone, made as verify reads
the entries (alongside the first tasks: ``alongside`` in :func:`hashpar.engine.hash_tree`),
and a look at the disk, after the walk, that never goes through a symlink.

Verify's real protection is structural: it walks the tree from the root and never opens a
path the manifest names (see docs/verify.md). What is left here:

* :func:`reject_entries_below_leaves` refuses a manifest that contradicts itself, with an
  entry below another entry (``link/etc/passwd`` below the symlink ``link``): no walk
  produces one, so only a hostile or corrupt manifest holds one (exit 2);
* :class:`DiskProbe` tells whether a path the walk did not find is now a real directory (a
  file replaced by an empty or excluded directory is a type change), with ``lstat`` only,
  through real directories only.

An entry below a directory that is now a symlink (data moved to another disk, a link left
in its place) is not refused: the manifest cannot know what the tree became. The walk does
not follow the link (or, with ``follow_symlinks``, follows it only inside the root), so the
entry is *missing* and the link *new*, and nothing beyond the link is looked at.

Both are linear in the manifest's size, however long or deep its paths: a hostile manifest
cannot make them allocate a string per ancestor of every entry.
"""

from __future__ import annotations

import bisect
import itertools
import json
import os
import stat
from collections.abc import Mapping

from hashpar.errors import ManifestError
from hashpar.models import Snapshot
from hashpar.names import key_for

__all__ = ["DiskProbe", "reject_entries_below_leaves"]

_LEAF_NOUNS = {"files": "the file", "symlinks": "the symlink", "skipped": "the skipped entry"}


def _sections(snapshot: Snapshot) -> dict[str, Mapping[str, object]]:
    return {
        "files": snapshot.files,
        "symlinks": snapshot.symlinks,
        "skipped": snapshot.skipped,
        "errors": snapshot.errors,
    }


def _where(section: str, path: str) -> str:
    return f"{section}[{json.dumps(key_for(path))}]"


def reject_entries_below_leaves(snapshot: Snapshot) -> None:
    """ManifestError if an entry lies below a file, symlink or skipped entry.

    First, whether any entry at all lies below another, decided exactly and mostly in C
    (:func:`_any_below_another`): when none does, none lies below a leaf. Otherwise, sorting
    with '/' replaced by NUL (which no path contains) puts every path's descendants right
    after it, so comparing neighbours with their sections finds the entry in O(n log n),
    knows whether the upper one is a leaf (an entry may lie below a directory listed in
    errors) and names both.
    """
    if not _any_below_another(sorted(itertools.chain.from_iterable(_sections(snapshot).values()))):
        return
    ordered = sorted(
        (path.replace("/", "\0"), section, path)
        for section, entries in _sections(snapshot).items()
        for path in entries
    )
    for (key, section, path), (following, below_section, below) in itertools.pairwise(ordered):
        if section in _LEAF_NOUNS and following.startswith(key + "\0"):
            raise ManifestError(
                f"unsafe path in manifest: {_where(below_section, below)}: lies below "
                f"{_LEAF_NOUNS[section]} {json.dumps(key_for(path))}"
            )


def _any_below_another(order: list[str]) -> bool:
    """True when some path in ``order`` (sorted) starts with another one plus '/'.

    If D lies below P, every path sorted between P and D starts with P (one that did not
    would differ from P at a character greater than P's there, so sort after D too); so
    P's successor starts with P. Only such P are candidates (found in C: none in the
    100,000-entry benchmark tree, 188 of 53,250 in the real one), and for each, the first
    path at or after ``P + '/'`` (bisect) starts with it if any path does. Measured on the
    real tree's manifest: 15 -> 5 ms, the NUL sort now only the fallback.
    """
    following = itertools.islice(order, 1, None)
    for upper in itertools.compress(order, map(str.startswith, following, order)):
        prefix = upper + "/"
        at = bisect.bisect_left(order, prefix)
        if at < len(order) and order[at].startswith(prefix):
            return True
    return False


class DiskProbe:
    """Looks at paths below ``root`` with lstat only, and only through real directories.

    Nothing is opened, and no symlink is resolved: a path component is looked at only once
    every directory above it was seen (by lstat) to be a real directory, so a symlink on the
    way, wherever it leads, is where the look stops. A swap during the run can change an
    answer here but never what is read, since the walk opens every directory and file with
    O_NOFOLLOW.
    """

    def __init__(self, root: str) -> None:
        self.root = root
        self._stops: dict[str, tuple[str, int | None] | None] = {}

    def _mode(self, path: str) -> int | None:
        """lstat's st_mode of ``path`` below the root; None when it cannot be looked at."""
        try:
            return os.lstat(os.path.join(self.root, path)).st_mode
        except OSError:
            return None

    def first_non_directory(self, path: str) -> tuple[str, int | None] | None:
        """The first component of ``path`` that is not a real directory, as (prefix, lstat
        mode or None when absent); None when every component is a real directory.

        The answer for every prefix looked at is kept, so a directory whose parent is known
        costs one lstat, and a walk down from the top stops at the first non-directory (a
        hostile path of 50,000 components below a missing one costs two lstats and two
        strings).
        """
        stops = self._stops
        if path in stops:
            return stops[path]
        parent = path.rpartition("/")[0]
        if parent in stops:  # the common case: one lstat (not yet made, or path would be in stops)
            result = stops[parent]
            if result is None:
                mode = self._mode(path)
                if not stat.S_ISDIR(mode or 0):
                    result = (path, mode)
            stops[path] = result
            return result
        result = None
        start = 0
        while True:
            end = path.find("/", start)
            prefix = path if end < 0 else path[:end]
            if prefix in stops:
                known = stops[prefix]
            else:
                mode = self._mode(prefix)
                known = None if stat.S_ISDIR(mode or 0) else (prefix, mode)
                stops[prefix] = known
            if known is not None or end < 0:
                result = known
                break
            start = end + 1
        stops[path] = result
        return result

    def is_directory(self, path: str) -> bool:
        """True when ``path`` is a real directory (not a symlink to one)."""
        return self.first_non_directory(path) is None
