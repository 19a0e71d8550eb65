"""The synthesis stages end to end on a tiny local Flux: columns, provenance, determinism, negatives."""
from __future__ import annotations

import json

import numpy as np
import pytest

from pairforge.batch import Rejection, new_batch, reject
from pairforge.config import parse_config
from pairforge.stage import RunContext
from pairforge.stages.synthesis import SynthesisStage, synthesis_stages


def source(tiny_flux_dir, **gen):
    return {
        "kind": "synthesis",
        "prompts": {"kind": "template"},
        "model": {"family": "flux", "id": tiny_flux_dir},
        "generation": {"steps": 2, "sizes": [[32, 32], [32, 48]], "size_weights": [1, 1], "true_cfg_scale": 2.0,
                       "negative_prompt": "blurry, low quality", "quality_suffix": "highly detailed",
                       "max_sequence_length": 32, **gen},
        "resources": {"num_gpus": 0, "batch_size": 4},
    }


def run(stages, indices):
    b = new_batch(indices)
    for s in stages:
        b = s(b)
    return b


@pytest.fixture(scope="module")
def driver_run(tiny_flux_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    cfg = parse_config({"run": {"seed": 4, "num_samples": 6}, "source": source(tiny_flux_dir)})
    ctx = RunContext(seed=4, run_url=str(out))
    stages = synthesis_stages(cfg, ctx)
    for s in stages:
        if s.needs_calibration:
            s.prepare(None)
    return cfg, out, stages, run(stages, list(range(6)))


def test_columns_and_provenance(driver_run, tiny_flux_dir):
    cfg, out, stages, b = driver_run
    assert [s.name for s in stages] == ["prompts", "synthesis"]
    assert stages[1].resources.batch_size == 4
    sizes = set()
    for i in range(6):
        assert b["reject"][i] is None
        hq = b["hq"][i]
        assert hq.dtype == np.uint8 and hq.ndim == 3 and hq.shape[2] == 3
        sizes.add(hq.shape[:2])
        syn = b["meta"][i]["synthesis"]
        assert syn["prompt"] == b["prompt"][i] + ", highly detailed"
        assert syn["negative_prompt"] == b["negative_prompt"][i] == "blurry, low quality"
        assert syn["size"] == list(hq.shape[:2]) and syn["steps"] == 2 and syn["true_cfg_scale"] == 2.0
        assert syn["seed"] == RunContext(seed=4).seed_for(i, "synthesis")
        src = b["meta"][i]["source"]
        assert src["prompt"] == b["prompt"][i] and src["quality"] == "positive" and src["model"] == tiny_flux_dir
        json.dumps(b["meta"][i])  # metadata is JSON as is
    assert sizes == {(32, 32), (32, 48)}  # both buckets drawn
    assert (out / "prompts" / "bank.json").exists()


def test_other_worker_batch_of_one_makes_identical_samples(driver_run, tiny_flux_dir):
    cfg, out, _, b = driver_run
    # a fresh worker: new stage objects, the bank read from the run dir, different batch composition
    worker = synthesis_stages(cfg, RunContext(seed=4, run_url=str(out)))
    for i in (5, 2):
        w = run(worker, [i])
        assert w["prompt"][0] == b["prompt"][i]
        assert np.array_equal(w["hq"][0], b["hq"][i])


def test_rejected_rows_are_left_alone(tiny_flux_dir):
    cfg = parse_config({"run": {"num_samples": 3}, "source": source(tiny_flux_dir, sizes=[[32, 32]], size_weights=None)})
    stages = synthesis_stages(cfg, RunContext(seed=0))
    stages[0].prepare(None)
    b = new_batch([0, 1, 2])
    reject(b, 1, Rejection("upstream", "test", "rejected before synthesis"))
    for s in stages:
        b = s(b)
    assert b["reject"][1]["stage"] == "upstream" and b["hq"][1] is None and "synthesis" not in b["meta"][1]
    assert b["hq"][0] is not None and b["hq"][2] is not None


def test_negatives_mode_is_labelled(tiny_flux_dir):
    src = source(tiny_flux_dir, mode="negatives", sizes=[[32, 32]], size_weights=None)
    src["prompts"] = {"kind": "empty"}
    src["generation"]["negative_prompt"] = "oil painting, cartoon, blur, dirty, messy, low quality"
    cfg = parse_config({"source": src})
    stages = synthesis_stages(cfg.source, RunContext(seed=0))
    b = run(stages, [0])
    syn = b["meta"][0]["synthesis"]
    assert syn["mode"] == "negatives" and b["meta"][0]["source"]["quality"] == "negative"
    assert syn["prompt"] == "oil painting, cartoon, blur, dirty, messy, low quality"
    assert syn["negative_prompt"] == "highly detailed"
    assert b["hq"][0] is not None


def test_config_errors_are_explicit(tiny_flux_dir):
    from pairforge.config import ConfigError

    bad = source(tiny_flux_dir)
    bad["generation"]["sizes"] = [[30, 32]]
    with pytest.raises(ConfigError, match="multiples of 16"):
        parse_config({"source": bad})
    bad = source(tiny_flux_dir, prompt_template="A {pos} image. {prompt}")
    with pytest.raises(ConfigError, match="positive_embedding"):
        parse_config({"source": bad})
    bad = source(tiny_flux_dir)
    bad["model"]["family"] = "sdxl"
    with pytest.raises(ConfigError, match="true_cfg_scale"):
        parse_config({"source": bad})
    bad = source(tiny_flux_dir)
    bad["prompts"] = {"kind": "llm", "llm": {"provider": "openai", "model": "m", "api_key": "sk-123"}}
    with pytest.raises(ConfigError, match="api_key"):
        parse_config({"source": bad})


def test_stage_without_setup_is_cheap_to_construct(tiny_flux_dir):
    cfg = parse_config({"source": source(tiny_flux_dir)})
    st = SynthesisStage(cfg.source, RunContext())
    assert st.backend is None and st.resources.num_gpus == 0
