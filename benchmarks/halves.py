"""What two cores give hashpar's own work when nothing is shared: the ceiling for `-j 2`.

    python benchmarks/halves.py [--dir DIR] [--rounds N] [--algo sha256|blake3] [--quick]

Splits the small corpus (made by run.py under DIR, or here if missing; ``--quick``: the
quick run's 400 files) into two halves of its top directories, as hard links (the same
files, the same page cache), and times, alternating round by round:

- ``hashpar make -j 1`` and ``hashpar make -j 2`` of the whole tree;
- two ``hashpar make -j 1`` at once, one per half: each with its own parent, results and
  output, so the only thing they share is the machine;
- for comparison, ``rhash`` (SHA-256) or ``b3sum`` (BLAKE3) the same two ways.

Prints the median seconds and each arrangement's speed-up over its one-process run. This is
the measurement behind the `-j 2` row's analysis in benchmarks/README.md ("The bar").
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import corpora

Commands = list[list[str]]


def split(corpus: Path, into: Path) -> tuple[Path, Path]:
    """Two trees of hard links, each holding half of ``corpus``'s top directories."""
    halves = (into / "A", into / "B")
    if not all(half.is_dir() for half in halves):
        shutil.rmtree(into, ignore_errors=True)
        tops = sorted(os.listdir(corpus))
        for half, names in zip(
            halves, (tops[: len(tops) // 2], tops[len(tops) // 2 :]), strict=True
        ):
            half.mkdir(parents=True)
            for name in names:
                subprocess.run(["cp", "-al", str(corpus / name), str(half)], check=True)
    return halves


def arrangements(tree: Path, halves: tuple[Path, Path], algo: str) -> dict[str, Commands]:
    def make(root: Path, jobs: int) -> list[str]:
        return ["hashpar", "make", "-j", str(jobs), "--algo", algo, str(root)]

    name = "rhash" if algo == "sha256" else "b3sum"

    def native(root: Path) -> list[str]:
        if algo == "sha256":
            return ["rhash", "--sha256", "-r", str(root)]
        return ["sh", "-c", f"find '{root}' -type f -print0 | xargs -0 b3sum"]

    return {
        "hashpar make -j 1, whole": [make(tree, 1)],
        "hashpar make -j 2, whole": [make(tree, 2)],
        "two hashpar make -j 1, halves at once": [make(half, 1) for half in halves],
        f"{name}, whole": [native(tree)],
        f"two {name}, halves at once": [native(half) for half in halves],
    }


def timed(commands: Commands) -> float:
    start = time.perf_counter()
    processes = [subprocess.Popen(c, stdout=subprocess.DEVNULL) for c in commands]
    if any(p.wait() != 0 for p in processes):
        sys.exit(f"failed: {commands}")
    return time.perf_counter() - start


def main() -> None:
    args, tree = corpora.small_tree_arguments((__doc__ or "").splitlines()[0])
    runs = arrangements(tree, split(tree, tree.with_name(tree.name + "-halves")), args.algo)
    times: dict[str, list[float]] = {label: [] for label in runs}
    for commands in runs.values():  # one untimed pass warms the page cache
        timed(commands)
    for _ in range(args.rounds):
        for label, commands in runs.items():
            times[label].append(timed(commands))
    medians = {label: statistics.median(values) for label, values in times.items()}
    labels = list(medians)
    for index, label in enumerate(labels):
        one = medians[labels[0] if index < 3 else labels[3]]
        print(f"{label:40s} {medians[label]:.3f} s  {one / medians[label]:.2f}x")


if __name__ == "__main__":
    main()
