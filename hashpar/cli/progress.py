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
    if not (enabled and sys.stderr is not None and sys.stderr.isatty()):
        yield ignore_progress
        return
    from rich.console import Console  # imported here: start-up stays fast without a terminal
    from rich.filesize import decimal
    from rich.progress import BarColumn, TextColumn
    from rich.progress import Progress as RichProgress

    display = RichProgress(
        TextColumn(label),
        BarColumn(),
        TextColumn("{task.fields[counts]} files  {task.fields[size]}  {task.fields[rate]}/s"),
        TextColumn("{task.fields[eta]}"),
        console=Console(stderr=True),
        auto_refresh=False,
        transient=True,
    )
    task = display.add_task(label, total=None, counts="0", size="0 B", rate="0 B", eta="")
    started = last = time.monotonic()

    def update(progress: Progress) -> None:
        nonlocal last
        now = time.monotonic()
        if now - last < 0.1:
            return
        last = now
        elapsed = max(now - started, 1e-6)
        found = f"{progress.files_found}" + ("" if progress.walk_done else "+")
        eta = "walking the tree"
        if progress.walk_done and progress.files_done:
            left = (progress.files_found - progress.files_done) * elapsed / progress.files_done
            eta = f"ETA {int(left) // 60}:{int(left) % 60:02d}"
        display.update(
            task,
            total=max(progress.files_found, 1),
            completed=progress.files_done,
            counts=f"{progress.files_done}/{found}",
            size=decimal(progress.bytes_done),
            rate=decimal(int(progress.bytes_done / elapsed)),
            eta=eta,
        )
        display.refresh()

    with display:
        yield update
