"""``hashpar verify``: re-hash a tree and report every difference from its manifest."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import os
import stat
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

import typer

from hashpar.cli import EXIT_DIFFERENT, EXIT_OK
from hashpar.cli.app import DebugOption, JobsOption, app
from hashpar.cli.cmd_import import AlgoOption, FormatOption, report_malformed
from hashpar.cli.convert import ConvertingCommand
from hashpar.errors import ManifestError, UsageError
from hashpar.formats.records import ChecksumFormat, LineProblems
from hashpar.names import input_name

if TYPE_CHECKING:
    from collections.abc import Iterator
    from concurrent.futures import Executor

    from hashpar.api import ManifestFile
    from hashpar.cli.output import Output
    from hashpar.compare import Report
    from hashpar.models import Algorithm, Manifest

__all__ = ["Input", "load_input", "verify", "write_report"]

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON object (see README) instead of lines.")
]
ReportQuietOption = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="Print only the problems: no summary, no progress."),
]


@dataclass(frozen=True)
class Input:
    """What verify checks: a manifest, the unused lines of its source, and whether the
    source says where its tree ends (so that new files can be looked for)."""

    manifest: Manifest | ManifestFile
    """A hashpar manifest file is opened, not yet read: verify reads it alongside the walk."""
    problems: LineProblems = field(default_factory=LineProblems)
    new_files: bool = True


def load_input(
    source: str,
    *,
    algo: Algorithm | None = None,
    format: ChecksumFormat | None = None,
    root: str | None = None,
    new_files: bool | None = None,
) -> Input:
    """Turn verify's MANIFEST argument (a path, or "-" for stdin) into what to check.

    A hashpar manifest (JSON), a GNU/BSD sums file or a BagIt bag (a directory with
    bagit.txt), told apart by content unless ``format`` says (docs/formats.md).
    A manifest or bag lists its whole tree, so new files are looked for unless ``new_files``
    is False; a sums file does not, so only with ``root`` or ``new_files=True``. Unused
    lines go to stderr as ``hashpar: FILE:LINE: reason`` (the first few: report_malformed)
    and into the report.
    """
    from hashpar.api import open_manifest
    from hashpar.formats import NoChecksumLines, load_checksums
    from hashpar.formats.files import is_manifest_file, read_checksums

    is_dir = source != "-" and os.path.isdir(source)
    if format is None and source != "-" and _not_checksums(source):
        if is_dir:  # what the user most likely meant: a bag, or the tree itself
            raise UsageError(
                f"{source}: a directory but not a BagIt bag (no bagit.txt); verify takes a "
                "manifest, a sums file or a bag"
            )
        return Input(open_manifest(source))  # it says exactly why it cannot be read
    try:
        if is_dir:
            parsed = load_checksums(source, algorithm=algo, only=format, root=root)
        elif format is None and source != "-" and is_manifest_file(source):
            return _whole_tree(open_manifest(source), algo, new_files)  # a piece at a time
        else:  # standard input, or --format: read once, line by line unless a manifest
            read = read_checksums(
                source, algorithm=algo, only=format, root=root, manifest_ok=format is None
            )
            if isinstance(read, bytes):
                return _whole_tree(_decode(read, source), algo, new_files)
            parsed = read
    except NoChecksumLines as exc:
        report_malformed(source, exc.problems)
        raise
    report_malformed(source, parsed.problems)
    whole_tree = ChecksumFormat.BAGIT in parsed.formats or root is not None
    new_files = whole_tree if new_files is None else new_files
    manifest = parsed.manifest
    if not new_files and ChecksumFormat.BAGIT not in parsed.formats:
        # Only the listed paths are looked at: reach them as sha256sum -c and b3sum --check
        # do, through symlinks (those that stay inside the root). When the whole tree is
        # walked for new files, links are not followed, as make does not: a tree with
        # 'current -> v2' would otherwise list all of v2 again, as new.
        manifest = dataclasses.replace(manifest, follow_symlinks=True)
    return Input(manifest, parsed.problems, new_files)


def _not_checksums(source: str) -> bool:
    """True when ``source`` cannot be a checksum file: it is not there, or a non-bag directory."""
    from hashpar.formats.files import is_bag

    try:
        mode = os.stat(source).st_mode
    except OSError:
        return True
    return stat.S_ISDIR(mode) and not is_bag(source)


def _whole_tree(
    manifest: Manifest | ManifestFile, algo: Algorithm | None, new_files: bool | None
) -> Input:
    """A hashpar manifest to check, which lists its whole tree."""
    from hashpar.api import ManifestFile

    algorithm = (manifest.header if isinstance(manifest, ManifestFile) else manifest).algorithm
    if algo not in (None, algorithm):
        if isinstance(manifest, ManifestFile):
            manifest.read()  # a broken manifest is the first thing to report (hashpar.api)
        raise UsageError(f"the manifest is {algorithm}, not {algo} (--algo)")
    return Input(manifest, new_files=new_files is not False)


def _decode(data: bytes, source: str) -> Manifest:
    """A manifest from bytes already read, with errors naming the input as load_manifest's do."""
    from hashpar.manifest import decode_manifest

    try:
        return decode_manifest(data)
    except ManifestError as exc:
        raise ManifestError(f"{input_name(source)}: {exc}") from None


@app.command(cls=ConvertingCommand)
def verify(
    manifest: Annotated[
        str,
        typer.Argument(
            metavar="MANIFEST",
            help="A hashpar manifest, a sha256sum/b3sum/BSD sums file, a BagIt bag directory, "
            "or - for standard input (told apart by content).",
        ),
    ],
    root: Annotated[
        str | None,
        typer.Option(
            "--root",
            metavar="DIR",
            help="Check this tree instead of the manifest's root (e.g. a copy). A sums file's "
            "paths resolve here instead of the current directory, and new files are looked for.",
        ),
    ] = None,
    algo: AlgoOption = None,
    format: FormatOption = None,
    new_files: Annotated[
        bool | None,
        typer.Option(
            "--new-files/--no-new-files",
            show_default="on, except for a sums file without --root",
            help="Look for files the input does not list (a sums file does not say where its "
            "tree ends).",
        ),
    ] = None,
    jobs: JobsOption = None,
    ignore_new: Annotated[
        bool,
        typer.Option("--ignore-new", help="Report new files but do not count them as a change."),
    ] = False,
    json_output: JsonOption = False,
    quiet: ReportQuietOption = False,
    debug: DebugOption = False,
) -> int:
    """Re-hash the tree of MANIFEST and report what is modified, missing, new, moved or unreadable.

    Exit 0 when nothing differs, 1 when something differs or could not be read (or a sums
    file has malformed lines), 2 when the input is unusable or the run could not complete.
    """
    from hashpar.api import ManifestFile, verify_tree
    from hashpar.cli.output import open_output
    from hashpar.cli.progress import progress_display

    with open_output(None) as out, _early_pool(manifest, jobs) as pool:
        loaded = load_input(manifest, algo=algo, format=format, root=root, new_files=new_files)
        with progress_display(not quiet, "verifying") as on_progress:
            try:
                report = verify_tree(
                    loaded.manifest,
                    root=root,
                    manifest_path=None if manifest == "-" else manifest,
                    jobs=jobs,
                    ignore_new=ignore_new,
                    executor=pool,
                    on_progress=on_progress,
                    new_files=loaded.new_files,
                    consume=True,  # loaded for this run alone: no copy of its entries
                )
            except ManifestError as exc:  # an entry unsafe for this tree: name the input
                if isinstance(loaded.manifest, ManifestFile):
                    raise  # a manifest file's errors name it already (and it is closed)
                raise ManifestError(f"{input_name(manifest)}: {exc}") from None
        report = dataclasses.replace(report, input_lines=loaded.problems)
        write_report(out, report, json_output=json_output, quiet=quiet, verb="verified")
    return EXIT_DIFFERENT if report.differs else EXIT_OK


_EARLY_POOL_BYTES = 1 << 20
"""A manifest file at least this big (about 6,000 entries) gets its workers started before
it is loaded: the tree is surely too big to hash in-process, and workers forked from the
small process hold none of the decoded manifest (hashpar.engine.worker_pool)."""


@contextlib.contextmanager
def _early_pool(source: str, jobs: int | None) -> Iterator[Executor | None]:
    from hashpar import default_jobs, worker_pool

    workers = default_jobs() if jobs is None else jobs
    try:
        big = source != "-" and workers > 1 and os.stat(source).st_size >= _EARLY_POOL_BYTES
    except OSError:
        big = False  # loading it says why
    if not big:
        yield None
        return
    with worker_pool(workers) as pool:
        yield pool


def write_report(out: Output, report: Report, *, json_output: bool, quiet: bool, verb: str) -> None:
    """Write ``report`` to ``out`` as JSON or as human lines, and flush it."""
    from hashpar.cli.render import human_lines, report_json

    if json_output:
        out.write(report_json(report))
    else:
        lines = human_lines(report, quiet=quiet, verb=verb)
        while chunk := list(itertools.islice(lines, 4096)):  # few writes for a big report
            out.write("".join(f"{line}\n" for line in chunk).encode())
    out.commit()
