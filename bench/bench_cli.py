"""The commands users run, timed as whole processes, side by side with the references in the same run.

    python bench/bench_cli.py [--sizes 64 256] [--slow-sizes 16 64] [--px 512] [--rounds 1]

Every figure is a separate process started from a shell, start-up included, on the same PNG photos
(random crops of the bundled photos, `--px` square): its wall clock, its CPU time (user + system of the
whole process tree: holds on a busy machine) and its peak RSS summed over its processes. The marginal
rate comes from two input counts: (n2 - n1) / (t2 - t1), which removes fixed start-up costs; the slow
commands use `--basicsr-sizes` and `--slow-sizes` (realworld). Writes bench/results/cli.json and cli.md and prints
the markdown (bench/report_md.py makes the same tables from the JSON).

Commands:
* `pairforge degrade IN OUT --preset realesrgan` (local executor, the default), the same with `--ray`
  (which starts a private Ray and stops it at the end), with `--ray --ray-address ADDR` on a Ray that is
  already running on this machine (`ray start --head`, started once by the benchmark outside the
  timed command; the command joins it with `--ray-address auto`; its CPU and RSS columns count the
  command's own processes only, the actors run in the cluster's), and `--preset realworld` (the nine types, weight-free scene model);
* `pairforge degrade IN OUT --preset simple` (blur at full size, area downscale, noise and JPEG on the LQ):
  about the pixel work pairgen's command does, for a like-for-like ratio;
* `pairgen -i IN -o OUT -s 4 --blur --noise --jpeg -w 2` (pairgen 1.0.1: shrinks the photo first, then
  blur, noise, JPEG and a random resize at the LQ size, each with probability 0.8);
* `python bench/basicsr_degrade.py IN OUT` (BasicSR 1.4.2's own x4plus chain, batches of 8);
* start-up: `pairforge --help`; each command on one photo: wall clock, seconds spent importing
  (`-X importtime`) and which heavy modules (torch, ray, pyiqa, transformers, diffusers) it imports.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from benchutil import busy, machine, measure  # noqa: E402
from report_md import cli_md  # noqa: E402

BIN = Path(sys.executable).parent
HEAVY = ("torch", "ray", "pyiqa", "transformers", "diffusers")
RUNNING_RAY = "pairforge degrade realesrgan --ray-address (Ray already running)"
METHODS = ("pairforge degrade realesrgan", "pairforge degrade realesrgan --ray", RUNNING_RAY, "pairforge degrade realworld",
           "pairforge degrade simple", "pairgen -s 4 --blur --noise --jpeg -w 2", "BasicSR x4plus chain")
#: ~25-40x slower per pair than the chain: measured on fewer photos (--slow-sizes)
SLOW = ("BasicSR x4plus chain", "pairforge degrade realworld")


def timed(cmd: list[str], env: dict | None = None) -> float:
    return measure(cmd, env).wall_s


#: the address of the Ray that ``running_ray`` keeps up (the RUNNING_RAY method connects to it)
_RAY_ADDRESS: list[str] = []


@contextlib.contextmanager
def running_ray(cpus: int):
    """`ray start --head --block` for the duration: the Ray a user keeps running on a machine (its
    start-up is not part of any timed command); stopped with SIGTERM, which `--block` turns into
    stopping every process it started (never `ray stop`, which stops every Ray on the machine)."""
    proc = subprocess.Popen([str(BIN / "ray"), "start", "--head", "--block", f"--num-cpus={cpus}", "--include-dashboard=false",
                             "--disable-usage-stats"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    head = None
    try:
        deadline = time.time() + 120
        for line in proc.stdout:
            if "ray start --address=" in line:  # up; a driver on this machine joins it with `auto`, as Ray says
                _RAY_ADDRESS[:] = ["auto"]
                head = line.split("--address=", 1)[1].strip().strip("'\"")
                break
            if time.time() > deadline:
                break
        if not _RAY_ADDRESS:
            raise RuntimeError("the benchmark's `ray start --head` did not report its address")
        threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep its pipe drained
        yield _RAY_ADDRESS[0]
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)
        _RAY_ADDRESS.clear()
        # `--block` leaves the "current cluster" file naming the stopped head, and a later plain
        # ray.init() on this machine would try to join it; remove it if it is still ours
        current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
        try:
            if head and current.read_text().strip() == head:
                current.unlink()
        except OSError:
            pass


def commands(name: str, inp: Path, out: Path) -> list[str]:
    pf = str(BIN / "pairforge")
    if name == RUNNING_RAY:
        return [pf, "degrade", str(inp), str(out), "--preset", "realesrgan", "--ray", "--ray-address", _RAY_ADDRESS[0], "-q"]
    return {
        "pairforge degrade realesrgan": [pf, "degrade", str(inp), str(out), "--preset", "realesrgan", "-q"],
        "pairforge degrade realesrgan --ray": [pf, "degrade", str(inp), str(out), "--preset", "realesrgan", "--ray", "-q"],
        "pairforge degrade realworld": [pf, "degrade", str(inp), str(out), "--preset", "realworld", "-q"],
        "pairforge degrade simple": [pf, "degrade", str(inp), str(out), "--preset", "simple", "-q"],
        "pairgen -s 4 --blur --noise --jpeg -w 2": [str(BIN / "pairgen"), "-i", str(inp), "-o", str(out), "-s", "4",
                                                    "--blur", "--noise", "--jpeg", "-w", "2"],
        "BasicSR x4plus chain": [sys.executable, str(ROOT / "bench" / "basicsr_degrade.py"), str(inp), str(out)],
    }[name]


def import_profile(cmd: list[str]) -> tuple[float, list[str]]:
    """Seconds spent importing (sum of the top-level entries of ``-X importtime``) and the heavy
    modules among them, for a Python command (``cmd[0]`` a console script or python itself)."""
    if Path(cmd[0]).name == "pairforge":
        cmd = [sys.executable, "-m", "pairforge.cli", *cmd[1:]]
    elif Path(cmd[0]).name == "pairgen":
        cmd = [sys.executable, "-c", "import sys; from pairgen.cli import main; sys.argv[0] = 'pairgen'; sys.exit(main())", *cmd[1:]]
    cmd = [cmd[0], "-X", "importtime", *cmd[1:]]
    r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    total, heavy = 0, set()
    for line in r.stderr.splitlines():
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cum, name = line.split("|", 2)
        if cum.strip().isdigit() and not name.startswith("  "):
            total += int(cum)
        mod = name.strip().split(".")[0]
        if mod in HEAVY:
            heavy.add(mod)
    return total / 1e6, sorted(heavy)


def runnable_threads(cmd: list[str], cores: int, interval: float = 0.005) -> dict | None:
    """How many of a command's threads (its whole process tree) are runnable, sampled from /proc every
    ``interval`` s: the parallelism the command offers, which a busy machine's wall clock hides (a
    thread waiting for a core is runnable, one waiting for the GIL, a lock or I/O is not). Returns the
    mean number runnable capped at ``cores`` over the whole command and over its busy middle (from the
    first to the last 0.2 s with about ``cores`` runnable on average: start-up and the end-of-run report
    run on one thread), and the share of the busy middle with every core's worth of threads runnable;
    None off Linux. Output is sampled wall time: the figures are rough on a very busy machine."""
    if not Path("/proc/self/task").exists():
        return None
    import psutil

    p = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONWARNINGS": "ignore"},
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    counts: list[int] = []
    proc = psutil.Process(p.pid)
    while p.poll() is None:
        try:
            pids = [p.pid, *(c.pid for c in proc.children(recursive=True))]
        except psutil.Error:
            pids = [p.pid]
        r = 0
        for pid in pids:
            try:
                tasks = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for t in tasks:
                try:
                    stat = Path(f"/proc/{pid}/task/{t}/stat").read_text()
                except OSError:
                    continue
                r += stat[stat.rindex(")") + 2] == "R"
        counts.append(min(r, cores))
        time.sleep(interval)
    if p.returncode != 0:
        raise RuntimeError(f"{cmd} failed with exit code {p.returncode}")
    # the busy middle, in 0.2 s bins (a lone sample with every core runnable during start-up is not it)
    per = max(1, round(0.2 / interval))
    bins = [counts[i : i + per] for i in range(0, len(counts), per)]
    full = [i for i, b in enumerate(bins) if sum(b) / len(b) >= cores - 0.5]
    middle = [c for b in bins[full[0] : full[-1] + 1] for c in b] if full else counts
    return {
        "mean_runnable_whole": round(sum(counts) / max(1, len(counts)), 2),
        "mean_runnable_busy_middle": round(sum(middle) / max(1, len(middle)), 2),
        "busy_middle_share_all_cores": round(sum(c >= cores for c in middle) / max(1, len(middle)), 2),
        "busy_middle_s": round(len(middle) * interval, 1),
        "samples": len(counts),
    }


def time_method(name: str, args, folders: dict, tmp: Path) -> dict:
    """Whole-command runs of one method at its two sizes (best of --rounds) and the marginal rate."""
    sizes = args.basicsr_sizes if name.startswith("BasicSR") else args.slow_sizes if name in SLOW else args.sizes
    row: dict = {"sizes": sizes, "runs": {}}
    for n in sizes:
        best = None
        for r in range(args.rounds):
            o = tmp / f"out-{abs(hash(name))}-{n}-{r}"
            m = measure(commands(name, folders[n], o))
            best = m if best is None or m.wall_s < best.wall_s else best
            shutil.rmtree(o, ignore_errors=True)
        row["runs"][str(n)] = best.to_dict()
        print(f"  {name:40s} {n:4d} photos {best.wall_s:7.1f} s wall {best.cpu_s:7.1f} s CPU", flush=True)
    (n1, n2) = sizes
    r1, r2 = row["runs"][str(n1)], row["runs"][str(n2)]
    dt, dc = r2["wall_s"] - r1["wall_s"], r2["cpu_s"] - r1["cpu_s"]
    row["marginal_pairs_per_s"] = round((n2 - n1) / dt, 2) if dt > 0 else None
    row["marginal_cpu_ms_per_pair"] = round(1000 * dc / (n2 - n1), 1) if dc > 0 else None
    return row


def main(argv: list[str] | None = None) -> dict:
    from bench_degrade import make_inputs

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs=2, default=[64, 256], help="two input counts (marginal rate)")
    ap.add_argument("--px", type=int, default=512)
    ap.add_argument("--rounds", type=int, default=1, help="repeats per command and size; the best counts")
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--slow-sizes", type=int, nargs=2, default=[16, 64], help="input counts for `degrade --preset realworld`")
    ap.add_argument("--basicsr-sizes", type=int, nargs=2, default=[8, 64],
                    help="input counts for BasicSR (~40x slower; 64 = the whole-command comparison)")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args(argv)
    info = machine()
    res: dict = {"machine": info, "px": args.px, "startup": {}, "commands": {}, "ratios": {}}
    with tempfile.TemporaryDirectory(prefix="pf-bench-cli-") as tmp:
        tmp = Path(tmp)
        pool = tmp / "pool"
        pool.mkdir()
        paths = make_inputs(max(*args.sizes, *args.slow_sizes, *args.basicsr_sizes), args.px, pool)
        folders = {}
        for n in sorted(set(args.sizes) | set(args.slow_sizes) | set(args.basicsr_sizes) | {1}):
            d = tmp / f"in{n}"
            d.mkdir()
            for p in paths[:n]:
                shutil.copy(p, d / p.name)
            folders[n] = d
        # start-up: the whole command on one photo, and where its time goes
        res["startup"]["pairforge --help, wall (s)"] = min(timed([str(BIN / "pairforge"), "--help"]) for _ in range(3))
        for name in ("pairforge degrade realesrgan", "pairforge degrade realworld", "pairgen -s 4 --blur --noise --jpeg -w 2",
                     "BasicSR x4plus chain"):
            if name not in args.methods:
                continue
            one = min(timed(commands(name, folders[1], tmp / f"one-{i}")) for i in range(3))
            imp, heavy = import_profile(commands(name, folders[1], tmp / "one-imp"))
            res["startup"][f"`{name}`, 1 photo: wall (s)"] = round(one, 2)
            res["startup"][f"`{name}`: importing (s)"] = round(imp, 2)
            res["startup"][f"`{name}`: heavy modules imported"] = heavy
            for d in tmp.glob("one-*"):
                shutil.rmtree(d, ignore_errors=True)
        for name in args.methods:
            if name == RUNNING_RAY:
                with running_ray(int(info.get("cores") or os.cpu_count() or 1)):
                    res["commands"][name] = time_method(name, args, folders, tmp)
                continue
            res["commands"][name] = time_method(name, args, folders, tmp)
        # issue 14.2 "every core busy", in a form a busy machine does not hide
        name = "pairforge degrade realesrgan"
        if name in args.methods:
            n = max(args.sizes)
            got = runnable_threads(commands(name, folders[n], tmp / "par"), int(info.get("cores") or os.cpu_count() or 1))
            if got is not None:
                res["parallelism"] = {"command": name, "photos": n, **got}
            shutil.rmtree(tmp / "par", ignore_errors=True)
    res["ratios"] = ratios(res["commands"])
    info["loadavg_end"] = os.getloadavg()
    info["busy"] = busy(info)
    md = cli_md(res)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cli.json").write_text(json.dumps(res, indent=2))
    (args.out / "cli.md").write_text(md)
    print(md)
    return res


def ratios(c: dict) -> dict:
    out: dict = {}
    pf, pg = c.get("pairforge degrade realesrgan", {}), c.get("pairgen -s 4 --blur --noise --jpeg -w 2", {})
    bs, ray = c.get("BasicSR x4plus chain", {}), c.get("pairforge degrade realesrgan --ray", {})
    if pf.get("marginal_pairs_per_s") and pg.get("marginal_pairs_per_s"):
        out["realesrgan_vs_pairgen_marginal"] = pf["marginal_pairs_per_s"] / pg["marginal_pairs_per_s"]
    if pf.get("marginal_cpu_ms_per_pair") and pg.get("marginal_cpu_ms_per_pair"):
        out["realesrgan_vs_pairgen_marginal_cpu"] = pg["marginal_cpu_ms_per_pair"] / pf["marginal_cpu_ms_per_pair"]
    simple = c.get("pairforge degrade simple", {})
    if simple.get("marginal_pairs_per_s") and pg.get("marginal_pairs_per_s"):
        out["simple_vs_pairgen_marginal"] = simple["marginal_pairs_per_s"] / pg["marginal_pairs_per_s"]
    if simple.get("marginal_cpu_ms_per_pair") and pg.get("marginal_cpu_ms_per_pair"):
        out["simple_vs_pairgen_marginal_cpu"] = pg["marginal_cpu_ms_per_pair"] / simple["marginal_cpu_ms_per_pair"]
    common = set(pf.get("runs", {})) & set(bs.get("runs", {}))
    if common:
        n = max(common, key=int)
        out["realesrgan_vs_basicsr_whole"] = bs["runs"][n]["wall_s"] / pf["runs"][n]["wall_s"]
        out["realesrgan_vs_basicsr_photos"] = int(n)
    common = set(pf.get("runs", {})) & set(ray.get("runs", {}))
    if common:
        n = max(common, key=int)
        out["ray_over_local_whole"] = pf["runs"][n]["wall_s"] / ray["runs"][n]["wall_s"]
    running = c.get(RUNNING_RAY, {})
    common = set(pf.get("runs", {})) & set(running.get("runs", {}))
    if common:
        n = max(common, key=int)
        out["running_ray_over_local_whole"] = pf["runs"][n]["wall_s"] / running["runs"][n]["wall_s"]
    if pf.get("marginal_pairs_per_s") and running.get("marginal_pairs_per_s"):
        out["running_ray_over_local_marginal"] = running["marginal_pairs_per_s"] / pf["marginal_pairs_per_s"]
    return out


if __name__ == "__main__":
    main()
