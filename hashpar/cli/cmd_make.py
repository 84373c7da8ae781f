"""``hashpar make``: hash a tree into a manifest."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from hashpar.cli.app import DebugOption, JobsOption, QuietOption, app
from hashpar.cli.convert import ConvertingCommand
from hashpar.cli.output import diagnostic
from hashpar.kinds import Algorithm

if TYPE_CHECKING:
    from hashpar.models import Snapshot

__all__ = ["make", "report_problems"]


@app.command(cls=ConvertingCommand)
def make(
    path: Annotated[
        str, typer.Argument(metavar="PATH", help="Directory (or single file) to hash.")
    ],
    algo: Annotated[Algorithm, typer.Option("--algo", help="Digest algorithm.")] = (
        Algorithm.BLAKE3
    ),
    jobs: JobsOption = None,
    exclude: Annotated[
        list[str] | None,
        typer.Option(
            "--exclude",
            metavar="PATTERN",
            help="Leave out paths matching this gitignore pattern (relative to PATH; repeatable).",
        ),
    ] = None,
    follow_symlinks: Annotated[
        bool,
        typer.Option("--follow-symlinks", help="Follow symlinks that stay inside PATH."),
    ] = False,
    output: Annotated[
        str | None,
        typer.Option(
            "--output", "-o", metavar="FILE", help="Write the manifest to FILE atomically."
        ),
    ] = None,
    quiet: QuietOption = False,
    debug: DebugOption = False,
) -> int:
    """Hash every file under PATH and write a JSON manifest (stdout, or -o FILE).

    Exit 0 when every entry was hashed, 1 when some could not be read (they are listed in the
    manifest's "errors" and on stderr), 2 when the run could not complete.
    """
    from hashpar.api import make_manifest
    from hashpar.cli.output import open_output
    from hashpar.cli.progress import progress_display
    from hashpar.manifest import write_manifest

    with open_output(output) as out, progress_display(not quiet, "hashing") as on_progress:
        manifest = make_manifest(
            path,
            algorithm=algo,
            jobs=jobs,
            excludes=exclude or (),
            follow_symlinks=follow_symlinks,
            skip=out.paths,
            on_progress=on_progress,
        )
        write_manifest(manifest, out)
        out.commit()
    report_problems(manifest.snapshot)
    return 1 if manifest.snapshot.errors else 0


def report_problems(snapshot: Snapshot) -> None:
    """One stderr line per entry that could not be read."""
    from hashpar.names import display_name

    for path, problem in snapshot.errors.items():
        message = display_name(problem.message)
        diagnostic(f"hashpar: {display_name(path)}: {message} ({problem.kind})")
