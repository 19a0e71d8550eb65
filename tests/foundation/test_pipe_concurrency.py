"""The local executor overlaps stage calls, encoding and shards in threads: the bytes written must not
depend on how many threads or shards in flight it uses."""
import json
import threading

import pytest

from pairforge.config import parse_config
from pairforge.io.storage import LocalStorage
from pairforge.pipeline import ledger
from pairforge.pipeline.executors import LocalExecutor
from pairforge.pipeline.runner import run_pipeline
from pairforge.pipeline.shardwork import run_stage, shard_batch
from pairforge.stage import RunContext, Stage


def _tars(out) -> dict[int, str]:
    return {r["shard"]: r["sha256"] for r in ledger.committed_records(LocalStorage(out)).values()}


@pytest.mark.parametrize("degrade", [{"kind": "chain", "preset": "realesrgan", "resources": {"batch_size": 2}},
                                     {"kind": "simple", "scale": 2}])
def test_output_is_byte_identical_whatever_the_concurrency(tmp_path, degrade):
    cfg = {
        "run": {"seed": 5},
        "source": {"kind": "bundled", "photos": ["astronaut", "coffee"], "crop": {"mode": "tiles", "size": 64, "stride": 48},
                   "resources": {"batch_size": 3}},
        "filters": [{"kind": "sanity", "min_size": 16, "resources": {"batch_size": 2}}],
        "degrade": degrade,
        "output": {"samples_per_shard": 7},
    }
    runs = {"serial": LocalExecutor(workers=1), "threads": LocalExecutor(workers=3, shards_in_flight=3),
            "rows only": LocalExecutor(workers=4, shards_in_flight=1),
            "processes": LocalExecutor(workers=2, processes=True)}
    got = {}
    for name, ex in runs.items():
        s = run_pipeline(parse_config(cfg), str(tmp_path / name.replace(" ", "_")), executor=ex, limit=30)
        assert s.shards_written == 5 and s.inputs_this_run == 30
        got[name] = _tars(tmp_path / name.replace(" ", "_"))
        index = json.loads((tmp_path / name.replace(" ", "_") / "index.json").read_text())
        got[name + " index"] = [(e["shard"], e["sha256"]) for e in index["shards"]]
    assert got["serial"] == got["threads"] == got["rows only"] == got["processes"]
    assert got["serial index"] == got["threads index"] == got["rows only index"] == got["processes index"]


class _Counting(Stage):
    """Records which threads ran it and how many calls overlapped."""

    name = "counting"

    def __init__(self, concurrent: bool):
        super().__init__(None, RunContext())
        self.concurrent_calls = concurrent
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()
        self.barrier = threading.Barrier(2, timeout=5)

    def process(self, batch):
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        if self.concurrent_calls:
            self.barrier.wait()  # two calls must be inside at once, else this times out
        with self.lock:
            self.active -= 1
        return batch


def test_only_stages_that_allow_it_get_concurrent_calls():
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        yes, no = _Counting(True), _Counting(False)
        run_stage(yes, shard_batch(0, 64), pool)
        run_stage(no, shard_batch(0, 64), pool)
    assert yes.max_active >= 2
    assert no.max_active == 1


def test_a_failing_shard_stops_the_run_with_its_error(tmp_path):
    cfg = parse_config({"source": {"kind": "bundled", "photos": ["chelsea"], "crop": {"mode": "tiles", "size": 64}},
                        "output": {"samples_per_shard": 2}})

    calls = {"n": 0}

    def boom(rec):
        calls["n"] += 1
        raise OSError("disk full (test)")

    from pairforge.pipeline.plan import ShardSpec  # noqa: F401  (the executor's unit of work)
    from pairforge.pipeline.runner import make_plan

    plan = make_plan(cfg, str(tmp_path / "o"), limit=8)
    with pytest.raises(OSError, match="disk full"):
        LocalExecutor(workers=2).run(plan, plan.shards(), boom)
    assert calls["n"] == 1


def _cli(*args):
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-m", "pairforge.cli", *map(str, args)], capture_output=True, text=True)


def test_degrade_workers_option_changes_nothing_but_speed(tmp_path):
    import cv2
    import skimage.data as d

    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("astronaut", "coffee", "chelsea"):
        cv2.imwrite(str(photos / f"{name}.png"), cv2.cvtColor(getattr(d, name)()[:96, :128], cv2.COLOR_RGB2BGR))
    for w in (1, 3):
        r = _cli("degrade", photos, tmp_path / f"w{w}", "--preset", "realesrgan", "--workers", w, "--samples-per-shard", 2, "-q")
        assert r.returncode == 0, r.stderr
    assert _tars(tmp_path / "w1") == _tars(tmp_path / "w3") and len(_tars(tmp_path / "w1")) == 2
    # plain PNGs used whole: the HQ files are the sources' own pixel streams (the path under test)
    import tarfile

    with tarfile.open(tmp_path / "w3" / "shards" / "shard-000000.tar") as tar:
        metas = [json.load(tar.extractfile(m)) for m in tar.getmembers() if m.name.endswith(".json")]
    assert metas and all(m["hq_png"] == "source" for m in metas)
