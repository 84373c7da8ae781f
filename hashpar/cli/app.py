"""The typer application and the options its commands share.

Each command lives in a module of its own (``cmd_make.py``, ...), registered by the imports at
the bottom; each parses, calls one library function, renders, and returns its exit code.
"""

from __future__ import annotations

from typing import Annotated

import typer

from hashpar.cli import version_line
from hashpar.cli.convert import ConvertingGroup

__all__ = ["DebugOption", "JobsOption", "QuietOption", "app"]

app = typer.Typer(
    name="hashpar",
    cls=ConvertingGroup,
    help="Parallel file-integrity manifests: hash a tree with BLAKE3 or SHA-256, verify it later.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

JobsOption = Annotated[
    int | None,
    typer.Option(
        "--jobs",
        "-j",
        min=1,
        show_default="CPUs available",
        help="Worker processes.",
    ),
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress display; only problems on stderr.")
]
DebugOption = Annotated[bool, typer.Option("--debug", help="Show a traceback on failure.")]


def _version(value: bool) -> None:
    if value:
        print(version_line())
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """hashpar: parallel file-integrity manifests."""


# Registration: each import adds its command to ``app``.
from hashpar.cli import (  # noqa: E402
    cmd_diff,  # noqa: F401
    cmd_export,  # noqa: F401
    cmd_import,  # noqa: F401
    cmd_make,  # noqa: F401
    cmd_verify,  # noqa: F401
)
