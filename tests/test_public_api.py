"""The public surface is exactly hashpar.__all__, and every public name is documented."""

from __future__ import annotations
import __future__

import inspect
import types

import hashpar


def test_all_lists_exactly_the_public_names() -> None:
    # dir(), not vars(): the names are imported on first use (PEP 562), and dir() lists them.
    public = {
        name
        for name in dir(hashpar)
        if not name.startswith("_")
        and not isinstance(getattr(hashpar, name), types.ModuleType | __future__._Feature)
    }
    assert sorted(hashpar.__all__) == sorted(public | {"__version__"})


def test_every_public_name_is_documented() -> None:
    for name in hashpar.__all__:
        value = getattr(hashpar, name)
        if inspect.isclass(value) or inspect.isfunction(value):
            assert inspect.getdoc(value), f"{name} has no docstring"


def test_the_cli_uses_only_the_library() -> None:
    """The CLI is a thin layer: it never reaches into the worker code or the scheduler."""
    import pathlib

    cli = pathlib.Path(hashpar.__file__).parent / "cli"
    for source in cli.glob("*.py"):
        text = source.read_text()
        for private in ("hashpar.hashing", "hashpar.engine", "hashpar.scan"):
            assert f"from {private}" not in text, f"{source.name} imports {private}"
