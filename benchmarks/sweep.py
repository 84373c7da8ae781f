"""Parameter sweeps of hashpar's defaults through the library: ``make_manifest`` + ``Tuning``.

Each sweep varies one setting (``jobs`` or one ``Tuning`` field) over a list of values while
every other setting keeps its default, on the corpus where that setting matters. Values are
run in alternation (v1 v2 v3 v1 v2 v3 ...) and the median of the rounds is kept, like the
main benchmark. Calls run in this process (one pool per call, as the CLI does); the library
writes nothing, so only hashing and scheduling are timed, not the CLI's JSON output.

If hashpar, ``make_manifest`` or ``Tuning`` is absent, or a field named here does not exist,
that sweep is skipped with a note: the harness must run before the library lands.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from corpora import Corpus
from measure import QuietGate, median, timed_call

KiB, MiB = 1 << 10, 1 << 20

# (setting, values, [(corpus, algorithm), ...]); the default is added to the values if missing.
SWEEPS: list[tuple[str, list[int], list[tuple[str, str]]]] = [
    ("jobs", [1, 2, 3, 4], [("small", "blake3"), ("small", "sha256"), ("big", "sha256")]),
    (
        "buffer_size",
        [64 * KiB, 256 * KiB, 1 * MiB, 4 * MiB, 16 * MiB],
        [("big", "sha256"), ("big", "blake3"), ("small", "blake3")],
    ),
    ("batch_files", [16, 64, 256, 1024, 4096], [("small", "blake3"), ("real", "blake3")]),
    (
        "batch_bytes",
        [1 * MiB, 4 * MiB, 16 * MiB, 64 * MiB, 256 * MiB],
        [("small", "blake3"), ("real", "blake3")],
    ),
    ("window_per_worker", [1, 2, 4, 8, 16], [("small", "blake3")]),
    (
        "inline_max_files",
        [0, 16, 64, 256, 1024],
        [("ten", "blake3"), ("tiny", "blake3")],
    ),
    (
        "blake3_threads_min",
        [1 * MiB, 4 * MiB, 16 * MiB, 64 * MiB, 1 << 40],
        [("big", "blake3"), ("real", "blake3")],
    ),
]


@dataclass(frozen=True)
class Policy:
    """How hard to try for runs that did not share the CPU (see run.py's options)."""

    max_foreign: float = 0.15
    retries: int = 0
    gate: QuietGate = field(default_factory=lambda: QuietGate(0.15, 0.0))


@dataclass
class SweepResult:
    setting: str
    corpus: str
    algo: str
    default: int | None
    medians: dict[int, float]
    errors: dict[int, str]
    foreign: dict[int, float]  # median share of the CPU other processes used, per value

    def best(self) -> int | None:
        return min(self.medians, key=self.medians.__getitem__) if self.medians else None


def load() -> tuple[Any, str]:
    """The hashpar module if it offers make_manifest and Tuning, else (None, why not)."""
    try:
        mod = importlib.import_module("hashpar")
    except ImportError as exc:
        return None, f"sweeps skipped: hashpar cannot be imported ({exc})"
    missing = [n for n in ("make_manifest", "Tuning") if not hasattr(mod, n)]
    if missing:
        return None, f"sweeps skipped: hashpar has no {', '.join(missing)}"
    return mod, ""


def _default_jobs(mod: Any) -> int | None:
    """The number of workers ``make_manifest`` uses when ``jobs`` is not given."""
    param = inspect.signature(mod.make_manifest).parameters.get("jobs")
    default = param.default if param is not None else None
    if isinstance(default, int):
        return default
    # None means "the CPUs this process may use": ask the library, else count them.
    default_jobs = getattr(mod, "default_jobs", None)
    return int(default_jobs()) if callable(default_jobs) else os.cpu_count()


def run_sweeps(
    corpora: dict[str, Corpus],
    rounds: int,
    log: Callable[[str], None],
    only: set[str] | None = None,
    policy: Policy | None = None,
) -> tuple[list[SweepResult], list[str]]:
    mod, why = load()
    if mod is None:
        return [], [why]
    defaults = mod.Tuning()
    fields = {f.name for f in dataclasses.fields(defaults)}
    results: list[SweepResult] = []
    notes: list[str] = []
    for setting, values, targets in SWEEPS:
        if only and setting not in only:
            continue
        if setting != "jobs" and setting not in fields:
            notes.append(f"sweep {setting} skipped: Tuning has no field {setting!r}")
            continue
        default = _default_jobs(mod) if setting == "jobs" else getattr(defaults, setting)
        vals = sorted(set(values) | ({default} if isinstance(default, int) else set()))
        for corpus_name, algo in targets:
            corpus = corpora.get(corpus_name)
            if corpus is None:
                notes.append(f"sweep {setting} on {corpus_name}: corpus not selected, skipped")
                continue
            log(f"sweep {setting} on {corpus_name}/{algo}: {vals}")
            results.append(
                _sweep_one(
                    mod, defaults, setting, vals, default, corpus, algo, rounds, policy or Policy()
                )
            )
    return results, notes


def _sweep_one(
    mod: Any,
    defaults: Any,
    setting: str,
    values: list[int],
    default: int | None,
    corpus: Corpus,
    algo: str,
    rounds: int,
    policy: Policy,
) -> SweepResult:
    times: dict[int, list[float]] = {v: [] for v in values}
    foreign: dict[int, list[float]] = {v: [] for v in values}
    errors: dict[int, str] = {}
    for _ in range(rounds + 1):  # the first round only warms up
        for value in values:
            if value in errors:
                continue
            kwargs: dict[str, Any] = {"algorithm": algo}
            if setting == "jobs":
                kwargs["jobs"] = value
                kwargs["tuning"] = defaults
            else:  # jobs left to the library's default
                kwargs["tuning"] = dataclasses.replace(defaults, **{setting: value})
            try:
                seconds, share = _clean_call(
                    functools.partial(mod.make_manifest, corpus.path, **kwargs), policy
                )
            except (OSError, ValueError, TypeError, RuntimeError) as exc:  # a result, not a crash
                errors[value] = f"{exc.__class__.__name__}: {exc}"
                continue
            times[value].append(seconds)
            foreign[value].append(share)
    medians = {v: median(t[1:]) for v, t in times.items() if len(t) > 1}
    shares = {v: median(f[1:]) for v, f in foreign.items() if len(f) > 1}
    return SweepResult(setting, corpus.name, algo, default, medians, errors, shares)


def _clean_call(fn: Callable[[], object], policy: Policy) -> tuple[float, float]:
    """Like run.clean_run, in-process: wait for quiet, retry a call that shared the CPU."""
    best: tuple[float, float] | None = None
    for _ in range(policy.retries + 1):
        policy.gate.wait()
        seconds, share = timed_call(fn)
        if best is None or share < best[1]:
            best = (seconds, share)
        if share <= policy.max_foreign or seconds < 0.2:
            break
    assert best is not None
    return best


def as_json(results: list[SweepResult]) -> list[dict[str, Any]]:
    return [{**dataclasses.asdict(r), "best": r.best()} for r in results]


BYTE_SETTINGS = {"buffer_size", "batch_bytes", "blake3_threads_min", "inline_max_bytes"}


def _human(setting: str, value: int) -> str:
    if setting not in BYTE_SETTINGS or value < KiB:
        return str(value)
    if value >= 1 << 40:
        return "off"
    if value % MiB == 0:
        return f"{value // MiB} MiB"
    return f"{value // KiB} KiB" if value % KiB == 0 else str(value)


def markdown(results: list[SweepResult]) -> str:
    """One table per sweep: a column per value, median seconds, the default marked (d),
    the fastest in bold."""
    lines: list[str] = []
    by_setting: dict[str, list[SweepResult]] = {}
    for r in results:
        by_setting.setdefault(r.setting, []).append(r)
    for setting, group in by_setting.items():
        values = sorted({v for r in group for v in (*r.medians, *r.errors)})
        head = [_human(setting, v) for v in values]
        lines += [
            f"**{setting}** (median s of make_manifest; (d) = default, **bold** = fastest)",
            "",
        ]
        lines.append("| corpus | algo | " + " | ".join(head) + " | others' CPU (worst) |")
        lines.append("|---|---|" + "---|" * (len(values) + 1))
        for r in group:
            cells = []
            for v in values:
                if v in r.errors:
                    cell = "error"
                elif v in r.medians:
                    cell = f"{r.medians[v]:.3g}"
                    cell = f"**{cell}**" if v == r.best() else cell
                else:
                    cell = ""
                cells.append(cell + (" (d)" if v == r.default else ""))
            worst = f"{max(r.foreign.values()):.0%}" if r.foreign else "-"
            lines.append(f"| {r.corpus} | {r.algo} | " + " | ".join(cells) + f" | {worst} |")
        lines.append("")
    return "\n".join(lines)
