"""The stage protocol: declared columns, open/close from both executors, per-shard statistics in the
commit record, and one-line model-loading errors at setup."""
from __future__ import annotations

import json
import pickle

import numpy as np
import pytest

from pairforge.batch import BASE_COLUMNS, new_batch
from pairforge.config import parse_config
from pairforge.io.dataset import stage_totals
from pairforge.pipeline.executors import LocalExecutor, SegmentWorker
from pairforge.pipeline.runner import make_plan
from pairforge.pipeline.shardwork import run_stages
from pairforge.stage import Placement, RunContext, Stage

CFG = {
    "run": {"seed": 3},
    "source": {"kind": "bundled", "photos": ["astronaut", "coffee"], "crop": {"mode": "tiles", "size": 64, "stride": 200}},
    "filters": [{"kind": "sanity", "min_size": 32}, {"kind": "privacy", "action": "blur"}, {"kind": "dedup"}],
    "degrade": {"kind": "realworld", "weights": {"reflection": 1.0, "noise": 1.0}},
    "output": {"samples_per_shard": 4},
}


def _changed(before: dict, after: dict) -> set[str]:
    out = set()
    for col, vals in after.items():
        old = before.get(col)
        if old is None or len(old) != len(vals):
            out.add(col)
            continue
        for a, b in zip(old, vals):
            same = np.array_equal(a, b) if isinstance(a, np.ndarray) or isinstance(b, np.ndarray) else a == b
            if not same:
                out.add(col)
                break
    return out


def _snapshot(batch: dict) -> dict:
    return {k: [v.copy() if isinstance(v, np.ndarray) else json.loads(json.dumps(v)) if isinstance(v, dict) else v for v in vals]
            for k, vals in batch.items()}


def test_every_stage_reads_and_writes_only_its_declared_columns(tmp_path):
    plan = make_plan(parse_config(CFG), str(tmp_path / "run"), limit=6)
    batch = {c: v for c, v in new_batch(list(range(6))).items() if c in BASE_COLUMNS}
    for st in plan.stages:
        assert st.reads and st.writes, st.name
        # the stage runs on the base columns and its declared inputs alone ...
        assert set(st.reads) <= set(batch), f"{st.name} reads columns no earlier stage wrote: {set(st.reads) - set(batch)}"
        only = {c: list(batch[c]) for c in (*BASE_COLUMNS, *st.reads)}
        before = _snapshot(only)
        out = st(only)
        # ... and changes nothing it does not declare
        assert _changed(before, out) <= set(st.writes), (st.name, _changed(before, out))
        for c in out:
            batch[c] = out[c]
        st.close()
    assert all(m.get("degradation") for m, r in zip(batch["meta"], batch["reject"]) if r is None)


class _Recorder(Stage):
    name = "recorder"
    reads = ("index",)
    writes = ("meta",)
    events: list = []

    def setup(self):
        self.events.append(("open", self.placement.executor, self.placement.num_gpus))

    def teardown(self):
        self.events.append(("close",))

    def process(self, batch):
        self.count("rows", len(batch["index"]))
        self.count("calls")
        return batch


def test_local_executor_opens_and_closes_every_stage_and_records_stage_stats(tmp_path):
    _Recorder.events = []
    plan = make_plan(parse_config({**CFG, "filters": [], "degrade": {"kind": "simple"}}), str(tmp_path / "run"), limit=6)
    plan.stages.append(_Recorder(None, plan.context))
    records = []
    LocalExecutor().run(plan, plan.shards(), records.append)
    assert _Recorder.events == [("open", "local", 0.0), ("close",)]
    assert [r["stage_stats"]["recorder"] for r in records] == [{"rows": 4, "calls": 1}, {"rows": 2, "calls": 1}]
    on_disk = json.loads((tmp_path / "run" / "shards" / "shard-000001.json").read_text())
    assert on_disk["stage_stats"] == {"recorder": {"rows": 2, "calls": 1}}
    assert stage_totals(records, "recorder") == {"stage": "recorder", "shards": 2, "rows": 6, "calls": 2}


def test_ray_segment_worker_opens_with_its_resources_carries_stats_and_closes(tmp_path):
    _Recorder.events = []
    plan = make_plan(parse_config({**CFG, "filters": [], "degrade": {"kind": "simple"}}), str(tmp_path / "run"), limit=4)
    first = pickle.dumps({"stages": [_Recorder(None, plan.context)], "with_writer": False, "first": True,
                          "num_cpus": 1.0, "num_gpus": 0.5, "run_url": plan.context.run_url, "output": plan.config.output})
    worker = SegmentWorker(first)
    rows = {"shard": np.array([0]), "start": np.array([0]), "end": np.array([4]), "payload": np.array([b""], dtype=object)}
    out = worker(rows)
    batch, timings, stats = pickle.loads(out["payload"][0])
    assert stats == {"recorder": {"rows": 4, "calls": 1}} and "recorder" in timings
    del worker  # Ray Data drops the UDF when the actor shuts down
    assert _Recorder.events == [("open", "ray", 0.5), ("close",)]


def test_stats_taken_during_calibration_do_not_leak_into_a_shard():
    st = _Recorder(None, RunContext())
    run_stages([st], new_batch([0, 1]))  # e.g. the driver's calibration pass
    stats: dict = {}
    run_stages([st], new_batch([2]), stats=stats)
    assert stats == {"recorder": {"rows": 1, "calls": 1}}


def test_a_stage_pickles_without_its_worker_state():
    st = _Recorder(None, RunContext(seed=1))
    st.open(Placement("local"))
    st.device = "cuda"
    again = pickle.loads(pickle.dumps(st))
    assert again.placement is None and again.device is None and again.context == st.context


def test_a_depth_model_that_cannot_be_loaded_stops_the_run_with_one_line(tmp_path):
    from pairforge.errors import ModelLoadError
    from pairforge.pipeline.runner import run_pipeline

    cfg = parse_config({**CFG, "filters": [], "degrade": {"kind": "realworld", "depth": {"model": str(tmp_path / "nope")}}})
    with pytest.raises(ModelLoadError) as e:
        run_pipeline(cfg, str(tmp_path / "run"), limit=4, executor="local")
    msg = str(e.value)
    assert "\n" not in msg and "nope" in msg and "pairforge models pull" in msg
    assert not list((tmp_path / "run").glob("shards/*.json"))  # nothing was committed


def test_a_missing_classifier_file_stops_the_run_with_one_line(tmp_path):
    from pairforge.errors import ModelLoadError
    from pairforge.pipeline.runner import run_pipeline

    cfg = parse_config({**CFG, "filters": [{"kind": "classifier", "model": str(tmp_path / "none.json")}], "degrade": {"kind": "simple"}})
    with pytest.raises(ModelLoadError, match="classifier model .*none.json.*pairforge train-classifier"):
        run_pipeline(cfg, str(tmp_path / "run"), limit=4, executor="local")


@pytest.mark.slow
def test_cli_run_with_a_missing_depth_model_exits_with_one_line_from_the_ray_worker(tmp_path):
    """The model fails to load inside a Ray worker; the driver shows the worker's own error, one line."""
    import subprocess
    import sys

    import yaml

    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(yaml.safe_dump({**CFG, "filters": [], "ray": {"num_cpus": 2}}))
    import os

    env = dict(os.environ, COLUMNS="1000")  # no console wrapping: the error is one line
    r = subprocess.run([sys.executable, "-m", "pairforge.cli", "run", str(cfg), "--out", str(tmp_path / "out"), "--limit", "4",
                        "--set", "degrade.depth.model=/nope"], capture_output=True, text=True, timeout=600, env=env)
    assert r.returncode != 0
    errors = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "'/nope'" in errors[0] and "pairforge models pull" in errors[0], (r.stdout + r.stderr)[-3000:]


def test_partner_images_are_given_at_setup_not_through_the_context():
    """The reflection layer is another sample of the run: the degrader gets the loader once, at setup,
    and the per-sample aux is a typed SampleAux; the result equals a library call with a dict aux."""
    from pairforge.degradations.base import Partners, SampleAux, build_degrader
    from pairforge.degradations.realworld import RealWorldDegradeConfig
    from pairforge.sources.bundled import load_bundled_photo

    photos = [np.ascontiguousarray(load_bundled_photo(n)[:96, :96]) for n in ("coffee", "astronaut", "chelsea")]
    cfg = RealWorldDegradeConfig.model_validate({"weights": {"reflection": 1.0}, "stack": {"probability": 0.0},
                                                 "web_tail": {"probability": 0.0}})
    loads = []

    def load(i):
        loads.append(i)
        return photos[i]

    d = build_degrader(cfg)
    d.setup(None, Partners(load=load, num_samples=3))
    got = d.degrade([photos[0]], [7], [SampleAux(0, "0000000000")])[0]
    lib = build_degrader(cfg).degrade([photos[0]], [7], [{"index": 0, "load_image": load, "num_samples": 3}])[0]
    assert loads and all(i != 0 for i in loads)
    assert np.array_equal(got.lq, lib.lq) and got.params == lib.params
    assert "load_image" not in RunContext.__dataclass_fields__


def test_the_source_is_built_once_per_process(tmp_path, monkeypatch):
    """Planning counts the source's samples, the source stage loads from it and the degrader's partner
    images come from it: one object in this process, not one per user."""
    from pairforge.pipeline.runner import run_pipeline
    from pairforge.sources import bundled

    built = []
    original = bundled.BundledSource.__init__

    def counting(self, config):
        built.append(config)
        original(self, config)

    monkeypatch.setattr(bundled.BundledSource, "__init__", counting)
    cfg = parse_config({**CFG, "filters": [], "degrade": {"kind": "realworld", "weights": {"reflection": 1.0}}})
    run_pipeline(cfg, str(tmp_path / "run"), limit=4, executor="local")
    assert len(built) == 1


def test_a_mix_gives_its_components_the_partner_images():
    from pairforge.degradations.base import Partners, SampleAux, build_degrader
    from pairforge.degradations.mix import MixDegradeConfig
    from pairforge.sources.bundled import load_bundled_photo

    photos = [np.ascontiguousarray(load_bundled_photo(n)[:96, :96]) for n in ("coffee", "astronaut")]
    cfg = MixDegradeConfig.model_validate({"scale": 1, "components": [{"name": "rw", "weight": 1, "degrade": {
        "kind": "realworld", "weights": {"reflection": 1.0}, "stack": {"probability": 0.0}, "web_tail": {"probability": 0.0}}}]})
    loads = []
    d = build_degrader(cfg)
    d.setup(None, Partners(load=lambda i: loads.append(i) or photos[i], num_samples=2))
    res = d.degrade([photos[0]], [3], [SampleAux(0, "0000000000")])[0]
    assert loads == [1] and res.params["mix"]["name"] == "rw"
