"""List one directory of a walk: decide what each entry is, and which files to hash.

Walking is done by the workers, each listing the directories of its task with
:func:`list_directory` and hashing the files at once, so the parent does no per-entry work.
Everything a walk needs travels as plain data in a :class:`Scope`.

``os.scandir`` already knows each entry's type (d_type), so a regular file costs no ``stat``
here; the code that hashes it does the ``fstat``. What is not a regular file is settled here:

* a directory is returned to be walked (an unreadable one is an error, never silently skipped);
* a symlink is recorded with its target and never followed, unless ``follow_symlinks``, in
  which case links that stay inside the root are followed, a directory link leading back into
  its own ancestry is a ``symlink-loop`` error, and a link leading outside the root is recorded
  as a symlink, not followed (so no run ever reads outside its root);
* a FIFO, socket or device is recorded as skipped and never opened;
* a name that cannot be stored safely (see :func:`hashpar.names.unsafe_reason`) is an error.
"""

from __future__ import annotations

import bisect
import errno
import functools
import os
import re
import stat
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NamedTuple

from hashpar.kinds import ProblemKind, SpecialKind
from hashpar.names import unsafe_reason

if TYPE_CHECKING:
    import pathspec

__all__ = ["Ancestry", "Excluder", "Listing", "Scope", "list_directory", "special_kind"]

Excluder = Callable[[str, bool], bool]
"""A predicate on (relative path, is-directory): True leaves the entry out of the walk."""

Ancestry = tuple[tuple[int, int], ...]
"""(device, inode) of a directory and its ancestors; tracked only when links are followed."""

_SPECIAL_KINDS: tuple[tuple[Callable[[int], bool], SpecialKind], ...] = (
    (stat.S_ISFIFO, SpecialKind.FIFO),
    (stat.S_ISSOCK, SpecialKind.SOCKET),
    (stat.S_ISCHR, SpecialKind.CHAR_DEVICE),
    (stat.S_ISBLK, SpecialKind.BLOCK_DEVICE),
)


def special_kind(mode: int) -> SpecialKind:
    """The kind of a non-regular, non-directory, non-symlink entry."""
    return next((kind for test, kind in _SPECIAL_KINDS if test(mode)), SpecialKind.OTHER)


class Scope(NamedTuple):
    """What a walk covers, as plain data: it is sent with every task to the workers."""

    root: str
    """Absolute path of the root directory."""
    follow_symlinks: bool = False
    patterns: tuple[str, ...] = ()
    """gitignore patterns, relative to the root: matching entries are left out."""
    only: str | None = None
    """A single file's name: everything else in the root directory is left out."""
    listed: tuple[str, ...] | None = None
    """Sorted relative paths: when set, only these files (and the directories that lead to
    them) are looked at. The parent sends each task just the part below its directories."""
    skip_paths: frozenset[str] = frozenset()
    """Relative paths left out silently: hashpar's own output and manifest files."""

    def excluder(self) -> Excluder | None:
        """The exclusion predicate, or None when nothing is excluded (the fast path)."""
        if not self.patterns and self.only is None and self.listed is None:
            return None
        return _excluder(self.patterns, self.only, self.listed)

    def below(self, directories: list[str]) -> Scope:
        """This scope for a task that walks ``directories``: ``listed`` cut down to the
        paths below them (bisection: a run of the sorted list per directory)."""
        listed = self.listed
        if listed is None or directories == [""]:
            return self
        part: list[str] = []
        for directory in directories:
            start = bisect.bisect_left(listed, directory + "/")
            end = bisect.bisect_left(listed, directory + "0")  # "0" follows "/"
            part.extend(listed[start:end])
        return self._replace(listed=tuple(part))


def compile_patterns(patterns: tuple[str, ...]) -> Excluder | None:
    """A predicate from gitignore patterns, for a walk: pathspec decides, ValueError or
    TypeError for a pattern that is bad (:func:`check_patterns`) or cannot be matched here.

    pathspec turns each pattern into a regular expression, and its simple backend decides,
    pattern after pattern, which one has the last word. Python's regular expression engine
    backtracks: some globs take it exponential time (``*a*a*a*a*b`` against one name of
    255 ``a`` took 7 s, each further ``*a`` multiplies that), and a manifest's
    ``excludes`` are anybody's to write. So each pattern's expression is run by RE2 (the
    google-re2 package), whose time is linear in the path (10 µs there), inside pathspec's
    own loop: which pattern wins is decided exactly as pathspec decides it. Every name is
    matched so; none is left to Python's engine.

    RE2 reads UTF-8 only. A byte of a name that is not UTF-8 (a lone surrogate, from
    ``os.fsdecode``) is mapped, in names and patterns alike, to a character of a private-use
    block (:data:`_BYTES`): one character for one. So that the mapping cannot change what a
    pattern means, a pattern holding a character of that block is refused, and so is one
    with a bracket expression and any character above U+D7FF (a range there could cover
    other characters once mapped). Left: a pattern holding such a byte treats a name's
    real character of that block as the byte (both rare, never both in one real tree).
    Refused too: a POSIX class (``[[:alpha:]]``), whose expression pathspec gets wrong
    under either engine, and an expression RE2 does not accept. Python's engine lets
    ``$`` match before a name's final newline (``a`` excluded a file named ``a`` and a
    newline); RE2 and git do not.
    """
    if not patterns:
        return None
    mapped = tuple(pattern.translate(_BYTES) for pattern in patterns)
    if mapped != patterns:  # a bad pattern is named as given, not as mapped
        check_patterns(patterns)
    spec = _spec(mapped)
    for pattern in patterns:
        _check_matchable(pattern)
    for compiled in spec.patterns:
        _run_by_re2(compiled)

    def is_excluded(path: str, is_dir: bool) -> bool:
        text = path + "/" if is_dir else path
        return bool(spec.match_file(text if text.isascii() else text.translate(_BYTES)))

    return is_excluded


_BYTES = {0xDC80 + byte: 0xF0080 + byte for byte in range(128)}
"""Each byte 0x80-0xFF that ``os.fsdecode`` turned into a lone surrogate, to a character of
Unicode's plane 15 (private use), which RE2 can read."""
_BLOCK = frozenset(map(chr, _BYTES.values()))


def _check_matchable(pattern: str) -> None:
    """ValueError unless the pattern can be matched exactly through RE2 (above)."""
    if not _BLOCK.isdisjoint(pattern):
        raise ValueError(f"{pattern!r}: characters U+F0080-U+F00FF are not supported")
    if pattern.startswith("#"):
        return  # a comment
    if _POSIX_CLASS.search(_ESCAPED.sub("_", pattern)):
        raise ValueError(
            f"{pattern!r}: POSIX character classes such as [:alpha:] are not supported "
            "(the characters can be listed: [a-zA-Z])"
        )
    if "[" in pattern and max(map(ord, pattern)) > 0xD7FF:
        raise ValueError(
            f"{pattern!r}: a bracket expression with characters above U+D7FF in the pattern "
            "is not supported"
        )


def check_patterns(patterns: tuple[str, ...]) -> None:
    """ValueError or TypeError, naming the pattern, unless every one is a valid gitignore
    pattern to pathspec: what a manifest's ``excludes`` must be. Whether a walk can match
    them (:func:`compile_patterns`) is asked only when one does."""
    if patterns:
        _spec(patterns)


_POSIX_CLASS = re.compile(r"\[.*\[:[a-zA-Z]+:\]")
"""A POSIX character class after an opening bracket (``[[:alpha:]]``, ``[][:digit:]]``):
git supports them, pathspec does not translate them faithfully. ``[:ab:]`` alone is a
plain set; an escaped ``\\[`` opens nothing (escapes are blanked out first)."""
_ESCAPED = re.compile(r"\\.", re.S)


def _run_by_re2(pattern: Any) -> None:
    """Give a pathspec pattern (a RegexPattern, or one that matches nothing) RE2's
    compilation of its expression; ValueError, naming the pattern, if RE2 refuses it."""
    import re2

    regex = getattr(pattern, "regex", None)
    if regex is None:
        return
    options = re2.Options()
    options.log_errors = False  # RE2 would print its complaint: the library never prints
    try:
        pattern.regex = re2.compile(regex.pattern, options=options)
    except Exception:  # re2's own error type: an expression it does not accept
        raise ValueError(
            f"{pattern.pattern!r}: not supported: pathspec's expression for it is one RE2, "
            "which matches in linear time, does not accept"
        ) from None


def _spec(patterns: tuple[str, ...]) -> pathspec.GitIgnoreSpec:
    """The patterns compiled for Python's engine; a ValueError naming the first bad one.

    pathspec rejects some bad patterns itself (ValueError) but lets others through to the
    regular expression it builds, whose error (``re.error``: ``[z-a]``, a range backwards)
    is no ValueError and would end a run with a traceback. Git takes such a pattern as one
    that matches nothing; here it is refused, like any other bad pattern, before any work.
    """
    import warnings

    import pathspec  # 28 ms to import: only paid when there are patterns

    with warnings.catch_warnings():  # re's "Possible nested set" for a '[[' in a pattern
        warnings.simplefilter("ignore", FutureWarning)
        try:
            return pathspec.GitIgnoreSpec.from_lines(patterns, backend="simple")
        except re.error as exc:
            error = exc
        for pattern in patterns:  # which one: only now, each on its own
            try:
                pathspec.GitIgnoreSpec.from_lines([pattern], backend="simple")
            except re.error as exc:
                error = exc
                break
        raise ValueError(f"{pattern!r}: {error.msg}")


compiled_patterns = functools.lru_cache(maxsize=4)(compile_patterns)
""":func:`compile_patterns`, once per run's patterns in each process: the parent's check
before the walk is the compilation its first task and (under fork) its workers use."""


def _excluder(
    patterns: tuple[str, ...], only: str | None, listed: tuple[str, ...] | None
) -> Excluder:
    by_pattern = compiled_patterns(patterns)
    wanted = frozenset(listed) if listed is not None else frozenset()

    def leads_to_listed(directory: str) -> bool:
        assert listed is not None
        prefix = directory + "/"
        index = bisect.bisect_left(listed, prefix)
        return index < len(listed) and listed[index].startswith(prefix)

    def is_excluded(path: str, is_dir: bool) -> bool:
        if only is not None and path != only:
            return True
        if listed is not None and not (leads_to_listed(path) if is_dir else path in wanted):
            return True
        return by_pattern is not None and by_pattern(path, is_dir)

    return is_excluded


class Listing(NamedTuple):
    """What listing one directory found, besides the files to hash."""

    subdirs: list[tuple[str, Ancestry]]
    symlinks: list[tuple[str, str]]
    """(path, target)"""
    skipped: list[tuple[str, str]]
    """(path, SpecialKind value)"""
    errors: list[tuple[str, str, str]]
    """(path, ProblemKind value, message)"""


def list_directory(
    scope: Scope,
    is_excluded: Excluder | None,
    dir_fd: int,
    rel_dir: str,
    ancestry: Ancestry,
    found: Listing,
) -> list[str]:
    """List the open directory ``dir_fd`` (``rel_dir`` below the root): return the names of
    its regular files, sorted, and add everything else to ``found``.

    The loop is the walk's hot path, run once per entry of the tree: a plain name (no
    backslash, no possible drive form, not on the skip list, no excludes in force) costs
    only the d_type checks. Anything else takes :func:`_place`, which applies every rule.
    """
    prefix = f"{rel_dir}/" if rel_dir else ""
    careful = is_excluded is not None
    skip_names = _base_names(scope.skip_paths)
    names: list[str] = []
    subdirs = found.subdirs
    with os.scandir(dir_fd) as it:
        for entry in it:
            name = entry.name
            if careful or "\\" in name or name in skip_names or (not rel_dir and name[1:2] == ":"):
                if _place(scope, is_excluded, entry, prefix + name, dir_fd, ancestry, found):
                    names.append(name)
            elif entry.is_file(follow_symlinks=False):
                names.append(name)
            elif entry.is_dir(follow_symlinks=False):
                subdirs.append((prefix + name, _ancestry(scope, entry, ancestry)))
            elif _place(scope, is_excluded, entry, prefix + name, dir_fd, ancestry, found):
                names.append(name)
    names.sort()  # results come back nearly sorted, so the final sort is cheap
    return names


@functools.lru_cache(maxsize=4)
def _base_names(skip_paths: frozenset[str]) -> frozenset[str]:
    """Base names of ``skip_paths``: only entries with these names need the check."""
    return frozenset(path.rsplit("/", 1)[-1] for path in skip_paths)


def _place(
    scope: Scope,
    is_excluded: Excluder | None,
    entry: os.DirEntry[Any],
    rel: str,
    dir_fd: int,
    ancestry: Ancestry,
    found: Listing,
) -> bool:
    """Apply every rule to one entry; True when it is a regular file to hash."""
    if rel in scope.skip_paths:
        return False
    try:
        is_dir = entry.is_dir(follow_symlinks=False)
        # A link to be followed is excluded (or not) as what it leads to, once that is known.
        followed = scope.follow_symlinks and not is_dir and entry.is_symlink()
        if is_excluded is not None and not followed and is_excluded(rel, is_dir):
            return False
        reason = unsafe_reason(rel)
        if reason is not None:
            found.errors.append((rel, ProblemKind.UNSAFE_NAME, reason))
            return False
        if is_dir:
            found.subdirs.append((rel, _ancestry(scope, entry, ancestry)))
            return False
        if entry.is_file(follow_symlinks=False):
            return True
        if entry.is_symlink():
            return _symlink(scope, is_excluded, entry.name, rel, dir_fd, ancestry, found)
        found.skipped.append((rel, special_kind(entry.stat(follow_symlinks=False).st_mode)))
    except OSError as exc:
        found.errors.append((rel, *_listing_problem(exc)))
    return False


def _listing_problem(exc: OSError) -> tuple[str, str]:
    kind = ProblemKind.VANISHED if exc.errno == errno.ENOENT else ProblemKind.UNREADABLE
    return kind, exc.strerror or str(exc)


def _ancestry(scope: Scope, entry: os.DirEntry[Any], ancestry: Ancestry) -> Ancestry:
    """The ancestry of a subdirectory; only tracked when links are followed."""
    if not scope.follow_symlinks:
        return ()
    st = entry.stat(follow_symlinks=False)
    return (*ancestry, (st.st_dev, st.st_ino))


def _symlink(
    scope: Scope,
    is_excluded: Excluder | None,
    name: str,
    rel: str,
    dir_fd: int,
    ancestry: Ancestry,
    found: Listing,
) -> bool:
    """Record a symlink, or with ``follow_symlinks`` follow it when it stays in the root.

    A link followed is subject to the excludes as what it leads to (a directory, for a
    pattern such as ``build/`` or for the paths a sums file lists below it); one not
    followed, as the link it is (:func:`_place` has checked those already when links are
    not followed)."""
    target = os.readlink(name, dir_fd=dir_fd)
    if not scope.follow_symlinks:
        found.symlinks.append((rel, target))
        return False
    path = os.path.join(scope.root, rel)
    real_root = os.path.realpath(scope.root)
    resolved = os.path.realpath(path)
    try:
        st = os.stat(path) if os.path.commonpath([real_root, resolved]) == real_root else None
    except OSError as exc:
        if is_excluded is not None and is_excluded(rel, False):
            return False
        if exc.errno == errno.ELOOP:  # links pointing at each other in a circle
            found.errors.append((rel, ProblemKind.LOOP, f"symbolic link loop ({target})"))
        else:  # dangling: nothing to follow, so it stays a symlink
            found.symlinks.append((rel, target))
        return False
    if is_excluded is not None and is_excluded(rel, st is not None and stat.S_ISDIR(st.st_mode)):
        return False
    if st is None:  # it leads out of the root: recorded, never followed
        found.symlinks.append((rel, target))
        return False
    if stat.S_ISREG(st.st_mode):
        return True
    if stat.S_ISDIR(st.st_mode):
        key = (st.st_dev, st.st_ino)
        if key in ancestry:
            found.errors.append((rel, ProblemKind.LOOP, f"leads back to an ancestor ({target})"))
        else:
            found.subdirs.append((rel, (*ancestry, key)))
        return False
    found.skipped.append((rel, special_kind(st.st_mode)))
    return False
