"""Real-world degradations: pairs/s per type through the CLI, CPU cost per pair, and the cost of the
model-based scene model (depth network, SAM) per image.

    .venv/bin/python bench/bench_realworld.py [--px 512] [--sizes 24 72] [--types blur haze ...]
                                              [--no-cli] [--no-models] [--workers 2]

* CLI: `pairforge degrade IN OUT --degrade-config T.yaml` for each of the nine types (``weights: {T: 1}``,
  the defaults otherwise: weight-free scene model, capture/upload tail on 80% of samples), run as a
  separate process on PNG photos (random crops of the bundled photos, ``--px`` square) at two input
  counts. Marginal pairs/s = (n2 - n1) / (t2 - t1) (start-up removed). Because the benchmark machine may
  be shared, the CPU time of the child process (user + sys, from ``getrusage``) is reported too:
  ``cpu ms/pair`` (marginal) is what a pair costs whatever else runs, and ``cores / (cpu s/pair)``
  is the rate the command would reach on an idle machine with that many cores.
* library: ``RealWorldDegrader.degrade`` on decoded arrays, one type at a time, CPU ms per pair (no I/O).
* models: a Depth Anything V2 Small-sized depth network and a SAM ViT-B-sized segmenter built from
  their configs (random weights: the cost of a forward pass does not depend on the weights' values, and
  nothing is downloaded), per image on the CPU with ``--workers`` torch threads, batch 1 and batch 4.

Writes bench/results/realworld.json and realworld.md and prints the markdown.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NAMES = ("blur", "compression", "moire", "low_light", "noise", "flare", "reflection", "haze", "rain")


def make_inputs(n: int, px: int, folder: Path, seed: int = 0) -> list[Path]:
    """``n`` PNG photos: random square crops of the bundled photographs, resized to ``px``."""
    import cv2

    from pairforge.sources.bundled import load_bundled_photo

    names = ("astronaut", "chelsea", "coffee", "rocket", "motorcycle_left", "camera")
    srcs = []
    for nm in names:
        im = load_bundled_photo(nm)
        srcs.append(np.repeat(im[..., None], 3, 2) if im.ndim == 2 else im[..., :3])
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        img = srcs[i % len(srcs)]
        h, w = img.shape[:2]
        side = int(min(h, w) * rng.uniform(0.6, 1.0))
        t, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = cv2.resize(img[t:t + side, left:left + side], (px, px), interpolation=cv2.INTER_AREA)
        p = folder / f"in{px}_{i:03d}.png"
        cv2.imwrite(str(p), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
        paths.append(p)
    return paths


def run_child(cmd: list[str]) -> tuple[float, float]:
    """(wall s, cpu s of the child: user + sys) of one command."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False,
                       env={**os.environ, "PYTHONWARNINGS": "ignore"})
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def bench_cli(types, px: int, sizes: tuple[int, int], tmp: Path) -> dict:
    pool = tmp / "pool"
    pool.mkdir()
    paths = make_inputs(max(sizes), px, pool)
    folders = {}
    for n in sizes:
        d = tmp / f"in{n}"
        d.mkdir()
        for p in paths[:n]:
            shutil.copy(p, d / p.name)
        folders[n] = d
    cli = [sys.executable, "-m", "pairforge.cli"]
    out = {}
    for t in types:
        cfg = tmp / f"{t}.yaml"
        cfg.write_text(json.dumps({"kind": "realworld", "weights": {t: 1.0}}))
        row = {}
        for n in sizes:
            o = tmp / f"out-{t}-{n}"
            wall, cpu = run_child([*cli, "degrade", str(folders[n]), str(o), "--degrade-config", str(cfg), "-q"])
            shutil.rmtree(o, ignore_errors=True)
            row[str(n)] = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2)}
        (n1, n2) = sizes
        dw = row[str(n2)]["wall_s"] - row[str(n1)]["wall_s"]
        dc = row[str(n2)]["cpu_s"] - row[str(n1)]["cpu_s"]
        row["marginal_pairs_per_s"] = round((n2 - n1) / dw, 2) if dw > 0 else None
        row["marginal_cpu_ms_per_pair"] = round(1000 * dc / (n2 - n1), 1)
        row["idle_2core_pairs_per_s"] = round(2.0 / (dc / (n2 - n1)), 1) if dc > 0 else None
        out[t] = row
        print(f"  cli {t:12s} {row['marginal_pairs_per_s']!s:>6} pairs/s wall  {row['marginal_cpu_ms_per_pair']:6.1f} ms cpu/pair "
              f"(-> {row['idle_2core_pairs_per_s']} pairs/s on 2 idle cores)", flush=True)
    return out


def bench_library(types, px: int, n: int = 12) -> dict:
    import cv2  # noqa: F401

    from pairforge.degradations.realworld import RealWorldDegradeConfig

    tmp = Path(tempfile.mkdtemp())
    try:
        import cv2 as _cv2

        imgs = [_cv2.cvtColor(_cv2.imread(str(p)), _cv2.COLOR_BGR2RGB) for p in make_inputs(6, px, tmp)]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    out = {}
    for t in types:
        d = RealWorldDegradeConfig(weights={t: 1.0}).build()
        aux = lambda i: {"index": i, "second_image": imgs[(i + 1) % len(imgs)]}
        d.degrade([imgs[0]], [0], [aux(0)])
        c0 = time.process_time()
        for i in range(n):
            d.degrade([imgs[i % len(imgs)]], [i], [aux(i)])
        out[t] = {"cpu_ms_per_pair": round(1000 * (time.process_time() - c0) / n, 1)}
        print(f"  lib {t:12s} {out[t]['cpu_ms_per_pair']:6.1f} ms cpu/pair", flush=True)
    return out


def bench_models(px: int, threads: int) -> dict:
    """CPU seconds per image of the model-based scene model at published sizes (random weights)."""
    import torch
    from transformers import (
        DepthAnythingConfig,
        DepthAnythingForDepthEstimation,
        SamConfig,
        SamModel,
    )

    torch.set_num_threads(threads)
    out = {}
    # Depth Anything V2 Small: DINOv2-S backbone, 518 px input (its processor's size)
    depth = DepthAnythingForDepthEstimation(DepthAnythingConfig()).eval()
    sam = SamModel(SamConfig()).eval()  # ViT-B image encoder at 1024 px, the mask decoder on a point grid
    for name, model, size, extra in (("depth_anything_v2_small", depth, 518, {}),
                                     ("sam_vit_b", sam, 1024, {})):
        for batch in (1, 4):
            x = torch.randn(batch, 3, size, size)
            with torch.no_grad():
                if name.startswith("sam"):
                    pts = torch.rand(batch, 36, 1, 2) * size  # 6 x 6 point grid
                    model(pixel_values=x, input_points=pts, multimask_output=True)  # warm-up
                    t0 = time.perf_counter()
                    model(pixel_values=x, input_points=pts, multimask_output=True)
                else:
                    model(pixel_values=x)
                    t0 = time.perf_counter()
                    model(pixel_values=x)
                dt = time.perf_counter() - t0
            out[f"{name} batch {batch}"] = {"s_per_image": round(dt / batch, 3), "input_px": size}
            print(f"  model {name} batch {batch}: {dt / batch:.3f} s/image on {threads} threads", flush=True)
    return out


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = [(f"Real-world degradations at {res['px']} px — {m['cpu']} ({m['cores']} cores), "
             f"load average at start {m['loadavg'][0]:.1f}, {m['date']}, git {m['git']}"), ""]
    if res.get("cli"):
        n1, n2 = res["sizes"]
        lines += [("| type | CLI marginal pairs/s (wall, this machine) | CPU ms/pair (marginal) | "
                  "pairs/s on 2 idle cores (2 / CPU s per pair) | library CPU ms/pair |"), "|---|---|---|---|---|"]
        for t, row in res["cli"].items():
            lib = res.get("library", {}).get(t, {}).get("cpu_ms_per_pair", "")
            lines.append(f"| {t} | {row['marginal_pairs_per_s']} | {row['marginal_cpu_ms_per_pair']} | "
                         f"{row['idle_2core_pairs_per_s']} | {lib} |")
        lines += ["", (f"(`pairforge degrade` on {n1} and {n2} PNG photos per type; wall figures depend on "
                  "what else runs on the machine, CPU figures do not.)")]
    elif res.get("library"):
        lines += ["| type | library CPU ms/pair |", "|---|---|"]
        lines += [f"| {t} | {r['cpu_ms_per_pair']} |" for t, r in res["library"].items()]
    if res.get("models"):
        lines += ["", "| model-based scene model (CPU, random weights, published sizes) | s/image |", "|---|---|"]
        lines += [f"| {k} ({v['input_px']} px input) | {v['s_per_image']} |" for k, v in res["models"].items()]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--px", type=int, default=512)
    ap.add_argument("--sizes", type=int, nargs=2, default=[24, 72])
    ap.add_argument("--types", nargs="+", default=list(NAMES), choices=NAMES)
    ap.add_argument("--no-cli", action="store_true")
    ap.add_argument("--no-models", action="store_true")
    ap.add_argument("--workers", type=int, default=2, help="torch threads for the model timings")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args(argv)
    git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False).stdout.strip()
    res: dict = {"machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                             "loadavg": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                             "git": git, "command": "python bench/bench_realworld.py " + " ".join(argv or sys.argv[1:])},
                 "px": args.px, "sizes": args.sizes}
    res["library"] = bench_library(args.types, args.px)
    if not args.no_cli:
        with tempfile.TemporaryDirectory() as tmp:
            res["cli"] = bench_cli(args.types, args.px, tuple(args.sizes), Path(tmp))
    if not args.no_models:
        res["models"] = bench_models(args.px, args.workers)
    res["machine"]["loadavg_end"] = os.getloadavg()
    md = markdown(res)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "realworld.json").write_text(json.dumps(res, indent=2))
    (args.out / "realworld.md").write_text(md)
    print(md)
    return res


if __name__ == "__main__":
    main()
