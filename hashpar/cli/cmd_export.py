"""``hashpar export``: write a manifest as a sums file, BSD tags, or a BagIt manifest/bag."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Annotated

import typer

from hashpar.cli.app import DebugOption, app
from hashpar.cli.convert import ConvertingCommand
from hashpar.cli.output import diagnostic
from hashpar.errors import UsageError
from hashpar.formats.records import ChecksumFormat

if TYPE_CHECKING:
    from hashpar.models import Manifest

__all__ = ["export"]


@app.command(cls=ConvertingCommand)
def export(
    manifest_path: Annotated[
        str, typer.Argument(metavar="MANIFEST", help="A manifest written by hashpar make.")
    ],
    format: Annotated[
        ChecksumFormat,
        typer.Option(
            "--format",
            "-f",
            help="sums: sha256sum/b3sum lines; bsd: 'SHA256 (path) = hex'; "
            "bagit: a BagIt manifest-sha256.txt.",
        ),
    ],
    output: Annotated[
        str | None,
        typer.Option("--output", "-o", metavar="FILE", help="Write to FILE atomically."),
    ] = None,
    bag: Annotated[
        str | None,
        typer.Option(
            "--bag",
            metavar="BAGDIR",
            help="With --format bagit: write the tag files into BAGDIR, whose data/ is the "
            "manifest's root, making it a bag in place.",
        ),
    ] = None,
    debug: DebugOption = False,
) -> int:
    """Write MANIFEST's files in another tool's format (stdout, -o FILE, or --bag BAGDIR).

    The output is what sha256sum, b3sum or bagit would write for the same files, so
    'sha256sum -c' / 'b3sum --check' run in the manifest's root accept it. Exit 0 when every
    file was written, 1 when some entries were left out because the manifest could not hash
    them, 2 when the manifest cannot be expressed in FORMAT (the reason is printed).
    """
    from hashpar.api import load_manifest
    from hashpar.cli.output import open_output
    from hashpar.formats import bag_tag_files, encode

    if bag is not None and format is not ChecksumFormat.BAGIT:
        raise UsageError("--bag needs --format bagit")
    if bag is not None and output is not None:
        raise UsageError("--bag writes its files into BAGDIR: leave out -o")
    manifest = load_manifest(manifest_path)  # as verify and diff load it
    if bag is not None:
        for name, data in bag_tag_files(manifest, bag).items():
            with open_output(os.path.join(bag, name)) as out:
                out.write(data)
                out.commit()
    else:
        with open_output(output) as out:
            out.write(encode(manifest, format))
            out.commit()
    return _report_left_out(manifest)


def _report_left_out(manifest: Manifest) -> int:
    """Say on stderr what the export could not include; 1 if files went unhashed."""
    from hashpar.names import display_name

    snapshot = manifest.snapshot
    for path, problem in snapshot.errors.items():
        diagnostic(
            f"hashpar: {display_name(path)}: not exported: the manifest has no digest "
            f"({problem.kind}: {display_name(problem.message)})",
        )
    if snapshot.symlinks or snapshot.skipped:
        diagnostic(
            f"hashpar: note: {len(snapshot.symlinks)} symlink(s) and {len(snapshot.skipped)} "
            "special file(s) in the manifest are not regular files and are not exported",
        )
    return 1 if snapshot.errors else 0
