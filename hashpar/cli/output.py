"""Where results go: standard output, or a file replaced atomically.

Both targets are checked *before* any hashing starts, so a closed stdout or an unwritable
``-o`` directory costs nothing: :func:`open_output` fails at once with OutputError.
"""

from __future__ import annotations

import contextlib
import os
import sys
from types import TracebackType
from typing import BinaryIO

from hashpar.errors import OutputError

__all__ = ["Output", "PipeClosed", "open_output"]


class PipeClosed(Exception):
    """stdout's reader went away (``| head``); not an OSError, so click cannot swallow it."""


class Output:
    """A binary sink for one result; ``commit()`` makes it visible, ``discard()`` drops it.

    For a file: a temporary file in the same directory is written, flushed, fsynced, renamed
    over the target and the directory fsynced, so the target is either the old file or the
    complete new one, never a truncated mix. For stdout: bytes are written through.
    """

    def __init__(self, target: str | None) -> None:
        self.target = target
        self.temp_path: str | None = None
        self.stream: BinaryIO
        if target is None:
            _check_stdout()
            self.stream = sys.stdout.buffer
            return
        import tempfile  # only for a file target: 2 ms of start-up otherwise

        directory = os.path.dirname(os.path.abspath(target))
        try:
            fd, self.temp_path = tempfile.mkstemp(
                dir=directory, prefix=f".{os.path.basename(target)}.", suffix=".tmp"
            )
        except OSError as exc:
            raise OutputError(f"cannot write {target}: {exc.strerror}") from None
        self.stream = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> int:
        """Write bytes; an I/O failure becomes OutputError, a closed pipe PipeClosed."""
        try:
            return self.stream.write(data)
        except BrokenPipeError:
            raise PipeClosed from None
        except OSError as exc:
            raise OutputError(f"cannot write {self._name}: {exc.strerror}") from None

    def commit(self) -> None:
        """Flush everything; for a file, fsync and atomically replace the target."""
        try:
            self.stream.flush()
            if self.temp_path is None:
                return
            os.fsync(self.stream.fileno())
            self.stream.close()
            os.replace(self.temp_path, self.target or "")
            self.temp_path = None
            _fsync_directory(os.path.dirname(os.path.abspath(self.target or "")))
        except BrokenPipeError:
            raise PipeClosed from None
        except OSError as exc:
            raise OutputError(f"cannot write {self._name}: {exc.strerror}") from None

    def discard(self) -> None:
        """Drop an uncommitted file result; the target stays as it was."""
        if self.temp_path is not None:
            self.stream.close()
            with contextlib.suppress(OSError):
                os.unlink(self.temp_path)
            self.temp_path = None

    @property
    def _name(self) -> str:
        return "standard output" if self.target is None else self.target

    def __enter__(self) -> Output:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.discard()

    @property
    def paths(self) -> list[str]:
        """Files this output may create (the target and its temp file), to leave out of a walk."""
        return [p for p in (self.target, self.temp_path) if p is not None]


def open_output(target: str | None) -> Output:
    """An Output for ``target`` (None or "-" for stdout), checked before any work starts."""
    return Output(None if target in (None, "-") else target)


def _check_stdout() -> None:
    """Fail early on a closed stdout (``>&-``): plain Python would exit 0, writing nothing."""
    if sys.stdout is None:
        raise OutputError("standard output is closed")
    try:
        os.fstat(sys.stdout.fileno())
    except (OSError, ValueError):
        raise OutputError("standard output is closed") from None


def _fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
