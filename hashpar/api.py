"""The library's entry points: make a manifest of a tree, verify a tree, diff two manifests."""

from __future__ import annotations

import dataclasses
import functools
import os
import stat
import sys
from collections.abc import Callable, Collection, Iterable, Mapping
from concurrent.futures import Executor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, BinaryIO, TypeVar

from hashpar import __version__
from hashpar.engine import Settle, Tuning, default_jobs, hash_tree
from hashpar.errors import ManifestError, UsageError
from hashpar.events import ProgressCallback, ignore_progress
from hashpar.manifest import decode_manifest, read_canonical
from hashpar.models import Algorithm, FileEntry, Manifest, Problem, ProblemKind, Snapshot
from hashpar.scan import Scope, compile_patterns

if TYPE_CHECKING:  # verify and diff import what they use: make does not pay for it
    from hashpar.compare import Report

__all__ = [
    "MAX_MANIFEST_BYTES",
    "diff_manifests",
    "load_manifest",
    "make_manifest",
    "scan_tree",
    "verify_tree",
]

_V = TypeVar("_V")


def make_manifest(
    path: str | os.PathLike[str],
    *,
    algorithm: Algorithm | str = Algorithm.BLAKE3,
    jobs: int | None = None,
    excludes: Iterable[str] = (),
    follow_symlinks: bool = False,
    skip: Iterable[str | os.PathLike[str]] = (),
    tuning: Tuning = Tuning(),
    executor: Executor | None = None,
    on_progress: ProgressCallback = ignore_progress,
) -> Manifest:
    """Hash every regular file under ``path`` (a directory, or a single file) into a Manifest.

    ``jobs`` worker processes (default: the CPUs this process may use) share the work;
    ``excludes`` are gitignore patterns relative to ``path``; ``skip`` names files to leave
    out silently (hashpar's own output). Unreadable entries are recorded in
    ``manifest.snapshot.errors``, never raised. Raises UsageError for unusable arguments.
    """
    root = os.fspath(path)
    algorithm = Algorithm(algorithm)
    patterns = tuple(excludes)
    snapshot = scan_tree(
        root,
        algorithm=algorithm,
        jobs=jobs,
        excludes=patterns,
        follow_symlinks=follow_symlinks,
        skip=skip,
        tuning=tuning,
        executor=executor,
        on_progress=on_progress,
    )
    return Manifest(
        algorithm=algorithm,
        root=root,
        created=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        generator=f"hashpar {__version__}",
        snapshot=snapshot,
        excludes=patterns,
        follow_symlinks=follow_symlinks,
    )


def scan_tree(
    root: str,
    *,
    algorithm: Algorithm,
    jobs: int | None = None,
    excludes: Iterable[str] = (),
    follow_symlinks: bool = False,
    skip: Iterable[str | os.PathLike[str]] = (),
    tuning: Tuning = Tuning(),
    executor: Executor | None = None,
    on_progress: ProgressCallback = ignore_progress,
    listed: Collection[str] | None = None,
    settle: Settle | None = None,
    alongside: Callable[[], object] | None = None,
) -> Snapshot:
    """Walk and hash ``root`` (a directory or a single file) and return what was found.

    With ``listed``, just those relative paths are looked at (and the directories leading to
    them listed): a check of the files a sums file lists, not a search for new ones. Files
    ``settle`` returns True for are left out of the snapshot; ``alongside`` runs while the
    first tasks do, and an exception from it ends the run (see :func:`hash_tree`).
    """
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise UsageError(f"jobs must be at least 1, not {jobs}")
    try:
        st = os.stat(root)
    except OSError as exc:
        raise UsageError(f"{root}: {exc.strerror}") from None
    patterns = tuple(excludes)
    try:
        compile_patterns(patterns)  # a bad pattern is a usage error here, not in a worker
    except (ValueError, TypeError) as exc:
        raise UsageError(f"bad --exclude pattern: {exc}") from None
    only = None
    if stat.S_ISDIR(st.st_mode):
        walk_root = os.path.abspath(root)
    elif stat.S_ISREG(st.st_mode):  # a single file: walk its directory, keep only that name
        walk_root, only = os.path.split(os.path.abspath(root))
    else:
        raise UsageError(f"{root}: not a directory or regular file (mode {st.st_mode:o})")
    scope = Scope(
        root=walk_root,
        follow_symlinks=follow_symlinks,
        patterns=patterns,
        only=only,
        listed=None if listed is None else tuple(sorted(set(listed))),
        skip_paths=_relative_paths(walk_root, skip),
    )
    return hash_tree(
        scope,
        algorithm,
        jobs=jobs,
        tuning=tuning,
        executor=executor,
        on_progress=on_progress,
        settle=settle,
        alongside=alongside,
    )


def _relative_paths(root: str, paths: Iterable[str | os.PathLike[str]]) -> frozenset[str]:
    """The given paths relative to ``root``, for those that lie inside it."""
    real_root = os.path.realpath(root)
    inside = set()
    for path in paths:
        parent, name = os.path.split(os.path.abspath(os.fspath(path)))
        real = os.path.join(os.path.realpath(parent), name)
        if os.path.commonpath([real_root, real]) == real_root and real != real_root:
            inside.add(os.path.relpath(real, real_root).replace(os.sep, "/"))
    return frozenset(inside)


# -- verify and diff ----------------------------------------------------------------------------

MAX_MANIFEST_BYTES = 4 << 30
"""The largest manifest :func:`load_manifest` reads (about 25 million entries; see
docs/verify.md for the measurement). Anything bigger is refused before it fills memory."""

_READ_CHUNK = 1 << 20
_ONE_READ_MAX = 1 << 30


def load_manifest(path: str, *, max_bytes: int = MAX_MANIFEST_BYTES) -> Manifest:
    """Read and validate the manifest in file ``path``, or standard input for ``"-"``.

    Raises ManifestError, naming the file, for anything unusable: unreadable, larger than
    ``max_bytes``, or not a valid manifest (see :func:`hashpar.manifest.decode_manifest`).
    Input that does not start like a JSON object is rejected after its first chunk, so
    ``hashpar verify /dev/zero`` fails at once instead of reading forever.
    """
    name = "standard input" if path == "-" else path
    try:
        if path == "-":
            data = _read_capped(sys.stdin.buffer, name, max_bytes)
        else:
            with open(path, "rb") as stream:
                st = os.fstat(stream.fileno())
                if stat.S_ISREG(st.st_mode):
                    if st.st_size > max_bytes:  # refused before a byte is read or decoded
                        raise _too_big(name, max_bytes)
                    manifest = read_canonical(stream, max_bytes)
                    if manifest is not None:
                        return manifest
                    stream.seek(0)  # not in canonical form: decoded whole, problems named
                data = _read_capped(stream, name, max_bytes)
    except OSError as exc:
        raise ManifestError(f"cannot read manifest {name}: {exc.strerror or exc}") from None
    try:
        return decode_manifest(data)
    except ManifestError as exc:
        raise ManifestError(f"{name}: {exc}") from None


def _read_capped(stream: BinaryIO, name: str, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    size = _regular_size(stream)
    while chunk := stream.read(_READ_CHUNK if chunks or size is None else size + 1):
        start = chunk[:_READ_CHUNK].lstrip(b" \t\r\n")
        if not chunks and start and not start.startswith(b"{"):
            return chunk  # not a JSON object at all (or a BOM): decoding says exactly why
        chunks.append(chunk)
        total += len(chunk)
        if total > max_bytes:
            raise _too_big(name, max_bytes)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_big(name: str, max_bytes: int) -> ManifestError:
    return ManifestError(
        f"{name}: larger than {max_bytes} bytes; refusing to load it (not a manifest?)"
    )


def _regular_size(stream: BinaryIO) -> int | None:
    """The size of a regular file small enough to read in one call (no join, no copy;
    measured on a 16 MB manifest: 14.4 -> 1.0 ms), or None: read in chunks, so that
    /dev/zero or a growing file still meets the cap."""
    try:
        st = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) and st.st_size <= _ONE_READ_MAX else None


def verify_tree(
    manifest: Manifest,
    *,
    root: str | os.PathLike[str] | None = None,
    manifest_path: str | os.PathLike[str] | None = None,
    jobs: int | None = None,
    ignore_new: bool = False,
    tuning: Tuning = Tuning(),
    executor: Executor | None = None,
    on_progress: ProgressCallback = ignore_progress,
    new_files: bool = True,
    consume: bool = False,
) -> Report:
    """Re-hash the tree a manifest describes and report every difference (docs/verify.md).

    ``new_files=False`` checks only the paths the manifest lists, for input that does not
    say where its tree ends (a sums file): nothing else is walked or hashed, no new file or
    move can be found, and the report says so (``new_files_checked``).

    ``root`` defaults to ``manifest.root`` (relative to the current directory). The walk uses
    the manifest's algorithm, excludes and symlink policy, in parallel exactly as
    :func:`make_manifest` does. ``manifest_path``, when it lies inside the root, is left out
    of the walk and of the comparison (a manifest cannot record its own digest).

    The tree is walked from the root, never opened at paths the manifest names, so no entry
    can make hashpar read outside the root. An entry below a symlink that leads outside the
    root is still rejected with ManifestError: that check runs while the first files are
    hashed, and stops the run before anything is reported. Unreadable entries
    are errors in the report, never exceptions; UsageError when the root does not exist.

    Each file that matches its entry is settled as its result arrives, out of a copy of the
    files section. ``consume=True`` settles them out of ``manifest``'s own files dict instead
    (which is then left holding only what did not match): for a caller that loaded the
    manifest for this one run, as the command does. The copy is about 42 bytes per entry:
    on 1,000,000 entries, the peak of the command fell from 401 to 368 bytes per entry (PSS).
    """
    from hashpar.compare import compare
    from hashpar.guard import DiskProbe, reject_entries_below_leaves

    tree = os.fspath(manifest.root if root is None else root)
    try:
        st = os.stat(tree)
    except OSError as exc:
        hint = "" if root is not None else " (use --root to check a copy elsewhere)"
        raise UsageError(f"cannot verify {tree}: {exc.strerror}{hint}") from None
    base = os.path.abspath(tree)
    if not stat.S_ISDIR(st.st_mode):  # a manifest of one file: its directory is walked
        base = os.path.dirname(base)
    skip: list[str | os.PathLike[str]] = []
    if manifest_path is not None and manifest_path != "-":
        skip.append(manifest_path)
    expected = _without(manifest, _relative_paths(base, skip))
    reject_entries_below_leaves(expected.snapshot)
    probe = DiskProbe(base)
    # The check against the disk runs while the workers hash the first tasks (serial, it
    # was 34 ms of a 669 ms verify of the benchmark's real tree): reading the tree is what
    # the run does anyway, and the walk never opens a path the manifest names.
    check_links = None
    if stat.S_ISDIR(st.st_mode):
        check_links = functools.partial(probe.reject_escaping_links, expected.snapshot)
    # Files that match as they are hashed are settled at once, never kept twice: what is
    # left of ``pending`` and of the snapshot is compared below; the ok counts are added.
    files = expected.snapshot.files
    listed_files = len(files)
    owned = consume or expected is not manifest  # _without made new dicts
    pending = files if owned and type(files) is dict else dict(files)
    settle = _settler(pending)
    listed = None if new_files else _paths(expected.snapshot)
    snapshot = scan_tree(
        tree,
        algorithm=manifest.algorithm,
        jobs=jobs,
        excludes=manifest.excludes,
        follow_symlinks=manifest.follow_symlinks,
        skip=skip,
        tuning=tuning,
        executor=executor,
        on_progress=on_progress,
        listed=listed,
        settle=settle,
        alongside=check_links,
    )
    settled = listed_files - len(pending)
    unsettled = dataclasses.replace(
        expected, snapshot=dataclasses.replace(expected.snapshot, files=pending)
    )
    report = compare(unsettled, snapshot, ignore_new=ignore_new)
    # A file replaced by an empty (or excluded) directory leaves no trace in the walk.
    now_dirs = {path for path in report.missing if probe.is_directory(path)}
    if now_dirs:
        problem = Problem(ProblemKind.TYPE_CHANGED, "was a regular file, is now a directory")
        errors = {**snapshot.errors, **dict.fromkeys(now_dirs, problem)}
        snapshot = dataclasses.replace(snapshot, errors=errors)
        report = compare(unsettled, snapshot, ignore_new=ignore_new)
    return dataclasses.replace(
        report,
        verified=report.verified + settled,
        ok=report.ok + settled,
        new_files_checked=new_files,
    )


def _settler(pending: dict[str, FileEntry]) -> Settle:
    """A settle predicate for verify: a file that matches its entry in ``pending`` is ok,
    whatever else happens in the run, so both are dropped at once.

    Exactly :func:`hashpar.compare.compare`'s rule (:meth:`FileEntry.matches`). The other
    categories need the whole picture (a missing file may be half of a move), so anything
    that does not match is kept for the comparison.
    """

    def settle(path: str, seen: FileEntry) -> bool:
        entry = pending.get(path)
        # Equal entries (the unchanged file: same size, digest and mtime) match, decided in C
        # without the call to matches() that an mtime-only change or an imported entry needs.
        if entry is None or (entry != seen and not entry.matches(seen)):
            return False
        del pending[path]
        return True

    return settle


def _paths(snapshot: Snapshot) -> set[str]:
    """Every path a snapshot names, in any section."""
    sections: Iterable[Mapping[str, object]] = (
        snapshot.files,
        snapshot.symlinks,
        snapshot.skipped,
        snapshot.errors,
    )
    return {path for section in sections for path in section}


def diff_manifests(old: Manifest, new: Manifest) -> Report:
    """What changed from ``old`` to ``new``, without touching the disk (see compare.diff).

    Raises ManifestError (exit 2) when the two use different algorithms.
    """
    from hashpar.compare import diff

    return diff(old, new)


def _without(manifest: Manifest, paths: frozenset[str]) -> Manifest:
    """``manifest`` minus ``paths`` in every section (the manifest's own file, if listed)."""
    snap = manifest.snapshot
    if not paths:
        return manifest

    def drop(section: Mapping[str, _V]) -> dict[str, _V]:
        return {k: v for k, v in section.items() if k not in paths}

    snapshot = Snapshot(
        drop(snap.files), drop(snap.symlinks), drop(snap.skipped), drop(snap.errors)
    )
    return dataclasses.replace(manifest, snapshot=snapshot)
