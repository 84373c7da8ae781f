"""A progress display on stderr (files, bytes, throughput, ETA), only when stderr is a terminal.

rich draws it; it is refreshed from the progress callback at most ten times a second, with
no background thread (so worker processes are never forked while a display thread runs).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from hashpar.events import Progress, ProgressCallback, ignore_progress

__all__ = ["progress_display"]


@contextmanager
def progress_display(enabled: bool, label: str) -> Iterator[ProgressCallback]:
    """Yield a progress callback: a live display if enabled and stderr is a TTY, else a no-op."""
    if not (enabled and sys.stderr.isatty()):
        yield ignore_progress
        return
    from rich.console import Console  # imported here: start-up stays fast without a terminal
    from rich.filesize import decimal
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as RichProgress

    display = RichProgress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files  {task.fields[size]}  {task.fields[rate]}/s  ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        auto_refresh=False,
        transient=True,
    )
    task = display.add_task(label, total=None, size="0 bytes", rate="0 bytes")
    started = last = time.monotonic()

    def update(progress: Progress) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < 0.1:
            return
        last = now
        rate = progress.bytes_done / max(now - started, 1e-6)
        display.update(
            task,
            total=progress.files_found if progress.walk_done else None,
            completed=progress.files_done,
            size=decimal(progress.bytes_done),
            rate=decimal(int(rate)),
        )
        display.refresh()

    with display:
        yield update
