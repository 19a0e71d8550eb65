"""Planning scale (issue 12.14): a files source of 10k / 100k / 1M entries, through the CLI.

    python bench/bench_plan.py [--sizes 10000 100000 1000000]

For each size a list file names N distinct paths in one folder: the first 64 (in sorted order) are real
PNG photos (hard links of a few bundled photos), the others name files the plan lists but never opens
(planning reads no image; had the run gone on, each would have been rejected as source/unreadable).
`pairforge degrade LIST OUT --preset simple` then runs as a user would; the benchmark watches the run
directory and stops the command (SIGINT, the documented clean stop) once the first shard is committed:

- listing: the listing `inputs.jsonl` is written (every entry resolved, sorted, de-duplicated);
- planned: `run.json` is written (plan, lock, resume check done);
- first shard: `shards/shard-000000.json` exists (the run has started and committed);
- driver peak RSS: the CLI process's high-water mark (VmHWM) at that moment, and its CPU seconds.

Then, without the CLI, `index.json` and `run.json` are written for a plan of 100,000 shards from
synthetic commit records (sizes and read times). Writes bench/results/plan.json and plan.md.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from benchutil import busy, machine  # noqa: E402

BIN = Path(sys.executable).parent


def make_list(folder: Path, n: int, real: int = 64) -> Path:
    """A list file of ``n`` distinct paths; the first ``real`` are hard links of bundled photos."""
    import cv2
    from skimage import data

    folder.mkdir(parents=True, exist_ok=True)
    photos = []
    for i, name in enumerate(("astronaut", "coffee", "chelsea", "rocket")):
        p = folder / f"src-{i}.png"
        img = getattr(data, name)()
        cv2.imwrite(str(p), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
        photos.append(p)
    names = [f"img-{i:08d}.png" for i in range(n)]
    for i, name in enumerate(names[:real]):
        os.link(photos[i % len(photos)], folder / name)
    lst = folder.parent / f"list-{n}.txt"
    lst.write_text("".join(str(folder / name) + "\n" for name in names))
    return lst


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of one process so far (its threads included)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def plan_run(lst: Path, out: Path, timeout: float = 300.0) -> dict:
    cmd = [str(BIN / "pairforge"), "degrade", str(lst), str(out), "--preset", "simple", "-q"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    marks: dict[str, float] = {}
    watch = {"listing_s": out / "inputs.jsonl", "planned_s": out / "run.json", "first_shard_s": out / "shards" / "shard-000000.json"}
    hwm = 0.0
    cpu = 0.0
    try:
        while "first_shard_s" not in marks:
            if p.poll() is not None:
                raise RuntimeError(f"{' '.join(cmd)} ended ({p.returncode}) before its first shard:\n{p.stderr.read()[-2000:]}")
            now = time.perf_counter() - t0
            for k, path in watch.items():
                if k not in marks and path.exists():
                    marks[k] = now
            try:
                hwm = max(hwm, vm_hwm_mb(p.pid))
                cpu = cpu_seconds(p.pid)
            except OSError:
                pass
            if now > timeout:
                raise RuntimeError(f"no shard committed after {timeout} s")
            time.sleep(0.02)
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGINT)
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    return {**{k: round(v, 2) for k, v in marks.items()}, "driver_peak_rss_mb": round(hwm, 1), "driver_cpu_s": round(cpu, 2),
            "listing_mb": round((out / "inputs.jsonl").stat().st_size / 2**20, 1)}


def big_index(n_shards: int, tmp: Path) -> dict:
    """index.json and run.json of a plan with ``n_shards`` shards, from synthetic commit records."""
    from pairforge.io.storage import LocalStorage
    from pairforge.pipeline import ledger
    from pairforge.pipeline.plan import ShardSpec

    storage = LocalStorage(str(tmp))
    per = 64
    shards = [ShardSpec(s, s * per, (s + 1) * per) for s in range(n_shards)]
    records = {
        s.shard: {"shard": s.shard, "start": s.start, "end": s.end, "samples": per - 2, "bytes": 31_000_000,
                  "tar": f"shards/shard-{s.shard:06d}.tar", "sha256": f"{s.shard:064x}", "layout": "webdataset",
                  "rejected_counts": {"sanity/flat": 1, "source/unreadable": 1},
                  "members": ["hq.png", "lq.png", "json"]}
        for s in shards
    }
    t0 = time.perf_counter()
    ledger.write_index(storage, records, shards)
    write_s = time.perf_counter() - t0
    raw = (tmp / "index.json").read_bytes()
    t0 = time.perf_counter()
    json.loads(raw)
    read_s = time.perf_counter() - t0
    plan_info = {"source": {"kind": "files", "available": n_shards * per}, "num_samples": n_shards * per,
                 "samples_per_shard": per, "shards": n_shards, "stages": [], "segments": []}
    ledger.start_run(storage, {"run": {"name": "bench"}}, plan_info)
    return {"shards": n_shards, "index_json_mb": round(len(raw) / 2**20, 2), "index_write_s": round(write_s, 2),
            "index_read_s": round(read_s, 3), "run_json_kb": round((tmp / "run.json").stat().st_size / 1024, 1)}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    ap.add_argument("--index-shards", type=int, default=100_000)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args(argv)
    info = machine()
    res: dict = {"machine": info, "plan": {}, "index": None}
    with tempfile.TemporaryDirectory(prefix="pf-bench-plan-") as tmp:
        tmp = Path(tmp)
        for n in args.sizes:
            lst = make_list(tmp / f"photos-{n}", n)
            row = plan_run(lst, tmp / f"out-{n}")
            res["plan"][str(n)] = row
            print(f"  {n:>9,} entries: {json.dumps(row)}", flush=True)
            shutil.rmtree(tmp / f"photos-{n}", ignore_errors=True)
            shutil.rmtree(tmp / f"out-{n}", ignore_errors=True)
        res["index"] = big_index(args.index_shards, tmp / "index")
        print(f"  index at {args.index_shards:,} shards: {json.dumps(res['index'])}", flush=True)
    info["loadavg_end"] = os.getloadavg()
    info["busy"] = busy(info)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "plan.json").write_text(json.dumps(res, indent=2))
    from report_md import plan_md

    md = plan_md(res)
    (args.out / "plan.md").write_text(md)
    print(md)
    return res


if __name__ == "__main__":
    main()
