"""The commands users run, timed as whole processes, side by side with the references in the same run.

    python bench/bench_cli.py [--sizes 64 256] [--px 512] [--rounds 1]

Every figure is the wall clock of a separate process started from a shell, start-up included, on the
same PNG photos (random crops of the bundled photos, `--px` square). The marginal rate comes from two
input counts: (n2 - n1) / (t2 - t1), which removes fixed start-up costs. Writes bench/results/cli.json
and cli.md and prints the markdown.

Commands:
* `pairforge degrade IN OUT --preset realesrgan` (local executor, the default), the same with `--ray`,
  and `--preset realworld` (the nine types, weight-free scene model);
* `pairgen -i IN -o OUT -s 4 --blur --noise --jpeg -w 2` (pairgen 1.0.1, a simpler single-order chain);
* `python bench/basicsr_degrade.py IN OUT` (BasicSR 1.4.2's own x4plus chain, batches of 8);
* start-up: `pairforge --help`, `pairforge degrade` of one photo, and which heavy modules the CLI imports.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

BIN = Path(sys.executable).parent
HEAVY = ("torch", "ray", "pyiqa", "transformers", "diffusers")


def timed(cmd: list[str], env: dict | None = None) -> float:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})},
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
    return dt


def commands(name: str, inp: Path, out: Path) -> list[str]:
    pf = str(BIN / "pairforge")
    return {
        "pairforge degrade realesrgan": [pf, "degrade", str(inp), str(out), "--preset", "realesrgan", "-q"],
        "pairforge degrade realesrgan --ray": [pf, "degrade", str(inp), str(out), "--preset", "realesrgan", "--ray", "-q"],
        "pairforge degrade realworld": [pf, "degrade", str(inp), str(out), "--preset", "realworld", "-q"],
        "pairgen -s 4 --blur --noise --jpeg -w 2": [str(BIN / "pairgen"), "-i", str(inp), "-o", str(out), "-s", "4",
                                                    "--blur", "--noise", "--jpeg", "-w", "2"],
        "BasicSR x4plus chain": [sys.executable, str(ROOT / "bench" / "basicsr_degrade.py"), str(inp), str(out)],
    }[name]


def heavy_imports(module: str) -> list[str]:
    code = f"import sys, {module}; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    return [m for m in r.stdout.strip().split(",") if m]


def main(argv: list[str] | None = None) -> dict:
    from bench_degrade import machine, make_inputs

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs=2, default=[64, 256], help="two input counts (marginal rate)")
    ap.add_argument("--px", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=1, help="repeats per command and size; the best counts")
    ap.add_argument("--methods", nargs="+", default=["pairforge degrade realesrgan", "pairforge degrade realesrgan --ray",
                                                     "pairforge degrade realworld", "pairgen -s 4 --blur --noise --jpeg -w 2",
                                                     "BasicSR x4plus chain"])
    ap.add_argument("--basicsr-sizes", type=int, nargs=2, default=[16, 64], help="BasicSR is ~40x slower: fewer photos")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args(argv)
    info = machine()
    info["command"] = "python bench/bench_cli.py " + " ".join(argv if argv is not None else sys.argv[1:])
    res: dict = {"machine": info, "px": args.px, "startup": {}, "commands": {}}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        pool = tmp / "pool"
        pool.mkdir()
        paths = make_inputs(max(max(args.sizes), max(args.basicsr_sizes)), args.px, pool)
        folders = {}
        for n in sorted(set(args.sizes) | set(args.basicsr_sizes) | {1}):
            d = tmp / f"in{n}"
            d.mkdir()
            for p in paths[:n]:
                shutil.copy(p, d / p.name)
            folders[n] = d
        # start-up
        res["startup"]["pairforge --help (s)"] = min(timed([str(BIN / "pairforge"), "--help"]) for _ in range(3))
        one = []
        for r in range(3):
            o = tmp / f"one{r}"
            one.append(timed(commands("pairforge degrade realesrgan", folders[1], o)))
        res["startup"]["pairforge degrade, 1 photo (s)"] = min(one)
        res["startup"]["heavy modules imported by pairforge.cli"] = heavy_imports("pairforge.cli")
        for name in args.methods:
            sizes = args.basicsr_sizes if name.startswith("BasicSR") else args.sizes
            row = {}
            for n in sizes:
                best = float("inf")
                for r in range(args.rounds):
                    o = tmp / f"out-{abs(hash(name))}-{n}-{r}"
                    best = min(best, timed(commands(name, folders[n], o)))
                    shutil.rmtree(o, ignore_errors=True)
                row[str(n)] = round(best, 2)
                print(f"  {name:40s} {n:4d} photos {best:7.1f} s", flush=True)
            (n1, n2), (t1, t2) = sizes, (row[str(sizes[0])], row[str(sizes[1])])
            row["marginal_pairs_per_s"] = round((n2 - n1) / (t2 - t1), 2) if t2 > t1 else None
            res["commands"][name] = row
    info["loadavg_end"] = os.getloadavg()
    md = markdown(res, args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cli.json").write_text(json.dumps(res, indent=2))
    (args.out / "cli.md").write_text(md)
    print(md)
    return res


def markdown(res: dict, args) -> str:
    m, c = res["machine"], res["commands"]
    n1, n2 = args.sizes
    lines = [
        f"Whole commands on {res['px']}x{res['px']} PNG photos, PNG out; {m['cpu']}, {m['cores']} cores; load average "
        f"{m['loadavg_start'][0]:.2f} at start, {m['loadavg_end'][0]:.2f} at end; git {m['git']}. Command: `{m['command']}`",
        "",
        f"| command | {n1} photos (s) | {n2} photos (s) | marginal (pairs/s) |",
        "|---|---|---|---|",
    ]
    for name, row in c.items():
        cells = [row.get(str(n), "-") for n in (n1, n2)]
        if name.startswith("BasicSR"):
            b1, b2 = args.basicsr_sizes
            cells = [f"{row.get(str(b1))} ({b1} photos)" if str(n1) not in row else row[str(n1)], row.get(str(n2), f"{row.get(str(b2))} ({b2} photos)")]
        lines.append(f"| `{name}` | {cells[0]} | {cells[1]} | {row.get('marginal_pairs_per_s') or '-'} |")
    ratios = []
    pf = c.get("pairforge degrade realesrgan", {})
    pg = c.get("pairgen -s 4 --blur --noise --jpeg -w 2", {})
    bs = c.get("BasicSR x4plus chain", {})
    ray = c.get("pairforge degrade realesrgan --ray", {})
    if pf.get("marginal_pairs_per_s") and pg.get("marginal_pairs_per_s"):
        ratios.append(f"- realesrgan vs pairgen -w 2, marginal rate: {pf['marginal_pairs_per_s'] / pg['marginal_pairs_per_s']:.2f}x")
    if pf and bs and str(n1) in pf and str(n1) in bs:
        ratios.append(f"- realesrgan vs BasicSR, whole command on {n1} photos: {bs[str(n1)] / pf[str(n1)]:.1f}x faster")
    if pf and ray and str(n2) in ray:
        ratios.append(f"- `--ray` vs local, whole command on {n2} photos: {pf[str(n2)] / ray[str(n2)]:.2f} (1.0 = same speed)")
    lines += ["", "Ratios (same run):", "", *ratios, "", "Start-up:", ""]
    for k, v in res["startup"].items():
        lines.append(f"- {k}: {', '.join(v) if isinstance(v, list) else (f'{v:.2f}' if isinstance(v, float) else v) or 'none'}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
