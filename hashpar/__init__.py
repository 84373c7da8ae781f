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

import sys
import types

from hashpar._lazy import lazy_attributes as _lazy_attributes

TYPE_CHECKING = False  # not typing.TYPE_CHECKING: importing typing costs 2 ms (mypy knows the name)
if TYPE_CHECKING:
    from hashpar.api import (
        ManifestFile,
        diff_manifests,
        load_manifest,
        make_manifest,
        open_manifest,
        scan_tree,
        verify_tree,
    )
    from hashpar.compare import Move, Report, compare
    from hashpar.engine import Tuning, default_jobs, worker_pool
    from hashpar.errors import (
        HashparError,
        ManifestError,
        OutputError,
        Terminated,
        UsageError,
        WorkerCrashed,
    )
    from hashpar.events import Progress, ProgressCallback
    from hashpar.kinds import Algorithm, ProblemKind, SpecialKind
    from hashpar.manifest import decode_manifest, encode_manifest, write_manifest
    from hashpar.models import FileEntry, FileTable, KeyOrdered, Manifest, Problem, Snapshot
del TYPE_CHECKING

# Where each public name lives. They are imported on first use (PEP 562), so that
# ``import hashpar``, the command's start-up (``hashpar --version``) and a worker process that
# only needs ``hashpar.hashing`` do not pay for the scheduler, multiprocessing, msgspec, ...
_SOURCES = {
    "ManifestFile": "hashpar.api",
    "diff_manifests": "hashpar.api",
    "load_manifest": "hashpar.api",
    "make_manifest": "hashpar.api",
    "open_manifest": "hashpar.api",
    "scan_tree": "hashpar.api",
    "verify_tree": "hashpar.api",
    "Move": "hashpar.compare",
    "Report": "hashpar.compare",
    "compare": "hashpar.compare",
    "Tuning": "hashpar.engine",
    "default_jobs": "hashpar.engine",
    "worker_pool": "hashpar.engine",
    "HashparError": "hashpar.errors",
    "ManifestError": "hashpar.errors",
    "OutputError": "hashpar.errors",
    "Terminated": "hashpar.errors",
    "UsageError": "hashpar.errors",
    "WorkerCrashed": "hashpar.errors",
    "Progress": "hashpar.events",
    "ProgressCallback": "hashpar.events",
    "decode_manifest": "hashpar.manifest",
    "encode_manifest": "hashpar.manifest",
    "write_manifest": "hashpar.manifest",
    "Algorithm": "hashpar.kinds",
    "FileEntry": "hashpar.models",
    "FileTable": "hashpar.models",
    "KeyOrdered": "hashpar.models",
    "Manifest": "hashpar.models",
    "Problem": "hashpar.models",
    "ProblemKind": "hashpar.kinds",
    "Snapshot": "hashpar.models",
    "SpecialKind": "hashpar.kinds",
}


__getattr__, __dir__ = _lazy_attributes(__name__, _SOURCES, globals())


class _Package(types.ModuleType):
    """This package's module type: the name ``compare`` stays the function.

    Importing the submodule ``hashpar.compare`` binds it on the package, over the function of
    the same name; when the package imported everything at once, its own import came after
    and won. Now the function wins whenever the submodule is imported.
    """

    def __setattr__(self, name: str, value: object) -> None:
        if name == "compare" and isinstance(value, types.ModuleType):
            value = value.compare
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


__all__ = [
    "Algorithm",
    "FileEntry",
    "FileTable",
    "HashparError",
    "KeyOrdered",
    "Manifest",
    "ManifestError",
    "ManifestFile",
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
    "open_manifest",
    "scan_tree",
    "verify_tree",
    "worker_pool",
    "write_manifest",
]
