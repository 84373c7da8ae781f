"""The exceptions hashpar raises, and the exit code each one maps to.

Problems found in a tree (a file that cannot be read, a digest that differs) are *data*: they
are returned as records in a manifest or a report and never raised. Exceptions are for runs
that cannot produce a trustworthy result at all::

    HashparError                    exit 2  base class; never raised itself
    ├── UsageError                  exit 2  a bad argument: PATH missing, jobs < 1, bad pattern
    ├── ManifestError               exit 2  a manifest that cannot be used: not JSON, wrong
    │                                       types, duplicate keys, unsafe or non-canonical paths
    ├── OutputError                 exit 2  the result could not be written (ENOSPC, EBADF,
    │                                       a read-only or missing output directory)
    └── WorkerCrashed               exit 2  a worker process died (SIGKILL, segfault, os._exit)

KeyboardInterrupt (exit 130) and :class:`Terminated` (exit 143) are not HashparErrors: they
propagate so that every layer can clean up, and only the CLI turns them into exit codes.
"""

from __future__ import annotations

__all__ = [
    "HashparError",
    "ManifestError",
    "OutputError",
    "Terminated",
    "UsageError",
    "WorkerCrashed",
]


class HashparError(Exception):
    """Base of every error hashpar raises on purpose; its message is one line for a person."""

    exit_code: int = 2


class UsageError(HashparError):
    """An argument or option cannot be used (missing path, jobs < 1, bad exclude pattern)."""


class ManifestError(HashparError):
    """A manifest (or sums file) is unusable input; the message names the problem and entry."""


class OutputError(HashparError):
    """The result could not be written: the output target is unwritable, full or closed."""


class WorkerCrashed(HashparError):
    """A worker process died abruptly, so the run cannot be completed or trusted."""


class Terminated(BaseException):
    """Raised in the main thread when the process receives SIGTERM (exit 143)."""
