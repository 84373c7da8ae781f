"""Start-up stays cheap: what each entry point imports (never how long it takes).

Every run of the command, and every worker process under spawn/forkserver, pays for what it
imports before doing anything (docs/design.md, "Start-up"). These tests pin the structure
that keeps that small: which modules a run loads, seen with ``python -X importtime``.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer.main

import hashpar
from hashpar.cli.app import load_commands


def imported_by(*args: str) -> set[str]:
    """The modules ``python -X importtime ARGS`` loads beyond those the interpreter loads on
    its own (a site's .pth files may import typing, say: not hashpar's doing)."""
    return _imports(*args) - _imports("-c", "pass")


def _imports(*args: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return {
        line.rpartition("|")[2].strip()
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }


def loaded(modules: set[str], *names: str) -> list[str]:
    """The ``names`` (packages included with their submodules) found in ``modules``."""
    return sorted(m for m in modules if any(m == n or m.startswith(f"{n}.") for n in names))


LIBRARY = ("hashpar.api", "hashpar.engine", "hashpar.manifest", "hashpar.compare")
HEAVY = ("concurrent.futures", "multiprocessing", "msgspec", "blake3", "rich", "pydantic")


def test_import_hashpar_loads_none_of_the_library() -> None:
    modules = imported_by("-c", "import hashpar")
    assert loaded(modules, *LIBRARY, *HEAVY, "typing", "typer") == []


def test_a_worker_loads_only_the_worker_side() -> None:
    """spawn and forkserver workers import hashpar.hashing: not the scheduler or the API."""
    modules = imported_by("-c", "import hashpar.hashing")
    assert loaded(modules, *LIBRARY, "concurrent.futures", "msgspec", "rich", "typer") == []


def test_version_loads_neither_typer_nor_the_library() -> None:
    modules = imported_by("-m", "hashpar", "--version")
    assert loaded(modules, *LIBRARY, *HEAVY, "typer", "click", "hashpar.cli.app") == []


def test_help_loads_no_library_and_no_pydantic() -> None:
    for args in (["--help"], ["make", "--help"], ["verify", "--help"], ["make"]):
        modules = imported_by("-m", "hashpar", *args)
        assert loaded(modules, *LIBRARY, *HEAVY) == [], args


def test_make_loads_no_pydantic_rich_or_other_commands_code(tmp_path: Path) -> None:
    """Without a terminal there is no progress display; options convert without pydantic."""
    (tmp_path / "a").write_bytes(b"a")
    modules = imported_by(
        "-m", "hashpar", "make", str(tmp_path), "--algo", "sha256", "-j", "2", "--exclude", "x"
    )
    assert "hashpar.engine" in modules
    unwanted = ("pydantic", "rich", "hashpar.formats.bagit", "hashpar.formats.sums")
    assert loaded(modules, *unwanted, "hashpar.cli.render") == []
    # A tree this small is hashed in-process: no pool, so none of its modules; no verify code.
    in_process = ("multiprocessing", "concurrent.futures.process", "hashpar.compare")
    assert loaded(modules, *in_process, "hashpar.guard") == []


def test_the_function_compare_is_not_replaced_by_its_module() -> None:
    """Importing the submodule hashpar.compare binds it on the package; the function wins."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import hashpar, hashpar.api, hashpar.compare as c; "
            "from hashpar import *; "
            "print(hashpar.compare is c is compare is hashpar.compare.__globals__['compare'])",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout == "True\n"


def test_dir_and_star_import_list_the_lazy_names() -> None:
    assert set(hashpar.__all__) <= set(dir(hashpar))
    namespace: dict[str, Any] = {}
    exec("from hashpar import *", namespace)
    assert set(hashpar.__all__) <= set(namespace)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        hashpar.nope  # noqa: B018


# The converters in hashpar.cli.convert against typer's own (pydantic) conversion: the same
# value for every valid input, the same error for every invalid one.
VALUES: dict[str, list[Any]] = {
    "str": ["x", "-", "", " a b ", "é", "\udcff", None],
    "bool": [True, False, None],
    "int": [
        "1",
        "2",
        "64",
        "999999999",
        "1000000000",
        "0",
        "-1",
        "01",
        "+3",
        " 3",
        "3.0",
        "1_000",
        "x",
        "",
        "\u0663",
        None,
    ],
    "list[str]": [("a",), ("a", "b"), (), None],
    "Algorithm": ["blake3", "sha256", "SHA256", "md5", "", hashpar.Algorithm.BLAKE3, None],
    "ChecksumFormat": ["sums", "bsd", "bagit", "BSD", "json", None],
}


def outcome(param: Any, ctx: typer.Context, runtime: Any, value: Any) -> tuple[str, Any]:
    try:
        result = runtime.coerce(value, param=param, ctx=ctx)
    except typer.BadParameter as exc:
        return ("error", exc.format_message())
    return ("value", (type(result), result))


def test_converters_agree_with_typer_on_every_option() -> None:
    from typer._coercion import build_runtime_param

    from hashpar.cli.convert import _Converter

    group: Any = typer.main.get_command(load_commands())
    checked = 0
    for command in [group, *group.commands.values()]:
        ctx = typer.Context(command, info_name=command.name)
        params = [*command.params, command.get_help_option(ctx)]
        for param in params:
            runtime = param.get_runtime_param()
            if not isinstance(runtime, _Converter):
                continue
            descriptor = param.type_descriptor
            kind = getattr(descriptor.annotation, "__name__", str(descriptor.annotation))
            typer_own = build_runtime_param(descriptor)
            for value in VALUES["list[str]" if kind == "list" else kind]:
                ours = outcome(param, ctx, runtime, value)
                assert ours == outcome(param, ctx, typer_own, value), (command.name, param, value)
                checked += 1
    assert checked > 100
