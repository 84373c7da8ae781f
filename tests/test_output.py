"""Where results go (hashpar.cli.output): every byte or an error, and -o by the name given.

A raw stream (stdout under ``python -u`` or ``PYTHONUNBUFFERED=1``) writes with one
``write(2)``, which may write part of what it was given and return the count, with no error:
a disk filling up, a reader going away, a signal. :class:`ShortWrites` behaves so,
deterministically, in place of the kernel.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import BinaryIO, cast

import pytest

from hashpar import make_manifest
from hashpar.cli.cmd_verify import write_report
from hashpar.cli.output import PipeClosed, open_output
from hashpar.compare import diff
from hashpar.errors import OutputError
from hashpar.manifest import write_manifest

NO_SPACE = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
DATA = bytes(range(256)) * 4000  # 1 MB, each byte's place visible


class ShortWrites(io.RawIOBase):
    """A raw stream taking at most ``step`` bytes a write and returning how many; once
    ``room`` bytes are taken, a write raises ``full`` (or returns None, a non-blocking
    stream with no room, when ``full`` is None). Bytes go to ``sink`` if given."""

    def __init__(
        self,
        step: int,
        room: int | None = None,
        full: BaseException | None = NO_SPACE,
        sink: BinaryIO | None = None,
    ) -> None:
        super().__init__()
        self.step, self.room, self.full, self.sink = step, room, full, sink
        self.taken = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data: object) -> int | None:
        left = len(data) if self.room is None else self.room - len(self.taken)  # type: ignore[arg-type]
        if left <= 0:
            if self.full is None:
                return None
            raise self.full
        part = bytes(memoryview(data)[: min(self.step, left)])  # type: ignore[arg-type]
        self.taken += part
        if self.sink is not None:
            self.sink.write(part)
        return len(part)

    def fileno(self) -> int:
        return self.sink.fileno() if self.sink is not None else sys.__stderr__.fileno()

    def flush(self) -> None:
        if self.sink is not None:
            self.sink.flush()

    def close(self) -> None:
        if not self.closed:
            super().close()  # flushes
            if self.sink is not None:
                self.sink.close()


Install = Callable[[ShortWrites], ShortWrites]


@pytest.fixture
def raw_stdout(monkeypatch: pytest.MonkeyPatch) -> Install:
    """Make a ShortWrites stdout's binary stream. Called in the test itself: pytest puts its
    own sys.stdout back between a fixture's setup and the test."""

    def install(stream: ShortWrites) -> ShortWrites:
        monkeypatch.setattr(sys, "stdout", SimpleNamespace(buffer=stream, fileno=stream.fileno))
        return stream

    return install


def test_every_byte_reaches_stdout_through_short_writes(raw_stdout: Install) -> None:
    stdout = raw_stdout(ShortWrites(step=4096))
    with open_output(None) as out:
        assert out.write(DATA) == len(DATA)
        out.commit()
    assert stdout.taken == DATA


@pytest.mark.parametrize(
    ("full", "raised", "message"),
    [
        (NO_SPACE, OutputError, "cannot write standard output: No space left on device"),
        (BrokenPipeError(errno.EPIPE, "Broken pipe"), PipeClosed, ""),
        (None, OutputError, "cannot write standard output: Resource temporarily unavailable"),
    ],
    ids=["disk-full", "reader-gone", "non-blocking-full"],
)
def test_a_short_write_then_a_failure_is_that_failure(
    raw_stdout: Install, full: BaseException | None, raised: type, message: str
) -> None:
    """The write(2) after a short one says why: it is never taken as done."""
    stdout = raw_stdout(ShortWrites(step=len(DATA), room=65536, full=full))
    with open_output(None) as out, pytest.raises(raised) as caught:
        out.write(DATA)
    assert str(caught.value) == message
    assert stdout.taken == DATA[:65536]


def test_a_short_write_into_the_temp_file_fails_and_commits_nothing(tmp_path: Path) -> None:
    """-o FILE: the old file stays, and no temp file is left."""
    target = tmp_path / "m.json"
    target.write_bytes(b"old")
    message = f"cannot write {target}: No space left on device"
    with pytest.raises(OutputError, match=message), open_output(str(target)) as out:
        out.stream = cast(BinaryIO, ShortWrites(1000, 65536, sink=out.stream))
        out.write(DATA)
        out.commit()
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["m.json"]


def test_every_writer_of_results_gets_every_byte_out(raw_stdout: Install, tmp_path: Path) -> None:
    """make and import (write_manifest), verify and diff (write_report, lines and JSON): all
    their bytes arrive through a stream that takes 7 at a time."""
    (tmp_path / "t").mkdir()
    for i in range(300):
        (tmp_path / "t" / f"f{i}").write_bytes(b"%d" % i)
    manifest = make_manifest(tmp_path / "t", jobs=1)
    report = diff(manifest, make_manifest(tmp_path / "t", jobs=1, excludes=["f1*"]))
    writers = [
        lambda out: write_manifest(manifest, out),
        lambda out: write_report(out, report, json_output=True, quiet=False, verb="compared"),
        lambda out: write_report(out, report, json_output=False, quiet=False, verb="compared"),
    ]
    for writer in writers:
        whole = io.BytesIO()
        writer(SimpleNamespace(write=whole.write, commit=lambda: None))
        stdout = raw_stdout(ShortWrites(step=7))
        with open_output(None) as out:
            writer(out)
            out.commit()
        assert len(whole.getvalue()) > 100  # many writes of 7 bytes
        assert stdout.taken == whole.getvalue()


@pytest.mark.parametrize("name", ["/dev/fd/{fd}", "/proc/self/fd/{fd}", "{link}"])
def test_o_naming_a_pipe_through_proc_writes_into_that_pipe(tmp_path: Path, name: str) -> None:
    """``-o /dev/stdout`` with stdout a pipe, ``-o >(cmd)``, and a link leading there: the
    name is opened as given, not resolved to ``pipe:[N]``, which names nothing."""
    read, write = os.pipe()
    link = tmp_path / "link"
    link.symlink_to(f"/dev/fd/{write}")
    target = name.format(fd=write, link=link)
    try:
        with open_output(target) as out:
            assert out.paths == [target]  # nothing to create, nothing to replace
            out.write(b"through")
            out.commit()
        os.close(write)
        with open(read, "rb") as reader:
            assert reader.read() == b"through"
    finally:
        for fd in (read, write):
            with contextlib.suppress(OSError):  # closed already
                os.close(fd)
    assert sorted(os.listdir(tmp_path)) == ["link"]
    assert stat.S_ISLNK(link.lstat().st_mode)
