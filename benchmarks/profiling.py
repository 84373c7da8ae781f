"""Where hashpar spends its time: py-spy over a whole ``hashpar make`` run, summarised.

``--profile`` runs ``py-spy record --subprocesses --format raw`` (py-spy is
pip-installable; it needs ptrace, so root or ``kernel.yama.ptrace_scope=0``) around one
``hashpar make`` of a corpus, keeps the raw folded stacks beside the corpora and prints:

* samples per process (the parent and each worker), so an idle or saturated parent shows;
* the functions with the most *self* samples (where the CPU actually goes), per role;
* the hashpar functions with the most *inclusive* samples.

py-spy samples only threads that are running (not waiting) unless ``--idle`` is given, so
the samples of one process over the sampling rate is its CPU time, not its wall time. With
the ``fork`` start method a worker's stack begins with the parent's frames up to
``Process._bootstrap``: the summary tells roles apart by that frame.
"""

from __future__ import annotations

import shutil
import subprocess
from collections import Counter
from pathlib import Path

RATE = 250  # samples per second per process


def _role(frames: list[str]) -> str:
    return "worker" if any("_process_worker" in f for f in frames) else "parent"


def _short(frame: str) -> str:
    """``func (path/to/module.py:12)`` -> ``func (module.py:12)``."""
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit('/', 1)[-1]}" if where else name


def summarise(raw: Path, top: int = 12) -> str:
    per_process: Counter[str] = Counter()
    self_time: dict[str, Counter[str]] = {"parent": Counter(), "worker": Counter()}
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        n = int(count)
        frames = stack.split(";")
        # With --subprocesses a child's stack hangs under its parent's: the innermost
        # "process PID:..." frame names the process that was sampled.
        last = max(i for i, f in enumerate(frames) if f.startswith("process ") or i == 0)
        process, frames = frames[last], frames[last + 1 :]
        total += n
        role = _role(frames)
        pid = process.split(":", 1)[0].removeprefix("process ").strip()
        per_process[f"{role} {pid}"] += n
        if frames:
            self_time[role][_short(frames[-1])] += n
        for f in set(frames):
            if "hashpar/" in f:
                inclusive[_short(f)] += n
    if not total:
        return "py-spy recorded no samples."
    seconds = {k: v / RATE for k, v in per_process.items()}
    out = [
        f"{total} samples at {RATE} Hz = {total / RATE:.2f} CPU-seconds of Python "
        "(py-spy counts running threads only).",
        "",
        "| process | CPU s (samples / rate) |",
        "|---|---|",
    ]
    out += [f"| {k} | {v:.2f} |" for k, v in sorted(seconds.items(), key=lambda kv: -kv[1])]
    for role, counter in self_time.items():
        if not counter:
            continue
        n_role = sum(counter.values())
        out += ["", f"Top self time, {role} ({n_role} samples):", ""]
        out += ["| function | share of the role's samples |", "|---|---|"]
        out += [f"| `{f}` | {c / n_role:.0%} |" for f, c in counter.most_common(top)]
    out += ["", "Top hashpar functions, inclusive (all processes):", ""]
    out += ["| function | share of all samples |", "|---|---|"]
    out += [f"| `{f}` | {c / total:.0%} |" for f, c in inclusive.most_common(top)]
    return "\n".join(out)


def profile_make(
    base: tuple[str, ...], root: Path, algo: str, workdir: Path
) -> tuple[str, Path | None]:
    """Record one ``hashpar make`` under py-spy; return (markdown summary, raw file)."""
    spy = shutil.which("py-spy")
    if spy is None:
        return "profile skipped: py-spy is not installed (pip install py-spy)", None
    raw = workdir / f"profile-{root.name}-{algo}.txt"
    out = workdir / f"profile-{root.name}-{algo}.manifest.json"
    argv = [spy, "record", "--subprocesses", "--rate", str(RATE), "--format", "raw"]
    argv += ["-o", str(raw), "--", *base, "make", str(root), "--algo", algo, "-q", "-o", str(out)]
    res = subprocess.run(argv, capture_output=True, text=True, check=False)
    if res.returncode != 0 or not raw.exists():
        tail = (res.stderr or res.stdout).strip().splitlines()[-1:] or [""]
        return f"profile failed (exit {res.returncode}): {tail[0]}", None
    command = " ".join(argv[1:6]) + " ... -- hashpar make " + f"{root.name} --algo {algo}"
    return f"`py-spy {command}` (raw stacks: {raw})\n\n" + summarise(raw), raw
