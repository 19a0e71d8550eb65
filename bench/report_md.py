"""Markdown tables from bench/results/*.json: what BENCHMARKS.md shows, regenerated from the raw results.

    python bench/report_md.py [--results bench/results] [--write BENCHMARKS.md]

Without --write it prints the tables; with it, it replaces the part of BENCHMARKS.md between the markers
`<!-- bench:begin -->` and `<!-- bench:end -->` (the prose around them is kept). Each benchmark script
also calls the function for its own table, so a single run prints the same markdown.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def _f(v, nd: int = 1) -> str:
    if v is None or v == "":
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def where(m: dict) -> str:
    """One line: machine, date, git revision, load, and the busy-machine mark."""
    load = f"load average {m.get('loadavg_start', [0])[0]:.1f} at start, {m.get('loadavg_end', [0])[0]:.1f} at end"
    from benchutil import busy  # recomputed from the loads: the rule may have changed since the run

    mark = " **busy machine: wall times are indicative only, CPU times hold**" if busy(m) else ""
    return (f"{m.get('cpu', '?')}, {m.get('cores', '?')} cores, {m.get('memory_gb', '?')} GiB; Python {m.get('python', '?')}; "
            f"{m.get('date', '?')}; git `{m.get('git', '?')}`; {load}.{mark}")


# -- product path: whole commands ------------------------------------------------------------------

def cli_md(res: dict) -> str:
    c = res["commands"]
    lines = [f"Command: `python bench/{res['machine'].get('argv', 'bench_cli.py')}`. {where(res['machine'])}", "",
             "| command | photos | wall (s) | CPU (s) | peak RSS, all processes (MB) | marginal pairs/s (wall) | CPU ms / pair (marginal) |",
             "|---|---|---|---|---|---|---|"]
    for name, row in c.items():
        sizes = row["sizes"]
        for i, n in enumerate(sizes):
            m = row["runs"][str(n)]
            marg = row.get("marginal_pairs_per_s") if i == len(sizes) - 1 else None
            cpu_pp = row.get("marginal_cpu_ms_per_pair") if i == len(sizes) - 1 else None
            lines.append(f"| `{name}` | {n} | {_f(m['wall_s'], 2)} | {_f(m['cpu_s'], 1)} | {_f(m['peak_rss_mb'], 0)} | "
                         f"{_f(marg, 1)} | {_f(cpu_pp, 0)} |")
    r = res.get("ratios", {})
    lines += ["", "Ratios (same run):", ""]
    labels = {
        "realesrgan_vs_pairgen_marginal": "`degrade --preset realesrgan` vs `pairgen -w 2`, marginal rate (goal >= 2x)",
        "realesrgan_vs_pairgen_marginal_cpu": "same, CPU per pair (pairgen CPU / pairforge CPU)",
        "simple_vs_pairgen_marginal": "`degrade --preset simple` (about pairgen's pixel work) vs `pairgen -w 2`, marginal rate",
        "simple_vs_pairgen_marginal_cpu": "same, CPU per pair (pairgen CPU / pairforge CPU)",
        "realesrgan_vs_basicsr_whole": "`degrade --preset realesrgan` vs BasicSR's whole run, same photos (goal >= 20x)",
        "ray_over_local_whole": "`--ray` vs local, whole command on the larger size (wall local / wall ray; 1.0 = as fast)",
        "running_ray_over_local_whole": "`--ray --ray-address` on a Ray already running here vs local, whole command on the larger size (wall local / wall ray)",
        "running_ray_over_local_marginal": "same, marginal rate (Ray / local)",
    }
    for k, label in labels.items():
        if r.get(k) is not None:
            lines.append(f"- {label}: {r[k]:.2f}x")
    par = res.get("parallelism")
    if par:
        lines += ["", f"Parallelism of `{par['command']}` on {par['photos']} photos (threads runnable, sampled every 5 ms; "
                  "a busy machine does not hide it): mean {0} of the cores over the whole command, {1} over its "
                  "busy middle ({2} s, from the first to the last 0.2 s in which every core had a thread; start-up and the "
                  "run report are one thread), every core's worth runnable {3:.0%} of that middle.".format(
                      par["mean_runnable_whole"], par["mean_runnable_busy_middle"], par["busy_middle_s"],
                      par["busy_middle_share_all_cores"])]
    lines += ["", "Start-up:", ""]
    for k, v in res.get("startup", {}).items():
        lines.append(f"- {k}: {', '.join(v) if isinstance(v, list) else _f(v, 2)}" if v != [] else f"- {k}: none")
    return "\n".join(lines) + "\n"


# -- Ray vs local on the quickstart config -----------------------------------------------------------

def pipeline_md(results: list[dict]) -> str:
    if not results:
        return ""
    lines = [f"{where(results[0]['machine'])}" if "machine" in results[0] and isinstance(results[0]["machine"], dict) else "", "",
             "| inputs (accepted) | `--executor local` wall / CPU (s) | `pairforge run` on local Ray wall / CPU (s) | ray / local (pairs/s) | peak RSS local / ray, all processes (MB) |",
             "|---|---|---|---|---|"]
    for res in results:
        b = res["best"]
        lo, ra = b["local"], b["ray"]
        lines.append(f"| {lo['inputs']} ({lo['pairs']}) | {_f(lo['wall_s'])} / {_f(lo.get('cpu_s'))} | {_f(ra['wall_s'])} / {_f(ra.get('cpu_s'))} | "
                     f"{res['ratio_ray_over_direct']:.2f} | {_f(lo.get('peak_rss_mb'), 0)} / {_f(ra.get('peak_rss_mb'), 0)} |")
    return "\n".join(lines) + "\n"


def rss_md(res: dict) -> str:
    """RSS over the largest run: summed over processes, sampled every 0.5 s."""
    out = []
    for ex in ("local", "ray"):
        r = res["best"][ex]
        s = r.get("rss_series_mb") or []
        if not s:
            continue
        q = [s[int(i * (len(s) - 1) / 9)] for i in range(10)] if len(s) >= 10 else s
        out.append(f"- {ex}: {r['inputs']} inputs, {r.get('peak_processes', '?')} processes at most, summed RSS "
                   f"peak {max(s):.0f} MB, mean {sum(s) / len(s):.0f} MB; over the run (10 evenly spaced samples, MB): "
                   + ", ".join(f"{x:.0f}" for x in q))
    return "\n".join(out) + "\n"


# -- planning scale -----------------------------------------------------------------------------------

def plan_md(res: dict) -> str:
    lines = [f"Command: `python bench/{res['machine'].get('argv', 'bench_plan.py')}`. {where(res['machine'])}", "",
             "| list entries | listing written (s) | planned, run.json (s) | first shard committed (s) | driver CPU then (s) | driver peak RSS (MB) | inputs.jsonl (MB) |",
             "|---|---|---|---|---|---|---|"]
    for n, r in res["plan"].items():
        lines.append(f"| {int(n):,} | {_f(r.get('listing_s'), 2)} | {_f(r.get('planned_s'), 2)} | {_f(r.get('first_shard_s'), 2)} | "
                     f"{_f(r.get('driver_cpu_s'), 1)} | {_f(r.get('driver_peak_rss_mb'), 0)} | {_f(r.get('listing_mb'), 1)} |")
    ix = res.get("index")
    if ix:
        lines += ["", f"At {ix['shards']:,} shards: index.json {ix['index_json_mb']} MB (written in {ix['index_write_s']} s, "
                      f"parsed in {ix['index_read_s']} s), run.json {ix['run_json_kb']} KB."]
    return "\n".join(lines) + "\n"


# -- all of it ----------------------------------------------------------------------------------------

def _load(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def report(results: Path) -> str:
    parts = []
    cli = _load(results / "cli.json")
    if cli:
        parts += ["### Whole commands (`bench/bench_cli.py`)", "", cli_md(cli)]
    pipes = [p for p in (_load(results / f) for f in ("pipeline.json", "pipeline-large.json", "pipeline-xl.json"))
             if p and "best" in p]  # files from before this format have no "best": skipped
    if pipes:
        parts += ["### `pairforge run configs/quickstart.yaml`: local Ray vs `--executor local` (`bench/bench_pipeline.py`)", "",
                  pipeline_md(pipes)]
        big = max(pipes, key=lambda p: p["best"]["local"]["inputs"])
        if big["best"]["local"].get("rss_series_mb"):
            parts += ["Memory over the largest run (issue 12.15):", "", rss_md(big)]
    plan = _load(results / "plan.json")
    if plan:
        parts += ["### Planning scale (`bench/bench_plan.py`)", "", plan_md(plan)]
    deg = results / "degrade.md"
    if deg.exists():
        parts += ["### Harness: the degradation engine alone (`bench/bench_degrade.py`)", "", deg.read_text()]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, default=ROOT / "bench" / "results")
    ap.add_argument("--write", type=Path, default=None, help="replace the marked section of this file (BENCHMARKS.md)")
    args = ap.parse_args(argv)
    md = report(args.results)
    if args.write is None:
        print(md)
        return 0
    text = args.write.read_text()
    if BEGIN not in text or END not in text:
        print(f"{args.write}: no {BEGIN} ... {END} markers", file=sys.stderr)
        return 2
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    args.write.write_text(f"{head}{BEGIN}\n{md}\n{END}{tail}")
    print(f"wrote {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
