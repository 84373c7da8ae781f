"""Where results go: standard output, or a file replaced atomically.

Both targets are checked *before* any hashing starts, so a closed stdout or an unwritable
``-o`` directory costs nothing: :func:`open_output` fails at once with OutputError.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import stat
import sys
from types import TracebackType
from typing import BinaryIO

from hashpar.errors import OutputError

__all__ = ["Output", "PipeClosed", "diagnostic", "open_output"]


class PipeClosed(Exception):
    """stdout's reader went away (``| head``); not an OSError, so click cannot swallow it."""


class Output:
    """A binary sink for one result; ``commit()`` makes it visible, ``discard()`` drops it.

    For a file: a temporary file in the same directory is written, flushed, fsynced, renamed
    over the target and the directory fsynced, so the target is either the old file or the
    complete new one, never a truncated mix. For stdout: bytes are written through.

    What ``-o`` names decides how (docs/reliability.md): a symlink is followed, and the file
    it leads to is the one replaced (the link stays); a file that exists keeps its
    permission bits, and a new one gets those of ``open(..., "w")`` (0666 less the umask);
    a device, FIFO or anything else that is not a regular file or a directory (``-o
    /dev/null``, ``-o /dev/stdout``, ``-o >(cmd)``) is written through like stdout, opened
    by the name given and never replaced by a file; a directory is refused at once.
    """

    def __init__(self, target: str | None) -> None:
        self.target = target
        self.path: str | None = None  # the file replaced: the target, or where its link leads
        self.temp_path: str | None = None
        self.behind: str | None = None  # a regular file behind a descriptor written through
        self.stream: BinaryIO
        if target is None:
            _check_stdout()
            self.stream = sys.stdout.buffer
            return
        own = _own_descriptor(target)
        if own is not None:  # one of this process's open files: written through, as is
            try:
                self.stream = os.fdopen(os.dup(own), "wb")
            except OSError as exc:
                raise OutputError(f"cannot write {target}: {exc.strerror}") from None
            with contextlib.suppress(OSError):  # a file in the tree is left out, as for -o FILE
                behind = os.fstat(own)
                named = os.readlink(f"/proc/self/fd/{own}")
                if stat.S_ISREG(behind.st_mode) and os.path.samestat(behind, os.stat(named)):
                    self.behind = named  # still its name (a deleted file's ends '(deleted)')
            return
        try:  # what the target is, through every link: /dev/stdout's /proc ones too
            st: os.stat_result | None = os.stat(target)
        except FileNotFoundError:
            st = None  # a new file, or a link leading to where one will be
        except OSError as exc:
            raise OutputError(f"cannot write {target}: {exc.strerror}") from None
        if st is not None and stat.S_ISDIR(st.st_mode):
            raise OutputError(f"cannot write {target}: Is a directory")
        if st is not None and not stat.S_ISREG(st.st_mode):
            # A device or FIFO: written through, as stdout is, and opened by the name given.
            # /dev/stdout and /dev/fd/N lead through /proc/self/fd/N, whose link open()
            # follows to the open pipe itself; a path resolved from it ("pipe:[N]") names
            # nothing that can be opened.
            try:
                self.stream = open(target, "wb")  # noqa: SIM115 (closed by commit or discard)
            except OSError as exc:
                raise OutputError(f"cannot write {target}: {exc.strerror}") from None
            return
        path = os.path.realpath(target) if os.path.islink(target) else target
        self.path = path
        fd, self.temp_path = _create_temp(path, target)
        if st is not None:
            with contextlib.suppress(OSError):  # the old file's mode, not mkstemp's 0600
                os.fchmod(fd, stat.S_IMODE(st.st_mode))
        self.stream = os.fdopen(fd, "wb")

    def write(self, data: bytes) -> int:
        """Write every byte of ``data`` or raise: an I/O failure becomes OutputError, a closed
        pipe PipeClosed. Returns ``len(data)``.

        The one place results are written, so it alone makes sure nothing is lost. A raw
        stream (stdout under ``python -u`` or ``PYTHONUNBUFFERED=1``) writes with one
        ``write(2)``, which on a filling disk or a reader going away writes part and
        returns the count, with no error: the rest is written here until it is all out, or
        the next ``write(2)`` says why it cannot be (ENOSPC, EPIPE). A buffered stream loops
        itself: for it this is one check a write.
        """
        view = memoryview(data)
        try:
            while view:
                written = self.stream.write(view)
                if not written:  # None: a non-blocking stdout is full; 0: no progress
                    code = errno.EAGAIN if written is None else errno.ENOSPC
                    raise OSError(code, os.strerror(code))
                view = view[written:]
        except BrokenPipeError:
            raise PipeClosed from None
        except OSError as exc:
            raise OutputError(f"cannot write {self._name}: {exc.strerror}") from None
        return len(data)

    def commit(self) -> None:
        """Flush everything; for a file, fsync and atomically replace the target."""
        try:
            self.stream.flush()
            if self._through_device:
                self.stream.close()
            if self.temp_path is None:
                return
            os.fsync(self.stream.fileno())
            self.stream.close()
            path = self.path or ""
            os.replace(self.temp_path, path)
            self.temp_path = None
            _fsync_directory(os.path.dirname(os.path.abspath(path)))
        except BrokenPipeError:
            raise PipeClosed from None
        except OSError as exc:
            raise OutputError(f"cannot write {self._name}: {exc.strerror}") from None

    def discard(self) -> None:
        """Drop an uncommitted file result; the target stays as it was."""
        if self._through_device:
            with contextlib.suppress(OSError):
                self.stream.close()
        if self.temp_path is not None:
            self.stream.close()
            with contextlib.suppress(OSError):
                os.unlink(self.temp_path)
            self.temp_path = None

    @property
    def _through_device(self) -> bool:
        """A device or FIFO named by ``-o``, written through rather than replaced."""
        return self.target is not None and self.path is None

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
        named = (self.target, self.path, self.temp_path, self.behind)
        return [p for p in named if p is not None]


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


_STREAM_NAMES = ("input", "output", "error")
_LINK_HOPS = 40  # as the kernel's limit on links followed in one lookup


def _own_descriptor(target: str) -> int | None:
    """The descriptor ``target`` names when it is one of this process's open files, if that
    descriptor is open: ``/dev/stdout``, ``/dev/fd/N``, ``/proc/self/fd/N`` and the like,
    however written and through any links leading there.

    Such a target is written through that descriptor, never reopened: opened again by its
    name it would be truncated (``-o /dev/stdout >> log`` emptied the log) or, for a
    regular file, replaced by a new one. bash's ``-o >(cmd)`` is ``/dev/fd/63``. The name
    is followed a link at a time, each time with its directory resolved as the kernel
    would (``realpath``), until it is ``/proc/<this process>/fd/N``. Standard input,
    output or error closed when hashpar started is refused: the descriptor may since hold
    any file this process opened.
    """
    own = re.compile(rf"/proc/{os.getpid()}/(?:task/[0-9]+/)?fd/(0|[1-9][0-9]*)")
    path = target
    for _ in range(_LINK_HOPS):
        head, name = os.path.split(path)
        if not name:
            return None  # ends in '/': a directory, never a descriptor
        try:  # strict: a missing or non-directory component is the kernel's error too
            path = os.path.join(os.path.realpath(head or ".", strict=True), name)
        except OSError:
            return None
        match = own.fullmatch(path)
        if match is not None:
            number = int(match.group(1))
            break
        try:
            link = os.readlink(path)
        except OSError:  # not a link (or not there): an ordinary path
            return None
        path = os.path.join(os.path.dirname(path), link)
    else:
        return None
    if (
        number < len(_STREAM_NAMES)
        and (sys.__stdin__, sys.__stdout__, sys.__stderr__)[number] is None
    ):
        raise OutputError(f"cannot write {target}: standard {_STREAM_NAMES[number]} is closed")
    try:
        os.fstat(number)
    except OSError:
        return None  # not open here: the name is taken as any other path
    return number


def _create_temp(path: str, target: str) -> tuple[int, str]:
    """A new file beside ``path`` with mode 0666 less the umask (mkstemp would make it
    0600): ``.NAME.XXXXXXXX.tmp``, created exclusively."""
    import secrets  # only for a file target

    directory, name = os.path.split(os.path.abspath(path))
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    for _ in range(100):
        temp = os.path.join(directory, f".{name}.{secrets.token_hex(4)}.tmp")
        try:
            return os.open(temp, flags, 0o666), temp
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(f"cannot write {target}: {exc.strerror}") from None
    raise OutputError(f"cannot write {target}: no free temporary name")


def _fsync_directory(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def diagnostic(line: str) -> None:
    """Write one line to stderr, for the user; never to stdout, which may carry the result.

    With stderr closed (``2>&-``) ``print(file=sys.stderr)`` would write to stdout, into a
    manifest being written there; with stderr full the line is lost. Either way the exit
    code still says what happened.
    """
    if sys.stderr is None:
        return
    with contextlib.suppress(OSError):
        print(line, file=sys.stderr)
