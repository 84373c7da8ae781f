"""hashpar: parallel file-integrity manifests (BLAKE3 or SHA-256), made and verified fast.

The library is the product; the ``hashpar`` command is a thin layer over these names::

    import hashpar
    manifest = hashpar.make_manifest("photos", algorithm="sha256", jobs=2)
    with open("photos.json", "wb") as f:
        hashpar.write_manifest(manifest, f)
    report = hashpar.verify_tree(hashpar.load_manifest("photos.json"))
    print(report.modified, report.missing, report.new, report.moved, report.errors)
"""

from __future__ import annotations

__version__ = "0.1.0"

from hashpar.api import diff_manifests, load_manifest, make_manifest, scan_tree, verify_tree
from hashpar.compare import Move, Report, compare
from hashpar.engine import Tuning, default_jobs
from hashpar.errors import (
    HashparError,
    ManifestError,
    OutputError,
    Terminated,
    UsageError,
    WorkerCrashed,
)
from hashpar.events import Progress, ProgressCallback
from hashpar.manifest import decode_manifest, encode_manifest, write_manifest
from hashpar.models import (
    Algorithm,
    FileEntry,
    KeyOrdered,
    Manifest,
    Problem,
    ProblemKind,
    Snapshot,
    SpecialKind,
)

__all__ = [
    "Algorithm",
    "FileEntry",
    "HashparError",
    "KeyOrdered",
    "Manifest",
    "ManifestError",
    "Move",
    "OutputError",
    "Problem",
    "ProblemKind",
    "Progress",
    "ProgressCallback",
    "Report",
    "Snapshot",
    "SpecialKind",
    "Terminated",
    "Tuning",
    "UsageError",
    "WorkerCrashed",
    "__version__",
    "compare",
    "decode_manifest",
    "default_jobs",
    "diff_manifests",
    "encode_manifest",
    "load_manifest",
    "make_manifest",
    "scan_tree",
    "verify_tree",
    "write_manifest",
]
