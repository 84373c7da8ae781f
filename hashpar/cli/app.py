"""The typer application and the options its commands share.

Each command lives in a module of its own (``cmd_make.py``, ...) that registers it on ``app``
when imported: :func:`load_commands` imports them, all or only the one a run needs. Each
command parses, calls one library function, renders, and returns its exit code.
"""

from __future__ import annotations

import importlib
from typing import Annotated

import typer

from hashpar.cli import version_line
from hashpar.cli.convert import ConvertingGroup

__all__ = ["COMMAND_MODULES", "DebugOption", "JobsOption", "QuietOption", "app", "load_commands"]

app = typer.Typer(
    name="hashpar",
    cls=ConvertingGroup,
    help="Parallel file-integrity manifests: hash a tree with BLAKE3 or SHA-256, verify it later.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
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


# The commands, in the order 'hashpar --help' lists them: a manifest's life. Each module
# registers its command on ``app`` when it is imported (cmd_diff imports cmd_verify, which
# imports cmd_import: registration order is not this one, ConvertingGroup sorts them).
COMMAND_MODULES = {
    "make": "hashpar.cli.cmd_make",
    "verify": "hashpar.cli.cmd_verify",
    "diff": "hashpar.cli.cmd_diff",
    "export": "hashpar.cli.cmd_export",
    "import": "hashpar.cli.cmd_import",
}


def load_commands(argv: list[str] | None = None) -> typer.Typer:
    """``app`` with its commands registered: all of them, or just the one ``argv`` runs.

    A run names its command first (``hashpar make ...``): importing and building only that
    one saves ~10 ms of every run (docs/design.md, "Start-up"). Anything else (``--help``,
    no arguments, a misspelt command) registers them all, so help and errors name every
    command. Loading all after one puts that one first in the help of that process.
    """
    if argv and argv[0] in COMMAND_MODULES:
        importlib.import_module(COMMAND_MODULES[argv[0]])
    else:
        for module in COMMAND_MODULES.values():
            importlib.import_module(module)
    return app
