"""``hashpar import``: turn a sums file, BSD tag file or BagIt bag into a hashpar manifest."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from hashpar import __version__
from hashpar.cli.app import DebugOption, app
from hashpar.cli.convert import ConvertingCommand
from hashpar.cli.output import diagnostic
from hashpar.errors import ManifestError, UsageError
from hashpar.formats.records import ChecksumFormat
from hashpar.kinds import Algorithm
from hashpar.names import display_name, input_name

if TYPE_CHECKING:
    from hashpar.formats.records import LineProblems

__all__ = ["SHOWN_LINES", "AlgoOption", "FormatOption", "import_sums", "report_malformed"]

AlgoOption = Annotated[
    Algorithm | None,
    typer.Option(
        "--algo",
        show_default="from the file's name or BSD tags",
        help="The digests' algorithm (both are 64 hex digits, so it cannot be told from them).",
    ),
]
FormatOption = Annotated[
    ChecksumFormat | None,
    typer.Option(
        "--format",
        "-f",
        show_default="detected",
        help="Accept only this line format (a directory is always a bag).",
    ),
]


@app.command("import", cls=ConvertingCommand)
def import_sums(
    sums_file: Annotated[
        str,
        typer.Argument(
            metavar="SUMSFILE", help="A sha256sum/b3sum/BSD file, a BagIt bag or '-' for stdin."
        ),
    ],
    algo: AlgoOption = None,
    format: FormatOption = None,
    root: Annotated[
        str | None,
        typer.Option(
            "--root",
            metavar="DIR",
            show_default="current directory; a bag's data/",
            help="The directory the file's paths are relative to (recorded as the root).",
        ),
    ] = None,
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write the manifest atomically."),
    ] = None,
    debug: DebugOption = False,
) -> int:
    """Write a hashpar manifest with SUMSFILE's digests (stdout, or -o FILE).

    Digests are copied, not recomputed. Each file's size is taken from the tree under the
    root when the file is there (a stat, nothing is read) and left out when it is not; no
    mtime is recorded. Any malformed line is an error (exit 2): nothing is written.
    """
    from dataclasses import replace
    from datetime import UTC, datetime

    from hashpar.cli.output import open_output
    from hashpar.formats import NoChecksumLines, fill_sizes
    from hashpar.formats import load_checksums as load
    from hashpar.manifest import write_manifest

    name = input_name(sums_file)
    if root is not None and not os.path.isdir(root):  # a typo, surely: say so, write nothing
        raise UsageError(f"--root {root}: not a directory")
    with open_output(output) as out:
        try:
            parsed = load(sums_file, algorithm=algo, only=format, root=root)
        except NoChecksumLines as exc:
            report_malformed(sums_file, exc.problems)
            raise
        problems = parsed.problems
        if problems.total:
            report_malformed(sums_file, problems)
            conflicting = f" and {problems.conflicting} conflicting" if problems.conflicting else ""
            raise ManifestError(
                f"{name}: {problems.malformed} malformed{conflicting} line(s): nothing imported"
            )
        from hashpar.guard import reject_entries_below_leaves

        try:  # "a" and "a/b" both listed: no tree holds both, and verify would refuse it
            reject_entries_below_leaves(parsed.manifest.snapshot)
        except ManifestError as exc:
            raise ManifestError(f"{name}: {exc}: nothing imported") from None
        manifest, filled = fill_sizes(parsed.manifest)
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        manifest = replace(manifest, created=created, generator=f"hashpar {__version__}")
        write_manifest(manifest, out)
        out.commit()
    missing = len(manifest.files) - filled
    if missing:
        diagnostic(
            f"hashpar: note: {missing} of {len(manifest.files)} file(s) were not found under "
            f"{display_name(manifest.root)}: their sizes are left out",
        )
    return 0


SHOWN_LINES = 10
"""Problem lines named on stderr; the rest are counted in one more line (--json has them)."""


def report_malformed(source: str, problems: LineProblems) -> None:
    """``hashpar: FILE:LINE: reason`` for the first SHOWN_LINES problem lines, then
    ``hashpar: FILE: ... and N more unusable lines`` if there were more."""
    name = display_name(input_name(source))
    for line in problems.kept[:SHOWN_LINES]:
        diagnostic(f"hashpar: {name}:{line.line}: {line.message}")
    more = problems.total - min(len(problems.kept), SHOWN_LINES)
    if more:
        diagnostic(f"hashpar: {name}: ... and {more} more unusable line{'s' * (more != 1)}")
