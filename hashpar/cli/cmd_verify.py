"""``hashpar verify``: re-hash a tree and report every difference from its manifest."""

from __future__ import annotations

import itertools
from typing import Annotated

import typer

from hashpar.api import load_manifest, verify_tree
from hashpar.cli import EXIT_DIFFERENT, EXIT_OK
from hashpar.cli.app import DebugOption, JobsOption, app
from hashpar.cli.output import Output, open_output
from hashpar.cli.progress import progress_display
from hashpar.cli.render import human_lines, report_json
from hashpar.compare import Report
from hashpar.errors import ManifestError
from hashpar.models import Manifest

__all__ = ["load_input", "verify", "write_report"]

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON object (see README) instead of lines.")
]
ReportQuietOption = Annotated[
    bool,
    typer.Option("--quiet", "-q", help="Print only the problems: no summary, no progress."),
]


def load_input(source: str) -> Manifest:
    """Turn verify's MANIFEST argument (a path, or "-" for stdin) into a Manifest.

    The one place where verify reads its input: other formats plug in here.
    """
    return load_manifest(source)


@app.command()
def verify(
    manifest: Annotated[
        str, typer.Argument(metavar="MANIFEST", help="Manifest file, or - for standard input.")
    ],
    root: Annotated[
        str | None,
        typer.Option(
            "--root",
            metavar="DIR",
            help="Check this tree instead of the manifest's root (e.g. a copy).",
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

    Exit 0 when nothing differs, 1 when something differs or could not be read, 2 when the
    manifest is unusable or the run could not complete.
    """
    with open_output(None) as out:
        loaded = load_input(manifest)
        with progress_display(not quiet, "verifying") as on_progress:
            try:
                report = verify_tree(
                    loaded,
                    root=root,
                    manifest_path=None if manifest == "-" else manifest,
                    jobs=jobs,
                    ignore_new=ignore_new,
                    on_progress=on_progress,
                )
            except ManifestError as exc:  # an entry unsafe for this tree: name the manifest
                name = "standard input" if manifest == "-" else manifest
                raise ManifestError(f"{name}: {exc}") from None
        write_report(out, report, json_output=json_output, quiet=quiet, verb="verified")
    return EXIT_DIFFERENT if report.differs else EXIT_OK


def write_report(out: Output, report: Report, *, json_output: bool, quiet: bool, verb: str) -> None:
    """Write ``report`` to ``out`` as JSON or as human lines, and flush it."""
    if json_output:
        out.write(report_json(report))
    else:
        lines = human_lines(report, quiet=quiet, verb=verb)
        while chunk := list(itertools.islice(lines, 4096)):  # few writes for a big report
            out.write("".join(f"{line}\n" for line in chunk).encode())
    out.commit()
