"""The library's entry points: make a manifest of a tree, verify a tree, diff two manifests."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import stat
import sys
from collections.abc import Callable, Collection, Generator, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Executor
from datetime import UTC, datetime
from typing import TYPE_CHECKING, BinaryIO, TypeVar

from hashpar import __version__
from hashpar.engine import Settle, Tuning, default_jobs, hash_tree
from hashpar.errors import ManifestError, UsageError
from hashpar.events import ProgressCallback, ignore_progress
from hashpar.manifest import CanonicalReader, decode_manifest, drained
from hashpar.models import Algorithm, FileEntry, Manifest, Problem, ProblemKind, Snapshot
from hashpar.names import input_name
from hashpar.scan import Scope, compiled_patterns, special_kind

if TYPE_CHECKING:  # verify and diff import what they use: make does not pay for it
    from hashpar.compare import Report

__all__ = [
    "MAX_MANIFEST_BYTES",
    "ManifestFile",
    "diff_manifests",
    "load_manifest",
    "make_manifest",
    "open_manifest",
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
    alongside: Sequence[Callable[[], object]] = (),
) -> Snapshot:
    """Walk and hash ``root`` (a directory or a single file) and return what was found.

    With ``listed``, just those relative paths are looked at (and the directories leading to
    them listed): a check of the files a sums file lists, not a search for new ones.
    ``settle`` is offered each result's files at once (paths, entries); those it flags True
    are left out of the snapshot. ``alongside`` steps run while the first tasks do, and an
    exception from one ends the run (see :func:`hash_tree`).
    """
    jobs = default_jobs() if jobs is None else jobs
    if jobs < 1:
        raise UsageError(f"jobs must be at least 1, not {jobs}")
    try:
        st = os.stat(root)
    except OSError as exc:
        raise UsageError(f"{root or repr(root)}: {exc.strerror}") from None  # '': say so
    patterns = tuple(excludes)
    try:
        compiled_patterns(patterns)  # a bad pattern is a usage error here, not in a worker
    except (ValueError, TypeError) as exc:
        raise UsageError(f"bad --exclude pattern: {exc}") from None
    only = None
    if stat.S_ISDIR(st.st_mode):
        walk_root = os.path.abspath(root)
    elif stat.S_ISREG(st.st_mode):  # a single file: walk its directory, keep only that name
        walk_root, only = os.path.split(os.path.abspath(root))
    else:
        kind = special_kind(st.st_mode)  # never opened, as in a walk
        raise UsageError(f"{root}: not a directory or regular file but a {kind}; nothing to hash")
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


def _copies_of(manifest_path: str | os.PathLike[str], recorded: str, base: str) -> list[str]:
    """The copy of the manifest file in the tree ``base``, when there is one: the file at
    the manifest's place relative to its ``recorded`` root, if its bytes are the manifest's.

    A copy made after ``make -o tree/manifest.json`` holds the manifest at the same place;
    it is no more new than the manifest is part of its own tree. Only identical bytes say
    so: a relative root is resolved against the current directory (as verify resolves it),
    which need not be where make ran, and a listed file may lie at that place in the copy
    (it is then compared, changed or not, as any other).
    """
    import filecmp

    recorded = os.path.abspath(recorded)
    if not os.path.isdir(recorded):  # a manifest of one file: its directory
        recorded = os.path.dirname(recorded)
    copies = []
    for place in _relative_paths(recorded, [manifest_path]):
        candidate = os.path.join(base, place)
        with contextlib.suppress(OSError):
            if os.path.isfile(candidate) and filecmp.cmp(candidate, manifest_path, shallow=False):
                copies.append(candidate)
    return copies


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


class ManifestFile:
    """A manifest file opened by :func:`open_manifest`: its settings at once, its entries
    when :meth:`read` is called (once).

    :func:`verify_tree` takes one in place of a :class:`Manifest`: it starts walking the tree
    with the ``header``'s settings (root, algorithm, excludes, symlink policy) and reads the
    entries while the first task runs. A manifest that is not in the canonical form hashpar
    writes (or standard input) is decoded whole when opened, and :meth:`read` returns it.
    Close it (or use it as a context manager) if it is never read.
    """

    def __init__(
        self,
        name: str,
        header: Manifest,
        *,
        rest: CanonicalReader | None = None,
        stamp: tuple[int, int] | None = None,
    ) -> None:
        self.name = name
        """How errors name the file: its path, or "standard input"."""
        self.header = dataclasses.replace(header, snapshot=Snapshot())
        """The manifest's settings, and no entries."""
        self._whole: Manifest | None = header if rest is None else None
        self._rest = rest
        """The canonical reader of the entries still to read (None: decoded whole)."""
        self._stamp = stamp
        """The file's size and mtime when it was opened, before a byte was read."""
        self._unread = True
        self._closed = False

    def read(self) -> Manifest:
        """The whole manifest, validated as :func:`load_manifest` validates it.

        Raises ManifestError, naming the file, as :func:`load_manifest` does; also if the
        file changed between :func:`open_manifest` and the end of this read (its size or
        modification time: a rewrite in place), since the entries could then belong to
        another manifest than the header. ValueError if called again, or after close().
        """
        return drained(self._read_in_pieces())

    def _read_in_pieces(self) -> Generator[None, None, Manifest]:
        """:meth:`read`, a piece at a time (for verify, which reads between scheduling
        rounds: hashpar.engine.hash_tree's ``alongside``)."""
        if not self._unread:
            raise ValueError(f"{self.name}: already read")
        if self._closed:
            raise ValueError(f"{self.name}: closed before it was read")
        self._unread = False
        try:
            return (yield from self._pieces())
        finally:
            self.close()

    def _pieces(self) -> Generator[None, None, Manifest]:
        whole, self._whole = self._whole, None
        if whole is not None:
            return whole
        rest = self._rest
        assert rest is not None  # by __init__: one of the two
        try:
            manifest = yield from rest.read_in_pieces()
            if manifest is None:
                rest.stream.seek(0)  # not in canonical form after all: decoded whole
                data = _read_capped(rest.stream, self.name, rest.max_bytes)
            changed = _file_stamp(rest.stream) != self._stamp
        except OSError as exc:
            raise _unreadable(self.name, exc) from None
        if changed:
            raise ManifestError(f"{self.name}: changed while it was being read")
        return _decoded(data, self.name) if manifest is None else manifest

    @property
    def is_read(self) -> bool:
        """True once :meth:`read` has been called."""
        return not self._unread

    def close(self) -> None:
        """Close the file (reading it closes it too)."""
        self._closed = True
        if self._rest is not None:
            self._rest.stream.close()

    def __enter__(self) -> ManifestFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _file_stamp(stream: BinaryIO, st: os.stat_result | None = None) -> tuple[int, int]:
    """What a rewrite of the open file in place changes: its size and mtime.

    Not its ctime: renaming another file over it, a new hard link, ``chmod`` change that
    too, and none of them changes what the open file reads (``hashpar make -o`` itself
    replaces a manifest by a rename).
    """
    st = os.fstat(stream.fileno()) if st is None else st
    return st.st_size, st.st_mtime_ns


def open_manifest(
    path: str | os.PathLike[str], *, max_bytes: int = MAX_MANIFEST_BYTES
) -> ManifestFile:
    """Open the manifest in file ``path``, or standard input for the string ``"-"``, reading
    only what its settings need when it is in canonical form (see :class:`ManifestFile`).

    Raises ManifestError, naming the file, for anything unusable found so far: unreadable,
    larger than ``max_bytes``, or not a valid manifest (see
    :func:`hashpar.manifest.decode_manifest`). Input that does not start like a JSON object
    is rejected after its first chunk, so ``hashpar verify /dev/zero`` fails at once instead
    of reading forever.
    """
    stdin = isinstance(path, str) and path == "-"  # a path object is always a file
    path = os.fspath(path)
    name = input_name(path) if stdin else path
    stream: BinaryIO | None = None
    try:
        if stdin:
            data = _read_capped(sys.stdin.buffer, name, max_bytes)
        else:
            stream = open(path, "rb")  # noqa: SIM115 (kept open by the ManifestFile)
            st = os.fstat(stream.fileno())
            if stat.S_ISREG(st.st_mode):
                if st.st_size > max_bytes:  # refused before a byte is read or decoded
                    raise _too_big(name, max_bytes)
                reader = CanonicalReader.open(stream, max_bytes)
                if reader is not None:
                    opened = ManifestFile(
                        name, reader.header, rest=reader, stamp=_file_stamp(stream, st)
                    )
                    stream = None
                    return opened
                stream.seek(0)  # not in canonical form: decoded whole, problems named
            data = _read_capped(stream, name, max_bytes)
    except OSError as exc:
        raise _unreadable(name, exc) from None
    finally:
        if stream is not None:
            stream.close()
    return ManifestFile(name, _decoded(data, name))


def load_manifest(path: str | os.PathLike[str], *, max_bytes: int = MAX_MANIFEST_BYTES) -> Manifest:
    """Read and validate the manifest in file ``path``, or standard input for the string
    ``"-"``.

    Raises ManifestError, naming the file, for anything unusable: unreadable, larger than
    ``max_bytes``, or not a valid manifest (see :func:`hashpar.manifest.decode_manifest`).
    Input that does not start like a JSON object is rejected after its first chunk, so
    ``hashpar verify /dev/zero`` fails at once instead of reading forever.
    """
    with open_manifest(path, max_bytes=max_bytes) as opened:
        return opened.read()


def _unreadable(name: str, exc: OSError) -> ManifestError:
    return ManifestError(f"cannot read manifest {name}: {exc.strerror or exc}")


def _decoded(data: bytes, name: str) -> Manifest:
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
    manifest: Manifest | ManifestFile,
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
    of the walk and of the comparison (a manifest cannot record its own digest); so is, with
    ``root``, the file at its place in that other tree (a copy holds a copy of it).

    Given a :class:`ManifestFile` (:func:`open_manifest`), the walk starts from its header
    and the entries are read while the workers hash, a piece at a time between scheduling
    rounds (``executor``; without one, after the in-process first task, at once): loading
    a big manifest then costs little wall time. Its errors (ManifestError, naming the file)
    stop the run as any other would.

    The tree is walked from the root, never opened at paths the manifest names, so no entry
    can make hashpar read outside the root. An entry below another entry (which no walk
    produces) rejects the manifest with ManifestError, before anything is reported; the
    check runs as the entries are read, while the first files are hashed. An entry below a
    directory that is now a symlink, wherever it leads, is missing and the link is new: the
    walk does not follow it (with ``follow_symlinks``, not out of the root), and nothing
    beyond it is looked at. Unreadable entries are errors in the report, never exceptions;
    UsageError when the root does not exist.

    Each file that matches its entry is settled as its result arrives, out of a copy of the
    files section. ``consume=True`` settles them out of ``manifest``'s own files dict instead
    (which is then left holding only what did not match): for a caller that loaded the
    manifest for this one run, as the command does; a ManifestFile's entries are always
    settled so. The copy is about 42 bytes per entry: on 1,000,000 entries, the peak of the
    command fell from 401 to 368 bytes per entry (PSS).
    """
    from hashpar.compare import compare
    from hashpar.guard import DiskProbe

    with _manifest_errors_first(manifest):
        settings = manifest.header if isinstance(manifest, ManifestFile) else manifest
        tree = os.fspath(settings.root if root is None else root)
        try:
            st = os.stat(tree)
        except OSError as exc:
            hint = "" if root is not None else " (use --root to check a copy elsewhere)"
            raise UsageError(f"cannot verify {tree}: {exc.strerror}{hint}") from None
        try:  # valid to pathspec, as decoding checked; now: can a walk match them?
            compiled_patterns(tuple(settings.excludes))
        except (ValueError, TypeError) as exc:
            name = f"{manifest.name}: " if isinstance(manifest, ManifestFile) else ""
            raise ManifestError(f"{name}excludes: {exc}") from None
        base = os.path.abspath(tree)
        if not stat.S_ISDIR(st.st_mode):  # a manifest of one file: its directory is walked
            base = os.path.dirname(base)
        skip: list[str | os.PathLike[str]] = []
        if manifest_path is not None and manifest_path != "-":
            skip.append(manifest_path)
            if root is not None:  # a copy of the tree may hold a copy of the manifest
                skip.extend(_copies_of(manifest_path, settings.root, base))
        expected = _Expected(manifest, _relative_paths(base, skip), consume=consume)
        listed = None
        if not new_files:  # the walk needs the entries' paths: read them first
            expected.load()
            listed = _paths(expected.manifest.snapshot)
        snapshot = scan_tree(
            tree,
            algorithm=settings.algorithm,
            jobs=jobs,
            excludes=settings.excludes,
            follow_symlinks=settings.follow_symlinks,
            skip=skip,
            tuning=tuning,
            executor=executor,
            on_progress=on_progress,
            listed=listed,
            settle=expected.settle,
            alongside=[expected.loading],
        )
        settled = expected.listed_files - len(expected.pending)
        unsettled = dataclasses.replace(
            expected.manifest,
            snapshot=dataclasses.replace(expected.manifest.snapshot, files=expected.pending),
        )
        report = compare(unsettled, snapshot, ignore_new=ignore_new)
        # A file replaced by an empty (or excluded) directory leaves no trace in the walk.
        # Asked of the disk only for what is missing, through real directories only: an
        # entry below a symlink stays missing, and nothing beyond the link is looked at.
        probe = DiskProbe(base)
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


@contextlib.contextmanager
def _manifest_errors_first(source: Manifest | ManifestFile) -> Iterator[None]:
    """A manifest file's problems come before a usage error found while its entries were
    still unread (a missing root, say), as when the whole file was read before anything
    else: a broken manifest is what to fix first. The file is closed however the run ends."""
    try:
        yield
    except UsageError:
        if isinstance(source, ManifestFile) and not source.is_read:
            source.read()  # its ManifestError, if any, replaces the usage error
        raise
    finally:
        if isinstance(source, ManifestFile):
            source.close()


class _Expected:
    """What verify compares the tree with: the manifest's entries, ready after :meth:`load`
    (the engine's first step alongside the walk, before any file is settled)."""

    def __init__(
        self, source: Manifest | ManifestFile, skip: frozenset[str], *, consume: bool
    ) -> None:
        self._source: Manifest | ManifestFile | None = source
        self._skip = skip
        self._consume = consume
        self._name = source.name if isinstance(source, ManifestFile) else None
        self.manifest = source if isinstance(source, Manifest) else source.header
        self.pending: dict[str, FileEntry] = {}
        """Entries not (yet) settled: verify compares what is left of them at the end."""
        self.listed_files = 0

    def load(self) -> None:
        """Read the entries (once), leave out ``skip`` and reject entries below leaves."""
        drained(self.loading())

    def loading(self) -> Generator[None, None, None]:
        """:meth:`load`, a piece at a time: a manifest file is read 256 KiB per piece, so
        the engine keeps the workers fed between pieces (``alongside`` in hash_tree).
        Measured (benchmarks/README.md, *Defaults*): the verify of small SHA-256 0.834 ->
        0.799 s against reading it whole while the workers waited."""
        from hashpar.guard import reject_entries_below_leaves

        source, self._source = self._source, None
        if source is None:
            return
        owned = self._consume or isinstance(source, ManifestFile)
        if isinstance(source, ManifestFile):
            manifest = yield from source._read_in_pieces()
        else:
            manifest = source
        expected = _without(manifest, self._skip)
        self.manifest = expected
        self.named(reject_entries_below_leaves)
        files = expected.snapshot.files
        owned = owned or expected is not manifest  # _without made new dicts
        self.listed_files = len(files)
        if type(files) is dict:
            self.pending = files if owned else files.copy()
        else:  # a FileTable (make's): copied from items(), so it builds no index by path
            self.pending = dict(files.items())

    def named(self, check: Callable[[Snapshot], None], entries: Snapshot | None = None) -> None:
        """Run ``check`` on the entries (or on ``entries``); its ManifestError names the
        file, if one was read."""
        try:
            check(self.manifest.snapshot if entries is None else entries)
        except ManifestError as exc:
            if self._name is None:
                raise
            raise ManifestError(f"{self._name}: {exc}") from None

    def settle(self, paths: list[str], seen: list[FileEntry]) -> list[bool]:
        """Of a result's files, those that match their entries are ok, whatever else happens
        in the run, so both are dropped at once; True for each of them.

        Exactly :func:`hashpar.compare.compare`'s rule (:meth:`FileEntry.matches`). The other
        categories need the whole picture (a missing file may be half of a move), so anything
        that does not match is kept for the comparison.

        A result of an unchanged tree is all equal entries (same size, digest and mtime):
        looked up and compared in C, with no Python call per file (benchmarks/README.md,
        *Defaults*). A result with any other file is decided file by file.
        """
        pending = self.pending
        recorded = list(map(pending.get, paths))
        if recorded == seen:
            settled = [True] * len(paths)
        else:
            settled = [
                entry is not None and (entry == now or entry.matches(now))
                for entry, now in zip(recorded, seen, strict=True)
            ]
        for path in itertools.compress(paths, settled):
            del pending[path]
        return settled


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
