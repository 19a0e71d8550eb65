"""The run report on a large run: time and size of `pairforge report` for N samples (goal for 3,000:
under 10 s and under 5 MB).

    python bench/bench_report.py [--n 3000] [--size 128] [--per-shard 64]

The run directory is synthesised through the real dataset writer and ledger (commit records, run.json,
index.json; sanity/IQA scores, dedup and IQA rejections with thumbnails, real-world types with severities
and strength, Real-ESRGAN chain ops, prompts), which takes seconds instead of a full pipeline run; the
report then reads it exactly as it reads a real run. Writes bench/results/report.json and prints markdown.
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "foundation"))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=3000, help="inputs of the synthetic run")
    ap.add_argument("--size", type=int, default=128, help="HQ side in pixels")
    ap.add_argument("--per-shard", type=int, default=64)
    ap.add_argument("--json", default=str(ROOT / "bench/results/report.json"))
    args = ap.parse_args()

    from report_data import (
        write_synthetic_run,  # the tests' synthetic run, through the real writer
    )

    from pairforge.io.storage import LocalStorage
    from pairforge.runreport import write_card, write_report
    from pairforge.runreport.collect import collect

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        t0 = time.perf_counter()
        write_synthetic_run(out, n=args.n, per_shard=args.per_shard, size=args.size)
        t_make = time.perf_counter() - t0
        storage = LocalStorage(out)
        rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t0, c0 = time.perf_counter(), time.process_time()
        data = collect(storage)
        t_collect = time.perf_counter() - t0
        write_report(storage, data=data)
        t_report = time.perf_counter() - t0
        cpu_report = time.process_time() - c0
        t1 = time.perf_counter()
        write_card(storage, data)
        t_card = time.perf_counter() - t1
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        html = (out / "report.html").stat().st_size
        card = (out / "README.md").stat().st_size
        data_mb = sum(p.stat().st_size for p in (out / "shards").glob("*.tar")) / 1e6
        records_kb = sum(p.stat().st_size for p in (out / "shards").glob("*.json")) / 1e3
    res = {
        "inputs": args.n, "accepted": data.accepted, "shards": data.shards, "hq_px": args.size,
        "dataset_mb": round(data_mb, 1), "records_kb": round(records_kb, 1),
        "synthesis_s": round(t_make, 2), "collect_s": round(t_collect, 2), "report_s": round(t_report, 2), "report_cpu_s": round(cpu_report, 2),
        "card_s": round(t_card, 3), "report_mb": round(html / 1e6, 2), "card_kb": round(card / 1e3, 1),
        "peak_rss_growth_mb": round((rss1 - rss0) / 1024, 1),
        "goal_met": t_report < 10 and html < 5e6,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(res, indent=1))
    print("| inputs | pairs | shards | dataset | report wall (of which collect) | report CPU | report.html | README.md | RSS growth | goal <10 s, <5 MB |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.n} | {data.accepted} | {data.shards} | {data_mb:.0f} MB | {t_report:.2f} s ({t_collect:.2f} s) | {cpu_report:.2f} s | "
          f"{html / 1e6:.2f} MB | {card / 1e3:.1f} KB | {res['peak_rss_growth_mb']} MB | {'met' if res['goal_met'] else 'NOT met'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
