"""The tools under test: hashpar, its native and Python peers, and the machine they run on.

A *family* is one way a user would run a tool (``b3sum`` alone, ``b3sum`` under
``xargs -P2``...). A family can have several *arrangements* (batch sizes, thread counts);
``run.py`` tries them all briefly and keeps the fastest one per family and corpus, so each
peer is shown at its best, not at an arbitrary setting. A tool that is not installed is left
out with a note, never a crash.

Every peer's command writes its digests to stdout, which the harness sends to /dev/null for
every tool alike. ``find ... -print0 | xargs -0`` pipelines include the walk in the timing,
as hashpar's time includes its own walk.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

XARGS_SIZE = "2000000"  # -s: let -n rather than the default 128 KiB command buffer decide


@dataclass(frozen=True)
class Tool:
    label: str  # the row name, e.g. "xargs -P2 -n 512 b3sum"
    family: str  # the arrangement-independent name, e.g. "b3sum -P2"
    algo: str  # "blake3" or "sha256"
    kind: str  # "native", "python", "hashpar" or "reference"
    argv: tuple[str, ...]


def sh(script: str) -> tuple[str, ...]:
    return ("bash", "-c", "set -o pipefail; " + script)


def _find(root: Path) -> str:
    return f"find {shlex.quote(str(root))} -type f -print0"


def batch_sizes(files: int) -> list[int]:
    """Candidate ``xargs -n`` values: a few fixed sizes, plus half the corpus."""
    half = max(1, -(-files // 2))
    if files <= 8:
        return sorted({1, half})
    return sorted({n for n in (64, 512, 4096) if n < half} | {half})


def missing_tools() -> dict[str, str]:
    """Peers that cannot run here, each with the reason."""
    notes = {}
    for exe in ("b3sum", "rhash", "sha256sum", "hashdeep", "dirhash", "checksumdir", "find"):
        if shutil.which(exe) is None:
            notes[exe] = f"{exe} not found on PATH: skipped"
    return notes


def peers(root: Path, files: int) -> list[Tool]:
    """Every arrangement of every installed peer for the tree at ``root``."""
    skip = missing_tools()
    q = shlex.quote(str(root))
    find = _find(root)
    ncpu = os.cpu_count() or 1
    tools: list[Tool] = []

    def add(label: str, family: str, algo: str, kind: str, argv: tuple[str, ...]) -> None:
        exe = family.split()[0]
        if exe not in skip and "find" not in skip:
            tools.append(Tool(label, family, algo, kind, argv))

    for threads in sorted({1, ncpu}):
        add(
            f"b3sum --num-threads {threads}",
            "b3sum",
            "blake3",
            "native",
            sh(f"{find} | xargs -0 -s {XARGS_SIZE} b3sum --num-threads {threads}"),
        )
    for n in batch_sizes(files):
        for threads in sorted({1, ncpu}):
            add(
                f"xargs -P2 -n {n} b3sum --num-threads {threads}",
                "b3sum -P2",
                "blake3",
                "native",
                sh(f"{find} | xargs -0 -P2 -n {n} -s {XARGS_SIZE} b3sum --num-threads {threads}"),
            )
    add("rhash --sha256 -r", "rhash", "sha256", "native", ("rhash", "--sha256", "-r", str(root)))
    add(
        "sha256sum",
        "sha256sum",
        "sha256",
        "native",
        sh(f"{find} | xargs -0 -s {XARGS_SIZE} sha256sum"),
    )
    for n in batch_sizes(files):
        add(
            f"xargs -P2 -n {n} rhash --sha256",
            "rhash x2",
            "sha256",
            "native",
            sh(f"{find} | xargs -0 -P2 -n {n} -s {XARGS_SIZE} rhash --sha256"),
        )
        add(
            f"xargs -P2 -n {n} sha256sum",
            "sha256sum -P2",
            "sha256",
            "native",
            sh(f"{find} | xargs -0 -P2 -n {n} -s {XARGS_SIZE} sha256sum"),
        )
    add(
        "hashdeep -c sha256 -r -j2",
        "hashdeep -j2",
        "sha256",
        "native",
        ("hashdeep", "-c", "sha256", "-r", "-j2", str(root)),
    )
    add(
        "dirhash -a sha256 -j 2",
        "dirhash -j2",
        "sha256",
        "python",
        sh(f"dirhash {q} -a sha256 -j 2"),
    )
    add(
        "checksumdir -a sha256", "checksumdir", "sha256", "python", sh(f"checksumdir -a sha256 {q}")
    )
    return tools


def resolve_hashpar(option: str | None) -> tuple[tuple[str, ...] | None, str]:
    """The argv prefix that runs hashpar, and a note saying where it came from.

    The console script installed beside this interpreter comes first: a ``hashpar`` found on
    PATH may be a version manager's shim (pyenv's is a bash script that costs ~0.2 s per
    call here), which would be timed as if it were hashpar's own start-up.
    """
    if option:
        argv = tuple(shlex.split(option))
        if shutil.which(argv[0]) is None:
            return None, f"--hashpar {option!r}: {argv[0]} not found"
        return argv, f"hashpar run as {option!r}"
    beside = Path(sys.executable).parent / "hashpar"
    if beside.is_file() and os.access(beside, os.X_OK):
        return (str(beside),), f"hashpar run as {beside}"
    exe = shutil.which("hashpar")
    if exe and "/shims/" not in exe:
        return (exe,), f"hashpar run as {exe}"
    if importlib.util.find_spec("hashpar") is not None:
        return (sys.executable, "-m", "hashpar"), "hashpar run as python -m hashpar"
    return None, "hashpar is not installed (pip install -e .): hashpar rows skipped"


def compile_hashpar() -> str:
    """Write the bytecode cache of the hashpar package this interpreter imports.

    ``pip install .`` does this, but an editable install under PYTHONDONTWRITEBYTECODE=1 (set
    on this machine) never gets one, and then every run compiles hashpar's source again:
    about 12 ms of start-up that no installed copy pays. Returns a note for the report.
    """
    spec = importlib.util.find_spec("hashpar")
    if spec is None or not spec.submodule_search_locations:
        return "hashpar's bytecode: not found, not compiled"
    package = next(iter(spec.submodule_search_locations))
    done = subprocess.run(
        [sys.executable, "-m", "compileall", "-q", package], capture_output=True, check=False
    )
    state = "compiled" if done.returncode == 0 else "could not be compiled"
    return f"hashpar's bytecode cache {state} ({package}), as an installed copy has it"


def hashpar_tools(
    base: tuple[str, ...], root: Path, manifests: dict[str, Path], scaling: bool = True
) -> list[Tool]:
    """make (default jobs, and with ``scaling`` -j 1 and -j 2) and verify, both algorithms."""
    tools = []
    for algo in ("blake3", "sha256"):
        make = (*base, "make", str(root), "--algo", algo, "-q")
        tools.append(Tool("hashpar make", "hashpar make", algo, "hashpar", make))
        for jobs in (1, 2) if scaling else ():
            label = f"hashpar make -j {jobs}"
            tools.append(Tool(label, label, algo, "hashpar", (*make, "-j", str(jobs))))
        if algo in manifests:
            verify = (*base, "verify", str(manifests[algo]), "--root", str(root), "-q")
            tools.append(Tool("hashpar verify", "hashpar verify", algo, "hashpar", verify))
    return tools


def empty_make_tools(base: tuple[str, ...], empty: Path) -> list[Tool]:
    """``hashpar make`` of an empty directory, timed in the big corpus's own rounds so that
    the start-up subtracted from its time was measured under the same conditions."""
    label = "hashpar make (empty dir)"
    return [
        Tool(label, label, algo, "hashpar", (*base, "make", str(empty), "--algo", algo, "-q"))
        for algo in ("blake3", "sha256")
    ]


def startup_tools(base: tuple[str, ...] | None, empty: Path, ten: Path) -> list[Tool]:
    """Fixed costs: the interpreter alone, ``--version``, and make of tiny trees."""
    tools = [
        Tool("python -c pass", "python -c pass", "-", "reference", (sys.executable, "-c", "pass"))
    ]
    if base is None:
        return tools
    tools.append(
        Tool("hashpar --version", "hashpar --version", "-", "hashpar", (*base, "--version"))
    )
    for algo in ("blake3", "sha256"):
        for name, root in (("empty dir", empty), ("10 files", ten)):
            label = f"hashpar make ({name})"
            argv = (*base, "make", str(root), "--algo", algo, "-q")
            tools.append(Tool(label, label, algo, "hashpar", argv))
    return tools


def _first_line(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc.__class__.__name__})"
    text = (out.stdout or out.stderr).strip()
    return text.splitlines()[0] if text else f"exit {out.returncode}"


def _dist_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def _hashpar_source() -> str:
    """The git commit of the hashpar package this Python imports, '+dirty' if it differs."""
    spec = importlib.util.find_spec("hashpar")
    if spec is None or spec.origin is None:
        return "not importable"
    package = Path(spec.origin).parent
    head = _first_line(["git", "-C", str(package), "rev-parse", "--short", "HEAD"])
    try:
        status = subprocess.run(
            ["git", "-C", str(package), "status", "--porcelain", "."],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        status = ""
    return f"{package} @ {head}{'+dirty' if status.strip() else ''}"


def machine(hashpar: tuple[str, ...] | None, corpus_dir: Path) -> dict[str, object]:
    """CPU, flags, memory, kernel, file system and every tool's version."""
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")),
        "?",
    )
    flags_line = next((ln for ln in cpuinfo.splitlines() if ln.startswith("flags")), "")
    flags = set(flags_line.split(":", 1)[-1].split())
    meminfo = Path("/proc/meminfo").read_text().split() if Path("/proc/meminfo").exists() else []
    versions = {
        exe: _first_line([exe, flag])
        for exe, flag in (
            ("b3sum", "--version"),
            ("rhash", "--version"),
            ("sha256sum", "--version"),
            ("hashdeep", "-V"),
            ("dirhash", "--version"),
            ("checksumdir", "--version"),
        )
        if shutil.which(exe)
    }
    versions["hashpar"] = _first_line([*hashpar, "--version"]) if hashpar else "not installed"
    versions["hashpar source"] = _hashpar_source()
    versions["blake3 (Python)"] = _dist_version("blake3")
    fs = _first_line(["stat", "-f", "-c", "%T", str(corpus_dir)])
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "flags": {f: f in flags for f in ("sha_ni", "avx2", "avx512f", "avx512vl")},
        "memory_gib": round(int(meminfo[1]) / (1 << 20), 1) if len(meminfo) > 1 else None,
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "filesystem": fs,
        "versions": versions,
    }
