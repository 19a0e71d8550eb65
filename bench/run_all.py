"""`make bench`: every benchmark, one after the other, each printing its markdown table (about 8-9 minutes
on 2 quiet cores).

Product path first (whole commands as a user runs them), then the harness. Results land in
bench/results/*.json (git-ignored); at the end `bench/report_md.py --write BENCHMARKS.md` rewrites the
tables of BENCHMARKS.md between its markers from those files (machine, date, git revision, load and a
busy-machine mark included). Run on a quiet machine: wall clock is what a user waits for; the CPU
times hold either way."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

BENCHES = [
    ["bench/bench_cli.py"],
    ["bench/bench_realworld.py"],  # the nine real-world types through the CLI, per type; scene-model cost
    # quickstart on local Ray vs --executor local at 1,506 and 3,370 inputs (the larger one also records
    # the summed RSS of every process over the run); the 421-input demo size: `bench/bench_pipeline.py`
    ["bench/bench_pipeline.py", "--set", "source.crop.stride=48", "--json", "bench/results/pipeline-large.json"],
    ["bench/bench_pipeline.py", "--set", "source.crop.stride=32", "--json", "bench/results/pipeline-xl.json"],
    ["bench/bench_plan.py"],
    ["bench/bench_report.py"],
    ["bench/bench_degrade.py", "--sizes", "512", "--rounds", "1", "--n", "16"],
]


def main() -> int:
    failed = 0
    for args in BENCHES:
        print(f"\n## {' '.join(args)}\n", flush=True)
        r = subprocess.run([sys.executable, *args], cwd=ROOT)
        failed += r.returncode != 0
    r = subprocess.run([sys.executable, "bench/report_md.py", "--write", "BENCHMARKS.md"], cwd=ROOT)
    return 1 if failed or r.returncode else 0


if __name__ == "__main__":
    sys.exit(main())
