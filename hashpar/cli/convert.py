"""Typer's conversion of option values, without pydantic, for the types hashpar's options use.

typer (0.29 here) converts every value it parses through a pydantic ``TypeAdapter``, even an
unset option's None: importing pydantic and building the adapters cost ~65 ms of CPU in every run
of every command, more than the rest of the command's start-up (docs/design.md,
"Start-up"). The values hashpar's options take need no pydantic: a ``str`` stays itself, an
enum goes through typer's own choice function, an ``int`` with a minimum is a decimal
number, a repeated ``str`` option becomes a list.

:class:`ConvertingGroup` (the app) and :class:`ConvertingCommand` (each command) give every
parameter of those types a converter that does exactly that, and that hands any value it
is not sure of back to typer's own conversion, unchanged: so a bad value gets typer's own
error message, and a valid one the value typer would produce (``tests/test_startup.py``
checks both against typer's adapters). With a typer that does not convert this way (older
versions), nothing is changed.
"""

from __future__ import annotations

import enum
from typing import Any

import typer.core

__all__ = ["ConvertingCommand", "ConvertingGroup"]

try:  # typer's private conversion layer, in the typer versions that convert with pydantic
    from typer._coercion import RuntimeParam, build_runtime_param
    from typer._param_types import coerce_cli_choice
except ImportError:  # pragma: no cover - another typer: leave its conversion alone
    CONVERTS_WITH_PYDANTIC = False
else:
    CONVERTS_WITH_PYDANTIC = True


_UNSURE = object()
"""What :func:`_convert` returns for a value it leaves to typer."""


def _convert(annotation: Any, info: Any, value: Any, ctx: Any) -> Any:
    """``value`` (not None) converted as typer's adapter would convert it, or _UNSURE."""
    if annotation is str or annotation is bool:
        return value if type(value) is annotation else _UNSURE
    if annotation == list[str]:
        if isinstance(value, tuple | list) and all(type(item) is str for item in value):
            return list(value)
        return _UNSURE
    if annotation is int:
        # Only the plain decimal form: pydantic also takes "+3", " 3", "3.0", "1_000", ...
        if not (type(value) is str and value.isascii() and value.isdigit()):
            return _UNSURE
        if value[0] == "0" or len(value) > 9:
            return _UNSURE
        number = int(value)
        if (info.min is not None and number < info.min) or (
            info.max is not None and number > info.max
        ):
            return _UNSURE  # out of range: typer's adapter words the error
        return number
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        try:
            return coerce_cli_choice(
                value, choices=list(annotation), case_sensitive=info.case_sensitive, ctx=ctx
            )
        except ValueError:  # not a choice: typer's adapter words the error
            return _UNSURE
    return _UNSURE


def _handled(annotation: Any, info: Any) -> bool:
    """True for the annotations :func:`_convert` knows, with no setting changing their meaning."""
    if info.parser is not None or info.clamp:
        return False
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return True
    return annotation in (str, bool, int) or annotation == list[str]


if CONVERTS_WITH_PYDANTIC:

    class _Converter(RuntimeParam):  # typer's private base class
        """typer's own rules for None and repeated values, then :func:`_convert`."""

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            converted = _convert(self.annotation, self.parameter_info, value, ctx)
            if converted is _UNSURE:
                typer_own = build_runtime_param(param.type_descriptor)
                return typer_own._coerce_value(value, param=param, ctx=ctx)
            return converted


def _install(params: list[Any]) -> None:
    """Give each parameter of a handled type a :class:`_Converter` (before its first use)."""
    if not CONVERTS_WITH_PYDANTIC:
        return  # pragma: no cover
    for param in params:
        descriptor = getattr(param, "type_descriptor", None)
        if (
            descriptor is not None
            and getattr(param, "_runtime_param", False) is None
            and _handled(descriptor.annotation, descriptor.parameter_info)
        ):
            param._runtime_param = _Converter(
                parameter_info=descriptor.parameter_info, annotation=descriptor.annotation
            )


class _Converting:
    """Mixed into a click command or group: its parameters, ``--help`` included, convert
    values without pydantic."""

    params: list[Any]

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        _install(self.params)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]  # made on first use
        _install([option])
        return option


class ConvertingCommand(_Converting, typer.core.TyperCommand):
    """A command whose parameters, ``--help`` included, convert values without pydantic."""


class ConvertingGroup(_Converting, typer.core.TyperGroup):
    """The app's group: its own parameters, ``--help`` included, convert without pydantic;
    ``--help`` lists its commands in the order of ``COMMAND_MODULES``."""

    def list_commands(self, ctx: Any) -> list[str]:
        from hashpar.cli.app import COMMAND_MODULES

        order = list(COMMAND_MODULES)
        names: list[str] = super().list_commands(ctx)
        return sorted(names, key=lambda name: order.index(name) if name in order else len(order))
