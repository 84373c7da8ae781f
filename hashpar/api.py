"""The library's entry points: make a manifest of a tree (verify and diff build on it)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from concurrent.futures import Executor
from datetime import UTC, datetime

from hashpar import __version__
from hashpar.engine import Tuning, default_jobs, hash_tree
from hashpar.errors import UsageError
from hashpar.events import ProgressCallback, ignore_progress
from hashpar.models import Algorithm, Manifest, Snapshot
from hashpar.scan import Walker

__all__ = ["make_manifest", "scan_tree"]


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
) -> Snapshot:
    """Walk and hash ``root`` (a directory or a single file) and return what was found."""
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise UsageError(f"jobs must be at least 1, not {jobs}")
    try:
        st = os.stat(root)
    except OSError as exc:
        raise UsageError(f"{root}: {exc.strerror}") from None
    patterns = list(excludes)
    is_excluded = _exclude_matcher(patterns)
    if os.path.isdir(root):
        walk_root = os.path.abspath(root)
    elif os.path.isfile(root):  # a single file: walk its directory, keep only that name
        walk_root, only = os.path.split(os.path.abspath(root))

        def is_excluded(path: str, is_dir: bool, _only: str = only) -> bool:
            return path != _only
    else:
        raise UsageError(f"{root}: not a directory or regular file (mode {st.st_mode:o})")
    walker = Walker(
        root=walk_root,
        follow_symlinks=follow_symlinks,
        is_excluded=is_excluded,
        has_excludes=bool(patterns) or not os.path.isdir(root),
        skip_paths=_relative_paths(walk_root, skip),
        batch_files=tuning.batch_files,
    )
    return hash_tree(
        walker, algorithm, jobs=jobs, tuning=tuning, executor=executor, on_progress=on_progress
    )


def _exclude_matcher(patterns: Iterable[str]) -> Callable[[str, bool], bool]:
    """A predicate for the walker from gitignore patterns (pathspec does the matching)."""
    lines = list(patterns)
    if not lines:
        return lambda path, is_dir: False
    import pathspec  # 28 ms to import: only paid when there are patterns

    try:
        spec = pathspec.GitIgnoreSpec.from_lines(lines)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"bad --exclude pattern: {exc}") from None

    def is_excluded(path: str, is_dir: bool) -> bool:
        return bool(spec.match_file(path + "/" if is_dir else path))

    return is_excluded


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
