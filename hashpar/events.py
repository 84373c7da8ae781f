"""Progress reporting: the library emits :class:`Progress` values, the caller renders them.

The callback defaults to doing nothing, so the core never checks whether anyone listens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Progress", "ProgressCallback", "ignore_progress"]


@dataclass(frozen=True, slots=True)
class Progress:
    """Counters of a run so far; ``files_found`` is final once ``walk_done`` is True."""

    files_found: int
    files_done: int
    bytes_done: int
    walk_done: bool


ProgressCallback = Callable[[Progress], None]
"""Called in the caller's thread after every finished batch."""


def ignore_progress(progress: Progress) -> None:
    """The default progress callback: does nothing."""
