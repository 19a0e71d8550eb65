"""`make bench`: every benchmark, one after the other, each printing its markdown table.

Results also land in bench/results/*.json (git-ignored); BENCHMARKS.md records the figures with the
machine and the command. Run on a quiet machine: the numbers are wall-clock throughput."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BENCHES = [
    ["bench/bench_degrade.py"],
    ["bench/bench_pipeline.py"],
    ["bench/bench_pipeline.py", "--set", "source.crop.stride=48", "--json", "bench/results/pipeline-large.json"],
    ["bench/bench_pipeline.py", "--set", "source.crop.stride=32", "--json", "bench/results/pipeline-xl.json"],
    ["bench/bench_report.py"],
]


def main() -> int:
    failed = 0
    for args in BENCHES:
        print(f"\n## {' '.join(args)}\n", flush=True)
        r = subprocess.run([sys.executable, *args], cwd=ROOT)
        failed += r.returncode != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
