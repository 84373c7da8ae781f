"""Render a Report for people (one line per problem, then a summary) or as one JSON object.

Human output, in this order, each group sorted by path::

    MODIFIED path
    MISSING path
    NEW path
    MOVED from -> to
    ERROR path: reason (kind)
    hashpar: 5 entries verified: 1 ok, 1 modified, 1 missing, 1 new, 1 moved, 1 error

A checksum file's unused lines are named on stderr as it is read (hashpar.cli.cmd_import);
the summary then ends ``, N malformed lines, N conflicting lines`` (each only when not 0).

Every name and reason goes through :func:`hashpar.names.display_name`, so a newline, a tab
or a terminal escape in a file name is shown as ``\\n``, ``\\t``, ``\\x1b`` and can never start a
line of its own. The words are stable: scripts may match on them (``--json`` is better).

JSON output is exactly one object on one line::

    {"summary": {"ok": n, "modified": n, "missing": n, "new": n, "moved": n, "errors": n,
                 "verified": n, "ignore_new": bool, "new_files_checked": bool,
                 "malformed": n, "conflicting": n},
     "modified": [path...], "missing": [path...], "new": [path...],
     "moved": [{"from": p, "to": q}...], "errors": [{"path": p, "error": text, "kind": k}...],
     "input_lines": [{"line": n, "kind": "malformed" | "conflicting", "error": text}...]}

``malformed`` and ``conflicting`` count every such line of a checksum file; ``input_lines``
lists the first :data:`hashpar.formats.records.MAX_KEPT` of them, in line order.

Paths in JSON are manifest keys (:func:`hashpar.names.key_for`): the name itself when it is
valid UTF-8, otherwise the "\\0"-prefixed escaped form, so every name survives exactly.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgspec

from hashpar.compare import Report
from hashpar.names import display_name, key_for, utf8_text

__all__ = ["human_lines", "report_json", "summary_line"]


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def summary_line(report: Report, verb: str = "verified") -> str:
    """``hashpar: N entries verified: N ok, N modified, N missing, N new, N moved, N errors``,
    then ``, N malformed lines, N conflicting lines`` where a checksum file had any."""
    new = f"{len(report.new)} new" + (" (ignored)" if report.ignore_new and report.new else "")
    if not report.new_files_checked:
        new = "new files not looked for"
    return (
        f"hashpar: {_plural(report.verified, 'entry', 'entries')} {verb}: {report.ok} ok, "
        f"{len(report.modified)} modified, {len(report.missing)} missing, {new}, "
        f"{len(report.moved)} moved, {_plural(len(report.errors), 'error', 'errors')}"
        + _input_counts(report)
    )


def _input_counts(report: Report) -> str:
    """``, 2 malformed lines, 1 conflicting line`` for a checksum file's unused lines."""
    lines = report.input_lines
    counts = [
        _plural(count, f"{kind} line", f"{kind} lines")
        for kind, count in (("malformed", lines.malformed), ("conflicting", lines.conflicting))
        if count
    ]
    return "".join(f", {count}" for count in counts)


def human_lines(report: Report, *, quiet: bool = False, verb: str = "verified") -> Iterator[str]:
    """The lines of the human report, without newlines; ``quiet`` leaves out the summary."""
    for path in report.modified:
        yield f"MODIFIED {display_name(path)}"
    for path in report.missing:
        yield f"MISSING {display_name(path)}"
    for path in report.new:
        yield f"NEW {display_name(path)}"
    for move in report.moved:
        yield f"MOVED {display_name(move.source)} -> {display_name(move.target)}"
    for path, problem in report.errors.items():
        yield f"ERROR {display_name(path)}: {display_name(problem.message)} ({problem.kind})"
    if not quiet:
        yield summary_line(report, verb)


def report_json(report: Report) -> bytes:
    """The JSON object described in the module docstring, with a trailing newline."""
    document: dict[str, Any] = {
        "summary": {
            "ok": report.ok,
            "modified": len(report.modified),
            "missing": len(report.missing),
            "new": len(report.new),
            "moved": len(report.moved),
            "errors": len(report.errors),
            "verified": report.verified,
            "ignore_new": report.ignore_new,
            "new_files_checked": report.new_files_checked,
            "malformed": report.input_lines.malformed,
            "conflicting": report.input_lines.conflicting,
        },
        "modified": [key_for(p) for p in report.modified],
        "missing": [key_for(p) for p in report.missing],
        "new": [key_for(p) for p in report.new],
        "moved": [{"from": key_for(m.source), "to": key_for(m.target)} for m in report.moved],
        "errors": [
            {"path": key_for(path), "error": utf8_text(problem.message), "kind": str(problem.kind)}
            for path, problem in report.errors.items()
        ],
        "input_lines": [
            {"line": line.line, "kind": str(line.kind), "error": utf8_text(line.message)}
            for line in report.input_lines.kept
        ],
    }
    return msgspec.json.encode(document) + b"\n"
