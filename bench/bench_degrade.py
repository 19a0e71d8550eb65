"""Degradation throughput, side by side on the same photos: pairforge's `realesrgan` chain vs BasicSR's
own functions driving the same x4plus chain vs `pairgen` (PyPI) — end to end on the CPU (decode PNG,
degrade, encode LQ PNG).

    .venv/bin/python bench/bench_degrade.py [--n 32] [--sizes 512 1024] [--rounds 2]

Inputs: bundled scikit-image photos, random crops resized to N x N, written as PNG once. Each method
processes every image of a size; rounds alternate the methods (the machine may be shared) and the best
round counts. Writes bench/results/degrade.json and degrade.md and prints the markdown table.

* pairforge: `ChainDegradeConfig(preset="realesrgan")` (x4plus defaults, libjpeg JPEG, every draw per
  sample), CPU, `threads` = cores workers each decoding, degrading and encoding one image at a time.
* BasicSR 1.4.2: the dataset's kernel draws (random_mixed_kernels / circular_lowpass_kernel) and the
  model's feed_data chain (USMSharp, filter2D, F.interpolate, random_add_*_noise_pt, DiffJPEG, final
  round/clamp), batches of 8, CPU, torch's threads = cores.
* pairgen 1.0.1: its own per-image path (MATLAB-style bicubic downscale by 4, then its blur/noise/JPEG
  degradations with random resize), one worker, as `pairgen` runs each image.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "degradations"))


def make_inputs(n: int, size: int, folder: Path, seed: int = 0) -> list[Path]:
    """``n`` RGB photos (random crops of skimage photos, resized to size x size) saved as PNG."""
    from chain_data import _sources  # the same bundled photos the chain tests use

    rng = np.random.default_rng(seed)
    srcs = _sources()
    paths = []
    for i in range(n):
        img = srcs[i % len(srcs)]
        h, w = img.shape[:2]
        side = int(min(h, w) * rng.uniform(0.6, 1.0))
        t, l = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
        crop = Image.fromarray(img[t : t + side, l : l + side]).resize((size, size), Image.BICUBIC)
        if rng.random() < 0.5:
            crop = crop.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        p = folder / f"in{size}_{i:03d}.png"
        crop.save(p, compress_level=1)
        paths.append(p)
    return paths


def read_rgb(p: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def write_png(img: np.ndarray, p: Path) -> None:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
    assert ok
    p.write_bytes(buf.tobytes())


# ------------------------------------------------------------------------------------------ methods


def run_pairforge(paths, out: Path, batch: int, threads: int, preset: str = "realesrgan", **over) -> int:
    """pairforge on 2 cores as a pipeline runs it: ``threads`` workers each decode a PNG, degrade it and
    encode the LQ (OpenCV and the degrader release the GIL). ``batch`` is unused here: on the CPU the
    chain runs sample by sample anyway (batches of 8 measured the same or slower: batch-boundary idling)."""
    from concurrent.futures import ThreadPoolExecutor

    from pairforge.degradations.chain import ChainDegradeConfig

    deg = ChainDegradeConfig.model_validate({"preset": preset, "device": "cpu", "threads": threads, **over}).build()

    def one(i_p):
        i, p = i_p
        r = deg.degrade([read_rgb(p)], [1000 + i])[0]
        write_png(r.lq, out / p.name)

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, enumerate(paths)))
    return len(paths)


def run_basicsr(paths, out: Path, batch: int, chain) -> int:
    for s in range(0, len(paths), batch):
        chunk = paths[s : s + batch]
        gt = torch.stack([torch.from_numpy(read_rgb(p)).permute(2, 0, 1).float() / 255.0 for p in chunk]).contiguous()
        lq = chain(gt)
        for p, x in zip(chunk, lq):
            write_png((x * 255).round().clamp(0, 255).byte().permute(1, 2, 0).contiguous().numpy(), out / p.name)
    return len(paths)


def run_pairgen(paths, out: Path) -> int:
    from pairgen.utils import apply_degradations, imresize

    for p in paths:
        with Image.open(p) as im:
            img = im.convert("RGB")
        lr = Image.fromarray(imresize(np.array(img), scale=1 / 4))
        lr = apply_degradations(img=lr, blur=True, noise=True, jpeg=True)
        lr.save(out / p.name, compress_level=1)
    return len(paths)


def profile_ops(paths, preset: str = "realesrgan") -> dict:
    """CPU milliseconds per image spent in each op of the chain (thread CPU time, one thread)."""
    from collections import defaultdict

    from pairforge.degradations.chain import ChainDegradeConfig
    from pairforge.degradations.chain import ops as O

    spent: dict = defaultdict(float)
    classes = [O.UsmOp, O.BlurOp, O.ResizeOp, O.ResizeToOp, O.SubsampleOp, O.GaussianNoiseOp, O.PoissonNoiseOp, O.JpegOp]
    originals = {c: c.apply_np for c in classes}  # the CPU path: one numpy image per call

    def timed(f):
        def apply_np(self, a, p, env):
            t = time.thread_time()
            y = f(self, a, p, env)
            spent[self.name] += time.thread_time() - t
            return y

        return apply_np

    for c in classes:
        c.apply_np = timed(originals[c])
    try:
        deg = ChainDegradeConfig.model_validate({"preset": preset, "device": "cpu", "threads": 1}).build()
        t0 = time.process_time()
        for i, p in enumerate(paths):
            t = time.thread_time()
            img = read_rgb(p)
            spent["(decode PNG)"] += time.thread_time() - t
            r = deg.degrade([img], [5000 + i])[0]
            t = time.thread_time()
            cv2.imencode(".png", cv2.cvtColor(r.lq, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1])
            spent["(encode LQ PNG)"] += time.thread_time() - t
        total = time.process_time() - t0
    finally:
        for c in classes:
            c.apply_np = originals[c]
    out = {k: round(v / len(paths) * 1000, 2) for k, v in sorted(spent.items(), key=lambda kv: -kv[1])}
    out["(total, process CPU)"] = round(total / len(paths) * 1000, 2)
    return out


# ---------------------------------------------------------------------------------------------- main


def machine() -> dict:
    cpu = ""
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except Exception:
        pass
    return {
        "cpu": cpu or platform.processor(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "opencv": cv2.__version__,
        "numpy": np.__version__,
        "torch_threads": torch.get_num_threads(),
        "loadavg_start": os.getloadavg(),
        "git": _git_rev(),
    }


def _git_rev() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=32, help="images per size")
    ap.add_argument("--sizes", type=int, nargs="+", default=[512, 1024])
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--methods", nargs="+", default=["pairforge", "basicsr", "pairgen"])
    ap.add_argument("--basicsr-n", type=int, default=8, help="images per size for BasicSR (it is ~50x slower)")
    ap.add_argument("--no-profile", action="store_true", help="skip the per-op CPU profile of pairforge")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(1)  # parallelism comes from the methods' own threads (pairforge) or torch (BasicSR)
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    info = machine()
    info["command"] = "python bench/bench_degrade.py " + " ".join(argv if argv is not None else sys.argv[1:])
    results: dict = {"machine": info, "sizes": {}}
    from basicsr_shim import BasicSRChain

    chain = BasicSRChain() if "basicsr" in args.methods else None
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for size in args.sizes:
            paths = make_inputs(args.n, size, tmp)
            best: dict[str, float] = {}
            cpu: dict[str, float] = {}
            for r in range(args.rounds):
                for m in args.methods:
                    out = tmp / f"out_{m}_{size}_{r}"
                    out.mkdir()
                    t0, c0 = time.perf_counter(), time.process_time()
                    if m == "pairforge":
                        n = run_pairforge(paths, out, args.batch, args.threads)
                    elif m == "basicsr":
                        n = run_basicsr(paths[: args.basicsr_n], out, args.batch, chain)
                    elif m == "pairgen":
                        n = run_pairgen(paths, out)
                    else:
                        raise SystemExit(f"unknown method {m}")
                    dt, dc = time.perf_counter() - t0, time.process_time() - c0
                    rate = n / dt
                    best[m] = max(best.get(m, 0.0), rate)
                    cpu[m] = min(cpu.get(m, float("inf")), dc / n * 1000)
                    print(f"  {size}px round {r} {m:10s} {rate:7.2f} pairs/s ({dt:.1f} s, {dc / n * 1000:.0f} CPU-ms/pair)", flush=True)
            results["sizes"][str(size)] = {m: round(v, 3) for m, v in best.items()}
            if "pairforge" in args.methods and not args.no_profile:
                results.setdefault("pairforge_ops_cpu_ms", {})[str(size)] = profile_ops(paths)
            results.setdefault("cpu_ms_per_pair", {})[str(size)] = {m: round(v, 1) for m, v in cpu.items()}
    info["loadavg_end"] = os.getloadavg()
    md = markdown(results, args)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "degrade.json").write_text(json.dumps(results, indent=2))
    (args.out / "degrade.md").write_text(md)
    print(md)
    return results


def markdown(results: dict, args) -> str:
    m = results["machine"]
    lines = [
        f"Degradation throughput, end to end (decode PNG, degrade, encode LQ PNG), x4, {args.n} photos per size "
        f"({args.basicsr_n} for BasicSR), best of {args.rounds} rounds. {m['cpu']}, {m['cores']} cores, torch {m['torch']}, OpenCV {m['opencv']}; "
        f"load average at start {m['loadavg_start'][0]:.2f}. Command: `{m['command']}`",
        "",
        "| size | pairforge realesrgan (pairs/s) | BasicSR x4plus chain (pairs/s) | pairgen (pairs/s) | vs BasicSR | vs pairgen |",
        "|---|---|---|---|---|---|",
    ]
    for size, r in results["sizes"].items():
        pf, bs, pg = r.get("pairforge"), r.get("basicsr"), r.get("pairgen")
        ratio = lambda a, b: f"{a / b:.1f}x" if a and b else "-"
        fmt = lambda v: f"{v:.2f}" if v else "-"
        lines.append(f"| {size}x{size} | {fmt(pf)} | {fmt(bs)} | {fmt(pg)} | {ratio(pf, bs)} | {ratio(pf, pg)} |")
    lines += [
        "",
        "CPU time per pair (process CPU seconds / pairs, best round; less sensitive to other load on a shared machine):",
        "",
        "| size | pairforge (CPU-ms/pair) | BasicSR (CPU-ms/pair) | pairgen (CPU-ms/pair) |",
        "|---|---|---|---|",
    ]
    for size, r in results.get("cpu_ms_per_pair", {}).items():
        g = lambda k: f"{r[k]:.0f}" if k in r else "-"
        lines.append(f"| {size}x{size} | {g('pairforge')} | {g('basicsr')} | {g('pairgen')} |")
    prof = results.get("pairforge_ops_cpu_ms")
    if prof:
        sizes = list(prof)
        lines += ["", "pairforge `realesrgan` CPU ms per image by op (one thread):", "",
                  "| op | " + " | ".join(f"{s}x{s}" for s in sizes) + " |", "|---|" + "---|" * len(sizes)]
        for op in prof[sizes[0]]:
            lines.append(f"| {op} | " + " | ".join(f"{prof[s].get(op, 0):.1f}" for s in sizes) + " |")
    lines.append("")
    lines.append(
        "pairforge and BasicSR run the full second-order x4plus chain (USM, two blur/resize/noise stages, two JPEGs, "
        "final sinc); pairgen runs its simpler single-order blur/noise/JPEG/resize chain on the already downscaled image."
    )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
