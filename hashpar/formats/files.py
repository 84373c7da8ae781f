"""Checksum files and bags on disk: load one into a Manifest, prepare a bag's tag files.

This is the I/O side of :mod:`hashpar.formats`; the format rules themselves are pure
functions in ``sums.py`` and ``bagit.py``.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

from hashpar import __version__
from hashpar.errors import ManifestError, UsageError
from hashpar.formats import bagit
from hashpar.formats.records import ChecksumFormat, ParsedChecksums, name_list
from hashpar.formats.sums import parse_checksums
from hashpar.models import Algorithm, FileEntry, Manifest, Snapshot
from hashpar.names import display_name

__all__ = ["bag_tag_files", "fill_sizes", "load_checksums", "read_bag"]

_SHOWN = 5


def load_checksums(
    path: str,
    *,
    algorithm: Algorithm | None = None,
    only: ChecksumFormat | None = None,
    root: str | None = None,
) -> ParsedChecksums:
    """Read a sums file, a BagIt payload manifest or a bag directory (``-``: stdin).

    The kind is taken from ``only`` if given, else: a directory is a bag, a file named
    ``manifest-<algo>.txt`` a payload manifest, anything else a GNU/BSD file (line forms
    detected per line). Paths resolve under ``root``: by default the current directory for a
    sums file (as ``sha256sum -c`` does) and ``BAGDIR/data`` for a bag.
    UsageError/ManifestError for unreadable or unusable input (see the parsers).
    """
    if path != "-" and os.path.isdir(path):
        if only not in (None, ChecksumFormat.BAGIT):
            raise UsageError(f"{path} is a directory, not a {only} file")
        return read_bag(path, algorithm=algorithm, root=root)
    data = _read(path)
    source = "standard input" if path == "-" else path
    name = os.path.basename(path)
    is_bag_manifest = name.startswith("manifest-") and name.endswith(".txt")
    if only is ChecksumFormat.BAGIT or (only is None and is_bag_manifest):
        _require_sha256(algorithm, name, path)
        bag_root = os.path.join(os.path.dirname(path) or ".", "data")
        return bagit.parse_bagit(data, source=source, root=root or bag_root)
    return parse_checksums(data, source=source, algorithm=algorithm, only=only, root=root or ".")


def read_bag(
    bagdir: str, *, algorithm: Algorithm | None = None, root: str | None = None
) -> ParsedChecksums:
    """Read a bag's declaration and SHA-256 payload manifest; paths resolve in ``data/``."""
    declaration = os.path.join(bagdir, "bagit.txt")
    if not os.path.isfile(declaration):
        raise UsageError(f"{bagdir}: a directory without bagit.txt is not a bag")
    bagit.check_bagit_txt(_read(declaration), declaration)
    manifest_path = os.path.join(bagdir, bagit.PAYLOAD_MANIFEST)
    if not os.path.isfile(manifest_path):
        others = sorted(n for n in os.listdir(bagdir) if n.startswith("manifest-"))
        found = f" (it has {', '.join(others)})" if others else ""
        raise UsageError(
            f"{bagdir}: no {bagit.PAYLOAD_MANIFEST}{found}: hashpar checks SHA-256 bags only"
        )
    _require_sha256(algorithm, bagit.PAYLOAD_MANIFEST, bagdir)
    data_dir = os.path.join(bagdir, "data")
    return bagit.parse_bagit(_read(manifest_path), source=manifest_path, root=root or data_dir)


def fill_sizes(manifest: Manifest) -> tuple[Manifest, int]:
    """The manifest with each size taken from its file under ``manifest.root``, where that
    file exists and is a regular file (lstat only: nothing is read or hashed); the others
    keep ``size=None``. Returns the manifest and how many sizes were filled.
    """
    files: dict[str, FileEntry] = {}
    filled = 0
    for path, entry in manifest.files.items():
        try:
            st = os.lstat(os.path.join(manifest.root, path))
        except OSError:
            files[path] = entry
            continue
        if stat.S_ISREG(st.st_mode):
            files[path] = replace(entry, size=st.st_size)
            filled += 1
        else:
            files[path] = entry
    return replace(manifest, snapshot=Snapshot(files=files)), filled


def bag_tag_files(manifest: Manifest, bagdir: str) -> dict[str, bytes]:
    """The tag files that make ``bagdir`` a bag of ``manifest``, in the order to write them.

    Refused with UsageError/ManifestError unless the manifest's root is ``bagdir/data``, it
    is SHA-256, it lists every payload file and only files (a listing of ``data/`` is
    compared with it; nothing is hashed), and no other algorithm's manifest would be left
    stale. Fields of an existing ``bag-info.txt`` other than hashpar's three are kept.
    """
    data_dir = os.path.join(bagdir, "data")
    if not os.path.isdir(data_dir):
        raise UsageError(f"{bagdir}: no data/ directory: a bag keeps its payload in data/")
    if os.path.realpath(manifest.root) != os.path.realpath(data_dir):
        raise UsageError(
            f"the manifest's root is {display_name(manifest.root)}, not {display_name(data_dir)}"
            f": make the manifest of {display_name(data_dir)} to export this bag"
        )
    snapshot = manifest.snapshot
    if snapshot.errors or snapshot.symlinks or snapshot.skipped or manifest.excludes:
        raise ManifestError(
            "a bag's manifest must list every payload file, but this one has "
            f"{len(snapshot.errors)} unreadable, {len(snapshot.symlinks)} symlink(s), "
            f"{len(snapshot.skipped)} special file(s) and {len(manifest.excludes)} exclude "
            "pattern(s)"
        )
    _check_payload(manifest, data_dir)
    stale = sorted(
        name
        for name in os.listdir(bagdir)
        if name.startswith(("manifest-", "tagmanifest-"))
        and name not in (bagit.PAYLOAD_MANIFEST, bagit.TAG_MANIFEST)
    )
    if stale:
        raise UsageError(f"{bagdir} has {', '.join(stale)}, which would be left stale")
    info_path = os.path.join(bagdir, "bag-info.txt")
    existing = _read(info_path) if os.path.isfile(info_path) else None
    files = {
        bagit.PAYLOAD_MANIFEST: bagit.encode_bagit(manifest),
        "bag-info.txt": bagit.bag_info(
            manifest, existing, datetime.now(UTC).date(), f"hashpar {__version__}"
        ),
        "bagit.txt": bagit.BAGIT_TXT,
    }
    files[bagit.TAG_MANIFEST] = bagit.tag_manifest(files)
    return files


def _check_payload(manifest: Manifest, data_dir: str) -> None:
    """UsageError if the files under ``data_dir`` are not exactly the manifest's files."""
    on_disk = set(_walk_files(data_dir))
    listed = set(manifest.files)
    for label, names in (("not in the manifest", on_disk - listed), ("gone", listed - on_disk)):
        if names:
            raise UsageError(
                f"{len(names)} payload file(s) {label}: {name_list(names, _SHOWN)}: the "
                "manifest does not match data/ (run hashpar make again)"
            )


def _walk_files(top: str) -> Iterator[str]:
    """Relative '/'-separated paths of every non-directory under ``top``; errors raise."""

    def fail(error: OSError) -> None:
        raise UsageError(f"cannot list {error.filename}: {error.strerror}")

    for dirpath, _dirs, names in os.walk(top, onerror=fail):
        relative = os.path.relpath(dirpath, top)
        for name in names:
            yield name if relative == "." else f"{relative.replace(os.sep, '/')}/{name}"


def _require_sha256(algorithm: Algorithm | None, name: str, where: str) -> None:
    if name != bagit.PAYLOAD_MANIFEST and name.startswith("manifest-"):
        raise UsageError(f"{where}: {name}: hashpar checks SHA-256 bag manifests only")
    if algorithm not in (None, Algorithm.SHA256):
        raise UsageError(f"{where}: a BagIt SHA-256 manifest cannot be checked as {algorithm}")


def _read(path: str) -> bytes:
    try:
        if path == "-":
            return sys.stdin.buffer.read()
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
