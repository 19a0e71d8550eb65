"""Pipeline overhead: `pairforge run` on Ray against the same stages called directly in one process.

Both sides run the quickstart config (bundled photos -> sanity -> PIQE -> degrade -> write) on the same
inputs, as separate processes started the same way, and report accepted pairs per second of wall clock,
the CPU time of the whole process tree, and the RSS summed over every process (Ray's raylet, GCS and
workers included), sampled every 0.5 s over the run (issue 12.15). The direct side is the local
executor: one process, no Ray, no copies between processes.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from benchutil import busy, machine, measure  # noqa: E402
from report_md import pipeline_md, rss_md  # noqa: E402


def run_once(executor: str, config: str, limit: int | None, out: Path, sets: list[str]) -> dict:
    cmd = [sys.executable, "-m", "pairforge.cli", "run", config, "--out", str(out), "--executor", executor, "-q"]
    for s in sets:
        cmd += ["--set", s]
    if limit:
        cmd += ["--limit", str(limit)]
    m = measure(cmd)
    wall = m.wall_s
    index = json.loads((out / "index.json").read_text())
    records = [json.loads(p.read_text()) for p in sorted((out / "shards").glob("*.json"))]
    stage_s: dict[str, float] = {}
    for r in records:
        for k, v in r.get("stage_seconds", {}).items():
            stage_s[k] = stage_s.get(k, 0.0) + v
    return {"executor": executor, "wall_s": wall, "pairs": index["total_samples"], "inputs": index["total_inputs"],
            "pairs_per_s": index["total_samples"] / wall, "stage_seconds": stage_s, **m.to_dict(series=True)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--config", default="configs/quickstart.yaml")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--set", dest="sets", action="append", default=[], help="config override, as for pairforge run")
    ap.add_argument("--json", type=Path, default=ROOT / "bench/results/pipeline.json")
    args = ap.parse_args()
    info = machine()
    results = []
    for rep in range(args.repeats):
        for ex in ("local", "ray"):
            tmp = Path(tempfile.mkdtemp(prefix=f"pf-bench-{ex}-"))
            try:
                results.append(run_once(ex, args.config, args.limit, tmp / "out", args.sets))
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
            print(json.dumps({k: v for k, v in results[-1].items() if k != "rss_series_mb"}), flush=True)
    best = {ex: max((r for r in results if r["executor"] == ex), key=lambda r: r["pairs_per_s"]) for ex in ("local", "ray")}
    ratio = best["ray"]["pairs_per_s"] / best["local"]["pairs_per_s"]
    info["loadavg_end"] = os.getloadavg()
    info["busy"] = busy(info)
    res = {"machine": info, "config": args.config, "sets": args.sets, "results": results, "best": best,
           "ratio_ray_over_direct": ratio}
    print(pipeline_md([res]))
    print(rss_md(res))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
