"""Build the benchmark corpora deterministically, once, and reuse them.

Every corpus lives in ``BASE/<name>/`` with its stamp beside it in ``BASE/<name>.stamp.json``
(never inside, so no tool hashes it). The stamp holds the generator version and the
parameters; a corpus whose stamp matches is reused, any other is deleted and rebuilt. The
stamp is written last, so an interrupted build is rebuilt next time.

Content comes from ``random.Random(seed)``: the same parameters give the same bytes on every
machine (``random.randbytes`` is seeded; ``os.urandom`` would not be). The *real* corpus is a
copy of this Python installation's lib directory, so it is only as reproducible as that
installation; its stamp records what was copied.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import stat
import sys
import sysconfig
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GENERATOR_VERSION = 1
MiB = 1 << 20
SEED = 20261126

# name -> (full-size parameters, --quick parameters)
SIZES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "big": ({"files": 4, "size": 512 * MiB}, {"files": 4, "size": 8 * MiB}),
    "small": (
        {"files": 100_000, "dirs": 1_000, "max_size": 16 * 1024},
        {"files": 400, "dirs": 20, "max_size": 16 * 1024},
    ),
    "real": ({"max_files": None}, {"max_files": 500}),
    "tiny": (
        {"files": 400, "dirs": 20, "max_size": 16 * 1024},
        {"files": 400, "dirs": 20, "max_size": 16 * 1024},
    ),
    "ten": ({"files": 10, "size": 1024}, {"files": 10, "size": 1024}),
    "empty": ({}, {}),
    "million": (
        {"files": 1_000_000, "dirs": 1_000, "max_size": 32},
        {"files": 20_000, "dirs": 100, "max_size": 32},
    ),
}


@dataclass(frozen=True)
class Corpus:
    name: str
    path: Path
    files: int
    bytes: int
    params: dict[str, Any]


def _write(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def _gen_big(root: Path, files: int, size: int) -> tuple[int, int]:
    rng = random.Random(SEED)
    chunk = 16 * MiB
    for i in range(files):
        with open(root / f"big-{i}.bin", "wb") as f:
            left = size
            while left:
                n = min(chunk, left)
                f.write(rng.randbytes(n))
                left -= n
    return files, files * size


def _dir_names(dirs: int) -> list[str]:
    """``dirs`` leaf directories, two levels deep (``d03/d0317``), ~sqrt(dirs) at the top."""
    top = max(1, round(dirs**0.5))
    return [f"d{i % top:02d}/d{i:04d}" for i in range(dirs)]


def _gen_many(root: Path, files: int, dirs: int, max_size: int) -> tuple[int, int]:
    rng = random.Random(SEED + 1)
    leaves = _dir_names(dirs)
    for leaf in leaves:
        (root / leaf).mkdir(parents=True, exist_ok=True)
    total = 0
    for i in range(files):
        size = rng.randint(0, max_size)
        _write(root / leaves[rng.randrange(dirs)] / f"f{i:07d}.dat", rng.randbytes(size))
        total += size
    return files, total


def real_sources() -> list[Path]:
    """This installation's stdlib, plus site-packages when it is not already inside it."""
    paths = sysconfig.get_paths()
    stdlib = Path(paths["stdlib"])
    sources = [stdlib]
    purelib = Path(paths["purelib"])
    if not purelib.is_relative_to(stdlib):
        sources.append(purelib)
    return sources


def _copy_real(root: Path, max_files: int | None) -> tuple[int, int]:
    """Copy regular files only (symlinks and special files are skipped, so every tool sees
    the same set), in sorted order, stopping after ``max_files``."""
    files = total = 0
    for index, source in enumerate(real_sources()):
        for dirpath, dirnames, names in os.walk(source):
            dirnames.sort()
            rel = Path(dirpath).relative_to(source)
            for name in sorted(names):
                src = Path(dirpath) / name
                try:
                    st = src.lstat()
                except OSError:
                    continue
                if not stat.S_ISREG(st.st_mode):
                    continue
                dest = root / f"src{index}" / rel / name
                dest.parent.mkdir(parents=True, exist_ok=True)
                try:
                    shutil.copyfile(src, dest, follow_symlinks=False)
                except OSError:
                    continue
                files += 1
                total += dest.stat().st_size
                if max_files is not None and files >= max_files:
                    return files, total
    return files, total


def _generate(name: str, root: Path, params: dict[str, Any]) -> tuple[int, int]:
    if name == "big":
        return _gen_big(root, **params)
    if name in ("small", "tiny", "million"):
        return _gen_many(root, **params)
    if name == "ten":
        rng = random.Random(SEED + 2)
        for i in range(params["files"]):
            _write(root / f"t{i}.txt", rng.randbytes(params["size"]))
        return params["files"], params["files"] * params["size"]
    if name == "real":
        return _copy_real(root, **params)
    if name == "empty":
        return 0, 0
    raise ValueError(f"unknown corpus {name!r}")


def ensure(name: str, base: Path, quick: bool, log: Any = None) -> Corpus:
    """Return corpus ``name`` under ``base``, generating it unless a matching stamp exists."""
    params = SIZES[name][1 if quick else 0]
    label = f"quick-{name}" if quick else name
    root = base / label
    stamp_path = base / f"{label}.stamp.json"
    wanted: dict[str, Any] = {"generator": GENERATOR_VERSION, "seed": SEED, "params": params}
    if name == "real":
        wanted["sources"] = [str(p) for p in real_sources()]
    if stamp_path.exists() and root.is_dir():
        stamp = json.loads(stamp_path.read_text())
        if {k: stamp.get(k) for k in wanted} == wanted:
            return Corpus(name, root, stamp["files"], stamp["bytes"], params)
    if log:
        log(f"generating corpus {label} in {root} ...")
    stamp_path.unlink(missing_ok=True)
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    files, total = _generate(name, root, params)
    stamp = {**wanted, "files": files, "bytes": total, "python": sys.version.split()[0]}
    tmp = stamp_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(stamp, indent=1))
    tmp.replace(stamp_path)
    return Corpus(name, root, files, total, params)


def small_tree_arguments(description: str) -> tuple[argparse.Namespace, Path]:
    """The options of the scripts that time arrangements on the small corpus (halves.py,
    ceiling.py), parsed, and that corpus's root, generated first if it is missing."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "hashpar-bench")
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--algo", choices=["sha256", "blake3"], default="sha256")
    parser.add_argument(
        "--quick", action="store_true", help="the quick run's small tree of 400 files (CI)"
    )
    args = parser.parse_args()
    corpus = ensure("small", args.dir, args.quick, lambda message: print(message, file=sys.stderr))
    return args, corpus.path
