"""The fitness experiment: do pairforge's pairs make better restorers, and for which degradations?

From the bundled photos, disjoint train and test photos (a test photo never contributes a single tile to
training; the stereo pair motorcycle_left/right stays on one side). Three training corpora from the
train photos: (a) the Real-ESRGAN x4plus chain, (b) the nine real-world types, (c) a mix of both made by
``degrade: {kind: mix}`` (chain and real-world components 1:1); with ``--mix both`` also a fourth model
that mixes corpora (a) and (b) 1:1 in the trainer instead. One small restorer per corpus, same
architecture, same steps, same seed. Every model is
evaluated with ``pairforge evaluate`` on held-out test pairs of the chain and of each of the nine types
(made from the test photos), next to the identity baseline (the LQ itself).

All pairs are same-size (``lq_size: hq`` for the chain), so one scale-1 NAFNet serves every corpus and the
nine types (which never change the size) and the chain are comparable.

    python bench/fitness.py                        # default size: ~10 min on 2 quiet CPU cores
    python bench/fitness.py --steps 4000 --width 32 --tile 256 --batch 16 --device cuda   # on a GPU

Writes OUT/ (corpora, checkpoints, evaluation JSON, matrix.json) and, with --report, a markdown report.
Every step runs the public CLI (``python -m pairforge.cli ...``); the commands are in the report.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

import yaml

TRAIN_PHOTOS = ["rocket", "motorcycle_left", "motorcycle_right", "hubble_deep_field", "retina",
                "immunohistochemistry", "camera", "brick", "grass", "gravel"]
TEST_PHOTOS = ["astronaut", "coffee", "chelsea"]
NINE = ["blur", "compression", "moire", "low_light", "noise", "flare", "reflection", "haze", "rain"]
CHAIN = "realesrgan"
MODELS = ("chain", "types", "mix", "mix-trainer")
#: model -> its directory under OUT/models and its eval JSON name
DIRS = {"chain": "chain", "types": "types", "mix": "mix-corpus", "mix-trainer": "mix"}
LABELS = {"chain": "chain model", "types": "nine-types model", "mix": "mix model (kind: mix)",
          "mix-trainer": "mix model (trainer 1:1)"}
OWN = {"chain": [CHAIN], "types": NINE, "mix": [CHAIN, *NINE], "mix-trainer": [CHAIN, *NINE]}


def sh(cmd: list[str], log: list[dict], what: str) -> float:
    """Run one CLI step, record its command line and wall time; fail loudly with its output."""
    return sh_parallel([(cmd, what)], log, 1)


def sh_parallel(steps: list[tuple[list[str], str]], log: list[dict], jobs: int) -> float:
    """Run CLI steps, ``jobs`` at a time (1: one after the other); same recording as :func:`sh`."""
    t_all = time.perf_counter()
    pending = list(steps)
    running: list[tuple[subprocess.Popen, str, list[str], float, Path, object]] = []
    while pending or running:
        while pending and len(running) < max(1, jobs):
            cmd, what = pending.pop(0)
            print(f"[fitness] {what}: {shlex.join(cmd)}", flush=True)
            out = Path(os.environ.get("TMPDIR", "/tmp")) / f"fitness-{os.getpid()}-{len(log)}-{len(running)}.log"
            f = open(out, "w")  # noqa: SIM115 - closed when the process ends, below
            running.append((subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT), what, cmd,
                            time.perf_counter(), out, f))
        for item in list(running):
            proc, what, cmd, t0, out, f = item
            if proc.poll() is None:
                continue
            running.remove(item)
            f.close()
            dt = time.perf_counter() - t0
            if proc.returncode != 0:
                sys.stderr.write(out.read_text()[-8000:])
                raise SystemExit(f"[fitness] {what} failed (exit {proc.returncode}); output above")
            out.unlink(missing_ok=True)
            log.append({"what": what, "command": shlex.join(cmd), "seconds": round(dt, 1)})
            print(f"[fitness]   {what}: {dt:.0f} s", flush=True)
        time.sleep(0.5)
    return time.perf_counter() - t_all


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "pairforge.cli", *args]


def gen_config(name: str, photos: list[str], degrade: dict, tile: int, stride: int) -> dict:
    return {
        "run": {"name": name, "seed": 0 if "train" in name else 1},
        "source": {"kind": "bundled", "photos": photos, "crop": {"mode": "tiles", "size": tile, "stride": stride}},
        "filters": [{"kind": "sanity", "min_size": 32, "min_std": 6.0}],
        "degrade": degrade,
        "output": {"samples_per_shard": 32},
    }


def chain_degrade() -> dict:
    return {"kind": "chain", "preset": CHAIN, "lq_size": "hq"}


def types_degrade() -> dict:
    return {"kind": "realworld"}  # the nine types, equal weights, mixed severity, one type per LQ


def mix_degrade() -> dict:
    return {"kind": "mix", "components": [{"name": "chain", "weight": 1, "degrade": chain_degrade()},
                                          {"name": "realworld", "weight": 1, "degrade": types_degrade()}]}


def train_config(name: str, datasets: list[dict], out: Path, a: argparse.Namespace) -> dict:
    return {
        "name": f"fitness-{name}",
        "model": {"kind": "nafnet", "width": a.width, "enc_blocks": [1, 1, 2], "middle_blocks": 2,
                  "dec_blocks": [1, 1, 1]},
        "data": {"datasets": datasets, "patch_size": a.patch, "batch_size": a.batch, "num_workers": 1,
                 "shuffle_buffer": 256, "shuffle_initial": 64},
        "loss": {"pixel": {"kind": "l1"}},
        "optim": {"lr": a.lr, "warmup_steps": max(1, a.steps // 20), "min_lr_ratio": 0.05, "grad_clip": 1.0},
        "train": {"seed": 0, "max_steps": a.steps, "log_every": max(1, a.steps // 10), "ckpt_every": a.steps,
                  "ema": {"decay": 0.99}, "device": a.device, "threads": a.threads},
        "output": {"dir": str(out), "tensorboard": "off"},
    }


def write_yaml(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="out/fitness")
    ap.add_argument("--steps", type=int, default=400, help="training steps per model (same for all)")
    ap.add_argument("--width", type=int, default=16, help="NAFNet width")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--tile", type=int, default=128, help="HQ tile size of every corpus")
    ap.add_argument("--test-stride", type=int, default=48, help="tile stride on the test photos (overlap is fine "
                    "there: test photos never reach training)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", default="auto")
    ap.add_argument("--mix", choices=("corpus", "trainer", "both"), default="corpus", help="corpus: (c) is made by "
                    "`degrade: {kind: mix}`; trainer: the trainer mixes (a) and (b) 1:1; both: two mix models")
    ap.add_argument("--jobs", type=int, default=1, help="train/evaluate the three models this many at a time "
                    "(1 on a quiet 2-core machine; more only helps where other jobs compete for the CPUs)")
    ap.add_argument("--report", default=None, help="write the markdown report here (e.g. FITNESS.md)")
    ap.add_argument("--report-only", action="store_true", help="rewrite the report from OUT/matrix.json")
    a = ap.parse_args(argv)
    if a.report_only:
        doc = json.loads((Path(a.out) / "matrix.json").read_text())
        text = report(doc["matrix"], check_goals(doc["matrix"]), doc["meta"])
        print(text)
        if a.report:
            Path(a.report).write_text(text)
        return 0
    if a.threads != "auto":
        a.threads = int(a.threads)
    assert not set(TRAIN_PHOTOS) & set(TEST_PHOTOS)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    log: list[dict] = []
    t_start = time.perf_counter()

    # 1. corpora: train photos -> (a), (b) [, (c)]; test photos -> chain and nine-type test sets
    corpora = {
        "train-chain": (TRAIN_PHOTOS, chain_degrade(), a.tile),
        "train-types": (TRAIN_PHOTOS, types_degrade(), a.tile),
        "test-chain": (TEST_PHOTOS, chain_degrade(), a.test_stride),
        "test-types": (TEST_PHOTOS, types_degrade(), a.test_stride),
    }
    models = ["chain", "types"] + {"corpus": ["mix"], "trainer": ["mix-trainer"], "both": ["mix", "mix-trainer"]}[a.mix]
    if "mix" in models:
        corpora["train-mix"] = (TRAIN_PHOTOS, mix_degrade(), a.tile)
    for name, (photos, degrade, stride) in corpora.items():
        cfg = write_yaml(out / "configs" / f"{name}.yaml", gen_config(name, photos, degrade, a.tile, stride))
        if (out / name / "index.json").exists():
            log.append({"what": f"generate {name}", "command": "(reused from an earlier run in --out)", "seconds": 0})
        else:
            sh(cli("run", str(cfg), "--out", str(out / name), "--executor", "local", "--quiet"), log, f"generate {name}")

    # 2. one restorer per corpus: same network, steps, seed
    def ds(name: str) -> dict:
        return {"name": name.replace("train-", ""), "url": str(out / name)}

    trains = {
        "chain": [ds("train-chain")],
        "types": [ds("train-types")],
        "mix": [ds("train-mix")],
        "mix-trainer": [ds("train-chain"), ds("train-types")],
    }
    steps = []
    for model in models:
        run_dir = out / "models" / DIRS[model]
        cfg = write_yaml(out / "configs" / f"model-{DIRS[model]}.yaml", train_config(model, trains[model], run_dir, a))
        steps.append((cli("train", str(cfg)), f"train {model}"))  # an existing finished run resumes at its end
    sh_parallel(steps, log, a.jobs)

    # 3. every model on every test set (pairforge evaluate), identity baseline alongside
    steps = []
    for model in models:
        js = out / "eval" / f"{DIRS[model]}.json"
        ck = sorted((out / "models" / DIRS[model] / "checkpoints").glob("ckpt-*.pt"))
        if js.exists() and ck and js.stat().st_mtime > ck[-1].stat().st_mtime:
            log.append({"what": f"evaluate {model}", "command": "(reused: evaluated after its last checkpoint)",
                        "seconds": 0})
            continue
        steps.append((cli("evaluate", str(out / "test-chain"), str(out / "test-types"), "-c",
                          str(out / "models" / DIRS[model]), "--json", str(js), "--tile", "0", "--lpips", "off",
                          "--device", "cpu" if a.device == "auto" else a.device), f"evaluate {model}"))
    sh_parallel(steps, log, a.jobs)
    results = {model: json.loads((out / "eval" / f"{DIRS[model]}.json").read_text()) for model in models}
    total = time.perf_counter() - t_start

    matrix = build_matrix(results)
    goals = check_goals(matrix)
    meta = {"args": vars(a), "seconds": round(total, 1), "steps": log, "machine": machine(),
            "train_photos": TRAIN_PHOTOS, "test_photos": TEST_PHOTOS}
    (out / "matrix.json").write_text(json.dumps({"matrix": matrix, "goals": goals, "meta": meta}, indent=1))
    text = report(matrix, goals, meta)
    print(text)
    if a.report:
        Path(a.report).write_text(text)
    return 0


def build_matrix(results: dict[str, dict]) -> dict:
    """{test type: {"n", "identity", model: PSNR-Y, ...}} plus the nine-type mean row."""
    tests = [CHAIN, *NINE]
    m: dict[str, dict] = {}
    for t in tests:
        row: dict = {}
        for model, res in results.items():
            g = res["by"]["type"].get(t)
            if g is None:
                continue
            row["n"] = g["n"]
            row["identity"] = g["base_psnr_y"]
            row[model] = g["psnr_y"]
            row[f"{model}_ssim_y"] = g["ssim_y"]
            row["identity_ssim_y"] = g["base_ssim_y"]
        m[t] = row
    present = [t for t in NINE if m.get(t)]
    mean = {"n": sum(m[t]["n"] for t in present)}
    for k in ("identity", *[mm for mm in MODELS if mm in results]):
        vals = [m[t][k] for t in present if m[t].get(k) is not None]
        mean[k] = sum(vals) / len(vals) if vals else None
    m["nine types (mean)"] = mean
    return m


def present_models(m: dict) -> list[str]:
    return [mm for mm in MODELS if any(row.get(mm) is not None for row in m.values())]


def check_goals(m: dict) -> list[dict]:
    """The issue's goals, each with the numbers it was decided on (for every mix model present)."""
    out = []
    models = present_models(m)
    for model in models:
        kinds = [t for t in OWN[model] if m.get(t) and m[t].get(model) is not None]
        worse = [t for t in kinds if m[t][model] <= m[t]["identity"]]
        out.append({"goal": f"{LABELS[model]} beats identity on its own kind of data",
                    "met": not worse and bool(kinds),
                    "detail": (f"above identity on all {len(kinds)} of its kinds") if not worse else
                    "not above identity on: " + ", ".join(f"{t} ({m[t][model] - m[t]['identity']:+.2f} dB)" for t in worse)})
    for mix in [mm for mm in ("mix", "mix-trainer") if mm in models]:
        behind = []
        for t in [CHAIN, *NINE]:
            if not m.get(t) or m[t].get(mix) is None:
                continue
            spec = "chain" if t == CHAIN else "types"
            d = m[t][mix] - m[t][spec]
            if d < -0.3:
                behind.append(f"{t} ({d:+.2f} dB vs the {LABELS[spec]})")
        out.append({"goal": f"{LABELS[mix]} no worse than the specialist on each kind (within 0.3 dB)",
                    "met": not behind,
                    "detail": "within 0.3 dB everywhere" if not behind else "more than 0.3 dB behind on: " + ", ".join(behind)})
        mean = m["nine types (mean)"]
        d = (mean[mix] - mean["chain"]) if mean.get(mix) is not None and mean.get("chain") is not None else math.nan
        per = [t for t in NINE if m.get(t) and m[t].get(mix) is not None and m[t][mix] > m[t]["chain"]]
        out.append({"goal": f"{LABELS[mix]} better than the chain-only model on the nine types", "met": d > 0,
                    "detail": f"nine-type mean {d:+.2f} dB; better on {len(per)} of {len(NINE)} types"})
    return out


def machine() -> dict:
    import torch

    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"platform": platform.platform(), "python": platform.python_version(), "torch": torch.__version__,
            "cpus": cpus, "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "loadavg_at_end": [round(x, 1) for x in load] if load else None}


HEADER = """# Fitness: do pairforge's pairs make better restorers?

Written by `make fitness` (`bench/fitness.py`); rerun it to reproduce or to scale up
(`make fitness FITNESS_ARGS="--steps 4000 --width 32 --tile 256 --batch 16 --device cuda"` on a GPU).

The experiment: the bundled photos are split **by photo** into train and test photos (no tile of a test
photo is ever trained on). From the train photos, three corpora: (a) the Real-ESRGAN x4plus chain
(`lq_size: hq`, so every corpus is same-size restoration), (b) the nine real-world types (equal weights,
mixed severity), (c) MIX_TEXT. One small NAFNet per corpus, same architecture, steps and seed. Each
model is measured with `pairforge evaluate` on test pairs made from the test photos: the chain, and each
of the nine types, next to the identity baseline (the degraded input itself). PSNR on Y (BT.601), no
border crop (same-size pairs). Small models, few steps, few test photos: differences of a few hundredths
of a dB are noise; the point is the direction and which types a corpus teaches.
"""


def report(m: dict, goals: list[dict], meta: dict) -> str:
    a = meta["args"]
    models = present_models(m)
    mix_text = {"corpus": "pairs made by `degrade: {kind: mix}` (chain and real-world components, weights 1:1)",
                "trainer": "a mix of (a) and (b), drawn 1:1 by the trainer's dataset mixing (`data.datasets`)",
                "both": "(c1) pairs made by `degrade: {kind: mix}` (chain and real-world components 1:1) and (c2) "
                        "corpora (a) and (b) drawn 1:1 by the trainer's dataset mixing"}[a.get("mix", "trainer")]
    lines = [HEADER.replace("MIX_TEXT", mix_text),
             "## Matrix: PSNR-Y (dB) on held-out test photos; model − identity in brackets", "",
             "| test data | n | identity | " + " | ".join(LABELS[mm] for mm in models) + " |",
             "|---|---:|---:|" + "---:|" * len(models)]
    for t, row in m.items():
        if not row or row.get("identity") is None:
            continue
        cells = []
        for model in models:
            v = row.get(model)
            cells.append("-" if v is None else f"{v:.2f} ({v - row['identity']:+.2f})")
        name = f"**{t}**" if t == "nine types (mean)" else t
        lines.append(f"| {name} | {row['n']} | {row['identity']:.2f} | " + " | ".join(cells) + " |")
    lines += ["", "## Goals", ""]
    for g in goals:
        lines.append(f"- {'met' if g['met'] else 'NOT met'}: {g['goal']} — {g['detail']}")
    mc = meta["machine"]
    flags = " ".join(f"--{k.replace('_', '-')} {v}" for k, v in a.items()
                     if k not in ("report", "report_only"))
    lines += ["", "## Run", "", (f"- command: `python bench/fitness.py {flags}` (`make fitness` runs it with "
                                 "the defaults and --out out/fitness --report FITNESS.md)"),
              f"- total {meta['seconds'] / 60:.1f} min on {mc['cpus']} CPU(s)"
              + (f", GPU {mc['cuda']}" if mc.get("cuda") else "")
              + f"; load average at the end {mc.get('loadavg_at_end')}; {mc['platform']}, torch {mc['torch']}",
              f"- train photos: {', '.join(meta['train_photos'])}; test photos: {', '.join(meta['test_photos'])}",
              (f"- settings: steps {a['steps']}, NAFNet width {a['width']}, batch {a['batch']}, patch {a['patch']}, "
               f"lr {a['lr']}, tiles {a['tile']} px (test stride {a['test_stride']}), threads {a['threads']}, "
               f"jobs {a.get('jobs', 1)}"),
              "", "| step | seconds | command |", "|---|---:|---|"]
    for s in meta["steps"]:
        lines.append(f"| {s['what']} | {s['seconds']} | `{s['command']}` |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
