"""Turn measured rows into markdown tables and the pass/miss list of issue 4's bar.

Every ratio is computed from medians of the same run. "best native" is the fastest native
tool (any family, any arrangement kept after preselection) of the same algorithm on the same
corpus. A bar row whose inputs were not measured in this run says so instead of guessing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import sweep
from measure import median

MB = 1_000_000  # MB/s and RSS in decimal megabytes, as the GB/s figures


@dataclass
class Row:
    corpus: str
    label: str
    family: str
    algo: str
    kind: str
    argv: list[str]
    files: int
    bytes: int
    times: list[float] = field(default_factory=list)
    peak_rss: int = 0
    peak_pss: int = 0
    peak_unique: int = 0  # resident pages of the tree, each counted once (0: not measured)
    error: str = ""
    foreign: list[float] = field(default_factory=list)  # others' share of the CPU, per run

    @property
    def median(self) -> float | None:
        return median(self.times) if self.times and not self.error else None


def find(rows: list[Row], corpus: str, algo: str, family: str) -> Row | None:
    for r in rows:
        if (r.corpus, r.algo, r.family) == (corpus, algo, family) and r.median is not None:
            return r
    return None


def best_native(
    rows: list[Row], corpus: str, algo: str, families: tuple[str, ...] = ()
) -> Row | None:
    pool = [
        r
        for r in rows
        if r.corpus == corpus
        and r.algo == algo
        and r.kind == "native"
        and r.median is not None
        and (not families or r.family in families)
    ]
    return min(pool, key=lambda r: r.median or 0.0) if pool else None


def _fmt(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _share(values: list[float]) -> str:
    return f"{median(values):.0%}" if values else "-"


def _quiet(r: Row) -> str:
    (q,) = quiet_rows([r])
    return f"{q.median:.3f} ({len(q.times)})" if q.median is not None else f"- (0/{len(r.times)})"


def corpus_table(rows: list[Row], corpus: str) -> str:
    out = [
        (
            "| tool | algo | median s | min-max s | MB/s | files/s | peak RSS MB (tree) "
            "| peak PSS MB | x best native | others' CPU | quiet median s (n) |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in (r for r in rows if r.corpus == corpus):
        m = r.median
        if m is None:
            out.append(f"| {r.label} | {r.algo} | failed: {r.error[:80]} | | | | | | | | |")
            continue
        ref = best_native(rows, corpus, r.algo)
        ratio = m / ref.median if ref and ref.median else None
        spread = f"{min(r.times):.3f}-{max(r.times):.3f}"
        mbs = r.bytes / m / MB if r.bytes else None
        fps = r.files / m if r.files else None
        out.append(
            f"| {r.label} | {r.algo} | {m:.3f} | {spread} | {_fmt(mbs, 0)} | {_fmt(fps, 0)} "
            f"| {r.peak_rss / MB:.0f} | {r.peak_pss / MB:.0f} | {_fmt(ratio, 2)} "
            f"| {_share(r.foreign)} | {_quiet(r)} |"
        )
    return "\n".join(out)


def startup_table(rows: list[Row]) -> str:
    out = [
        "| command | algo | median s | min-max s | peak RSS MB (tree) | peak PSS MB "
        "| others' CPU |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in (r for r in rows if r.corpus == "startup"):
        if r.median is None:
            out.append(f"| {r.label} | {r.algo} | failed: {r.error[:80]} | | | | |")
            continue
        out.append(
            f"| {r.label} | {r.algo} | {r.median:.3f} | {min(r.times):.3f}-{max(r.times):.3f} "
            f"| {r.peak_rss / MB:.0f} | {r.peak_pss / MB:.0f} | {_share(r.foreign)} |"
        )
    return "\n".join(out)


@dataclass
class BarRow:
    target: str
    measured: str
    limit: str
    passed: bool | None  # None: not measured in this run


def _ratio_row(
    target: str, num: Row | None, den: Row | None, limit: float, sub: float = 0.0
) -> BarRow:
    if num is None or den is None or num.median is None or den.median is None:
        return BarRow(target, "not measured", f"≤ {limit}", None)
    if num.median - sub <= 0:
        text = f"start-up ({sub:.3f} s) ≥ make ({num.median:.3f} s): not measurable"
        return BarRow(target, text, f"≤ {limit}", None)
    ratio = (num.median - sub) / den.median
    text = f"{ratio:.2f} ({num.median - sub:.3f} s / {den.median:.3f} s {den.label})"
    return BarRow(target, text, f"≤ {limit}", ratio <= limit)


def bar(rows: list[Row], extra: dict[str, Any]) -> list[BarRow]:
    """Issue 4's bar, row by row, from this run's medians."""
    out: list[BarRow] = []
    make = "hashpar make"
    rhash_fams = ("rhash", "rhash x2")
    b3_fams = ("b3sum", "b3sum -P2")
    # Issue 4 names "rhash" and "b3sum" for small and real, and "two rhash processes in
    # parallel" only for big: the rows below take "rhash"/"b3sum" as the tool run once (the
    # issue's table), then again against the best arrangement of any native tool (stricter).
    for label, algo, families, target in (
        ("small SHA-256 vs rhash (one process)", "sha256", ("rhash",), 0.8),
        ("small SHA-256 vs best native SHA-256 (any arrangement; stricter)", "sha256", (), 0.8),
        ("small SHA-256 vs best xargs -P2 sha256sum", "sha256", ("sha256sum -P2",), 0.8),
        ("small BLAKE3 vs best xargs -P2 b3sum", "blake3", ("b3sum -P2",), 0.9),
    ):
        small = find(rows, "small", algo, make)
        out.append(_ratio_row(label, small, best_native(rows, "small", algo, families), target))
    for algo, fams, name in (
        ("blake3", b3_fams, "best b3sum"),
        ("sha256", ("rhash x2",), "two rhash in parallel"),
    ):
        empty = find(rows, "big", algo, "hashpar make (empty dir)") or find(
            rows, "startup", algo, "hashpar make (empty dir)"
        )
        sub = (empty.median or 0.0) if empty else 0.0
        label = f"big {algo.upper()} hashing time (make - make of empty dir) vs {name}"
        row = _ratio_row(
            label, find(rows, "big", algo, make), best_native(rows, "big", algo, fams), 1.15, sub
        )
        if empty is None:
            row.measured += " (start-up not measured: not subtracted)"
        out.append(row)
    for algo, title, single, fams, name in (
        ("sha256", "SHA-256", "rhash", rhash_fams, "rhash"),
        ("blake3", "BLAKE3", "b3sum", b3_fams, "b3sum"),
    ):
        out.append(
            _ratio_row(
                f"real {title} vs {name} (one process)",
                find(rows, "real", algo, make),
                best_native(rows, "real", algo, (single,)),
                0.8,
            )
        )
        out.append(
            _ratio_row(
                f"real {title} vs best {name} arrangement (xargs -P2 too; stricter)",
                find(rows, "real", algo, make),
                best_native(rows, "real", algo, fams),
                0.8,
            )
        )
    for corpus in ("small", "big"):
        j1, j2 = (
            find(rows, corpus, "sha256", "hashpar make -j 1"),
            find(rows, corpus, "sha256", "hashpar make -j 2"),
        )
        if j1 and j2 and j1.median and j2.median:
            speedup = j1.median / j2.median
            out.append(
                BarRow(
                    f"{corpus} SHA-256 -j 2 speed-up over -j 1",
                    f"{speedup:.2f}x",
                    "≥ 1.7x",
                    speedup >= 1.7,
                )
            )
        else:
            out.append(
                BarRow(f"{corpus} SHA-256 -j 2 speed-up over -j 1", "not measured", "≥ 1.7x", None)
            )
    for corpus in ("small", "big", "real"):
        for algo in ("blake3", "sha256"):
            out.append(
                _ratio_row(
                    f"{corpus} {algo} verify vs make",
                    find(rows, corpus, algo, "hashpar verify"),
                    find(rows, corpus, algo, make),
                    1.1,
                )
            )
    smalls = [r for r in rows if r.corpus == "small" and r.family == make and r.peak_rss]
    if smalls:
        worst = max(smalls, key=lambda r: r.peak_pss)
        once = worst.peak_unique  # the tree's resident set (measure.TreeSampler), if known
        also = f", each resident page once {once / MB:.0f}" if once else ""
        for kind, value in (("PSS", worst.peak_pss), ("sum of RSS", worst.peak_rss)):
            out.append(
                BarRow(
                    f"small peak memory of the process tree, make ({kind})",
                    f"{value / MB:.0f} MB ({worst.algo}; PSS {worst.peak_pss / MB:.0f}, "
                    f"RSS {worst.peak_rss / MB:.0f}{also})",
                    "< 100 MB",
                    value < 100 * MB,
                )
            )
    else:
        out.append(
            BarRow("small peak memory of the process tree", "not measured", "< 100 MB", None)
        )
    runs = extra.get("million", {}).get("runs", {})
    if not runs:
        out.append(
            BarRow("memory per entry, 1,000,000 files", "not measured (--million)", "< 400 B", None)
        )
    for label, run in runs.items():
        if run.get("exit") or run.get("rss_per_entry") is None:
            continue
        for kind in ("pss", "rss"):
            per_entry = run[f"{kind}_per_entry"]
            out.append(
                BarRow(
                    f"memory per entry, 1,000,000 files, {label} ({kind.upper()})",
                    f"{per_entry:.0f} B beyond make of an empty dir",
                    "< 400 B",
                    per_entry < 400,
                )
            )
    version = find(rows, "startup", "-", "hashpar --version")
    out.append(
        BarRow(
            "hashpar --version", f"{version.median:.3f} s", "< 0.2 s", (version.median or 0) < 0.2
        )
        if version and version.median
        else BarRow("hashpar --version", "not measured", "< 0.2 s", None)
    )
    return out


QUIET = 0.15  # a round is "quiet" when other processes used at most this share of the CPU


def quiet_rows(rows: list[Row]) -> list[Row]:
    """The same rows keeping only their quiet rounds (a row with none has no median)."""
    out = []
    for r in rows:
        kept = [(t, f) for t, f in zip(r.times, r.foreign, strict=False) if f <= QUIET]
        out.append(dataclasses.replace(r, times=[t for t, _ in kept], foreign=[f for _, f in kept]))
    return out


def bar_table(rows: list[BarRow]) -> str:
    mark = {True: "clears", False: "**misses**", None: "—"}
    out = ["| target | measured | bar | result |", "|---|---|---|---|"]
    out += [f"| {b.target} | {b.measured} | {b.limit} | {mark[b.passed]} |" for b in rows]
    return "\n".join(out)


def preselect_table(pre: dict[str, dict[str, list[tuple[str, float]]]]) -> str:
    out = ["| corpus | family | arrangements tried (median s), fastest first |", "|---|---|---|"]
    for corpus, families in pre.items():
        for family, tried in families.items():
            cells = ", ".join(
                f"`{label}` {m:.3f}" for label, m in sorted(tried, key=lambda t: t[1])
            )
            out.append(f"| {corpus} | {family} | {cells} |")
    return "\n".join(out)


def scaling_table(rows: list[Row]) -> str:
    out = [
        "| corpus | algo | -j 1 s | -j 2 s | speed-up | make s | verify s | verify/make |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for corpus in dict.fromkeys(r.corpus for r in rows if r.corpus != "startup"):
        for algo in ("blake3", "sha256"):
            j1, j2 = (
                find(rows, corpus, algo, "hashpar make -j 1"),
                find(rows, corpus, algo, "hashpar make -j 2"),
            )
            mk, vf = (
                find(rows, corpus, algo, "hashpar make"),
                find(rows, corpus, algo, "hashpar verify"),
            )
            if not (j1 or j2 or mk or vf):
                continue
            m1, m2 = (j1.median if j1 else None), (j2.median if j2 else None)
            mm, mv = (mk.median if mk else None), (vf.median if vf else None)
            sp = m1 / m2 if m1 and m2 else None
            vr = mv / mm if mv and mm else None
            out.append(
                f"| {corpus} | {algo} | {_fmt(m1)} | {_fmt(m2)} | {_fmt(sp, 2)} "
                f"| {_fmt(mm)} | {_fmt(mv)} | {_fmt(vr, 2)} |"
            )
    return "\n".join(out)


def million_table(mil: dict[str, Any]) -> str:
    out = [
        f"{mil['files']} files, {mil['bytes'] / 1e6:.0f} MB; fixed base = make of an empty "
        f"directory: {mil['base_rss'] / 1e6:.0f} MB RSS, {mil['base_pss'] / 1e6:.0f} MB PSS",
        "",
        "| hashpar (BLAKE3) | s | peak RSS MB | peak PSS MB | RSS B/entry | PSS B/entry |",
        "|---|---|---|---|---|---|",
    ]
    for label, r in mil["runs"].items():
        if r["exit"]:
            out.append(f"| {label} | failed: exit {r['exit']} {r['error'][:60]} | | | | |")
            continue
        per = [
            f"{x:.0f}" if x is not None else "-" for x in (r["rss_per_entry"], r["pss_per_entry"])
        ]
        out.append(
            f"| {label} | {r['seconds']:.1f} | {r['peak_rss'] / 1e6:.0f} "
            f"| {r['peak_pss'] / 1e6:.0f} | {per[0]} | {per[1]} |"
        )
    return "\n".join(out)


def render(
    rows: list[Row],
    pre: dict[str, Any],
    extra: dict[str, Any],
    sweeps: list[sweep.SweepResult],
    notes: list[str],
    quick: bool,
    rounds: int,
) -> str:
    m = extra["machine"]
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in m["flags"].items())
    size = "quick" if quick else "full size"
    parts = [
        f"# hashpar benchmark ({size}, {rounds} rounds, medians)",
        "",
        f"Command: `{extra['command']}`  ",
        (
            f"Machine: {m['cpu']}, {m['cores']} cores ({flags}), {m['memory_gib']} GiB, "
            f"Linux {m['kernel']}, Python {m['python']}, corpora on {m['filesystem']}  "
        ),
        "Versions: " + "; ".join(f"{k} {v}" for k, v in m["versions"].items()),
        "",
    ]
    parts += [f"- {n}" for n in notes] + [""]
    parts += ["## Start-up", "", startup_table(rows), ""]
    for corpus in dict.fromkeys(r.corpus for r in rows if r.corpus != "startup"):
        first = next(r for r in rows if r.corpus == corpus)
        parts += [
            f"## {corpus}: {first.files} files, {first.bytes / 1e6:.0f} MB",
            "",
            corpus_table(rows, corpus),
            "",
        ]
    parts += ["## hashpar: -j 1 vs -j 2, verify vs make", "", scaling_table(rows), ""]
    if "million" in extra:
        mil = extra["million"]
        parts += ["## Memory on many tiny files", "", million_table(mil), ""]
    parts += ["## The bar (issue 4), medians of all rounds", "", bar_table(bar(rows, extra)), ""]
    parts += [
        f"## The bar, medians of the quiet rounds only (others' CPU <= {QUIET:.0%})",
        "",
        bar_table(bar(quiet_rows(rows), extra)),
        "",
    ]
    parts += ["## Arrangements tried per peer (preselection)", "", preselect_table(pre), ""]
    for title, text in extra.get("profiles", {}).items():
        parts += [f"## Profile: hashpar make, {title}", "", text, ""]
    if sweeps:
        parts += ["## Sweeps of hashpar's defaults", "", sweep.markdown(sweeps)]
    return "\n".join(parts)
