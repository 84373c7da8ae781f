"""Public names imported on first use (PEP 562), for the packages that re-export them.

``import hashpar`` then costs no import of the library behind it (docs/design.md,
"Start-up"); the first access of a name imports its module once, and keeps the value.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # not typing.TYPE_CHECKING, which costs an import (mypy knows the name)
if TYPE_CHECKING:
    from collections.abc import Callable, MutableMapping


def lazy_attributes(
    package: str, sources: dict[str, str], namespace: MutableMapping[str, object]
) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The module-level ``__getattr__`` and ``__dir__`` of ``package``, whose public names
    live in the modules ``sources`` maps them to; ``namespace`` is its ``globals()``."""

    def __getattr__(name: str) -> object:
        try:
            source = sources[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        value = getattr(importlib.import_module(source), name)
        namespace[name] = value  # later lookups find it at once
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(sources))

    return __getattr__, __dir__
