"""How big a piece ``load_manifest`` should read and decode at a time: time and peak memory.

    python benchmarks/pieces.py [--dir DIR] [--rounds N] [--sizes 262144,1048576,...]

Loads the manifests that run.py wrote under DIR/manifests (small, real and, after
``run.py --million``, million) with ``hashpar.load_manifest``, each load in a fresh process
(so every run pays its own page faults, as a command does), with
``hashpar.manifest._PIECE_BYTES`` set to each size in turn, the sizes alternating round by
round. Prints the median seconds and the median peak RSS (``ru_maxrss``) per size.

This is the measurement behind the piece size in benchmarks/README.md ("Defaults").
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

_LOAD = """
import resource, sys, time
import hashpar.manifest
hashpar.manifest._PIECE_BYTES = int(sys.argv[2])
t = time.perf_counter()
hashpar.load_manifest(sys.argv[1])
seconds = time.perf_counter() - t
print(seconds, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def measure(manifest: Path, sizes: list[int], rounds: int) -> dict[int, tuple[float, float]]:
    """Median (seconds, peak RSS bytes) of loading ``manifest`` with each piece size."""
    runs: dict[int, list[tuple[float, int]]] = {size: [] for size in sizes}
    for _ in range(rounds):
        for size in sizes:
            out = subprocess.run(
                [sys.executable, "-c", _LOAD, str(manifest), str(size)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout.split()
            runs[size].append((float(out[0]), int(out[1])))
    return {
        size: (statistics.median(s for s, _ in got), statistics.median(r for _, r in got))
        for size, got in runs.items()
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "hashpar-bench")
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--sizes", default="262144,524288,1048576,4194304,8388608")
    args = p.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    names = ("small-sha256", "real-sha256", "million-blake3")
    manifests = [args.dir / "manifests" / f"{name}.json" for name in names]
    found = [m for m in manifests if m.exists()]
    if not found:
        print(f"no manifests under {args.dir / 'manifests'}: run benchmarks/run.py first")
        return 1
    print(f"load_manifest in a fresh process, medians of {args.rounds} alternating rounds")
    print("| manifest | entries | " + " | ".join(f"{s >> 10} KiB" for s in sizes) + " |")
    print("|---|---|" + "---|" * len(sizes))
    for manifest in found:
        rounds = args.rounds if manifest.stat().st_size < 50 << 20 else max(3, args.rounds // 3)
        result = measure(manifest, sizes, rounds)
        entries = manifest.read_bytes().count(b'"digest"')
        cells = [f"{s:.3f} s, {r / 1e6:.0f} MB" for s, r in (result[size] for size in sizes)]
        print(f"| {manifest.stem} | {entries} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
