"""``hashpar diff``: compare two manifests without touching the disk."""

from __future__ import annotations

from typing import Annotated

import typer

from hashpar.cli import EXIT_DIFFERENT, EXIT_OK
from hashpar.cli.app import DebugOption, app
from hashpar.cli.cmd_verify import JsonOption, write_report
from hashpar.cli.convert import ConvertingCommand

__all__ = ["diff"]


@app.command(cls=ConvertingCommand)
def diff(
    old: Annotated[
        str, typer.Argument(metavar="OLD", help="The earlier manifest (or - for standard input).")
    ],
    new: Annotated[
        str, typer.Argument(metavar="NEW", help="The later manifest (or - for standard input).")
    ],
    json_output: JsonOption = False,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Print only the differences: no summary.")
    ] = False,
    debug: DebugOption = False,
) -> int:
    """Show what changed from manifest OLD to manifest NEW: modified, missing, new, moved.

    Exit 0 when they list the same contents, 1 when they differ, 2 when either is unusable
    or they use different algorithms.
    """
    from hashpar.api import diff_manifests, load_manifest
    from hashpar.cli.output import open_output

    if old == "-" and new == "-":
        raise typer.BadParameter("only one of OLD and NEW can be standard input")
    with open_output(None) as out:
        report = diff_manifests(load_manifest(old), load_manifest(new))
        write_report(out, report, json_output=json_output, quiet=quiet, verb="compared")
    return EXIT_DIFFERENT if report.differs else EXIT_OK
