"""IQA with real pyiqa: PIQE gives real scores (no weights needed); MUSIQ and TOPIQ run with random
weights, which only tests the plumbing (several metrics, directions, batching), not their judgement."""
import json
import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from conftest import photo

from pairforge.batch import new_batch
from pairforge.config import ConfigError, parse_config
from pairforge.filters.config import IQAFilterConfig
from pairforge.filters.iqa import IQAScorer, percentile_threshold
from pairforge.stage import RunContext
from pairforge.stages.filters import IQAStage

NAMES = ["astronaut", "coffee", "rocket", "chelsea", "camera", "brick", "grass", "gravel"]


def crops(start: int, n: int, size: int = 64) -> list[np.ndarray]:
    """Deterministic 64 px crops of bundled photos with per-sample noise: a spread of PIQE scores."""
    out = []
    for i in range(start, start + n):
        rng = np.random.default_rng(1000 + i)
        im = photo(NAMES[i % len(NAMES)], None)
        y, x = rng.integers(0, im.shape[0] - size), rng.integers(0, im.shape[1] - size)
        c = im[y : y + size, x : x + size].astype(np.float32)
        out.append(np.clip(c + rng.normal(0, rng.uniform(0, 25), c.shape), 0, 255).astype(np.uint8))
    return out


def batch_of(start: int, n: int):
    b = new_batch(list(range(start, start + n)))
    b["hq"] = crops(start, n)
    return b


def test_piqe_real_scores_rank_sharp_photos_above_their_blurred_copies():
    s = IQAScorer(IQAFilterConfig(metrics=[{"name": "piqe"}]).metrics)
    assert s.score([photo("coffee", 64)])  # loads lazily
    assert s.info["piqe"].lower_better
    for name in ("astronaut", "coffee", "rocket"):
        a = photo(name, 128)
        sharp, blurred = s.score([a, cv2.GaussianBlur(a, (0, 0), 2)])["piqe"]
        assert 0 <= sharp + 20 < blurred <= 100, name


def test_absolute_threshold_rejects_with_metric_rule_and_score():
    b = new_batch([0, 1])
    b["hq"] = [photo("coffee", 128), cv2.GaussianBlur(photo("astronaut", 128), (0, 0), 2)]
    st = IQAStage(IQAFilterConfig(metrics=[{"name": "piqe", "threshold": 50}]), RunContext())
    assert not st.needs_calibration
    out = st(b)
    rec = out["meta"][0]["filters"]["iqa"]["piqe"]
    assert rec["lower_better"] is True and rec["rule"] == "threshold" and rec["passed"] is True
    assert out["reject"][0] is None
    r = out["reject"][1]
    assert (r["stage"], r["rule"]) == ("iqa", "piqe") and r["value"] > 50


def test_several_metrics_at_once_plumbing_with_random_weights():
    cfg = IQAFilterConfig(
        metrics=[
            {"name": "piqe"},
            {"name": "musiq", "options": {"pretrained": False}},
            {"name": "topiq_nr", "options": {"pretrained": False, "backbone_pretrain": False}},
        ],
        score_batch_size=2,
    )
    b = new_batch([0, 1, 2, 3, 4])
    b["hq"] = [photo("coffee", 64), photo("rocket", 64), photo("camera", 96), photo("brick", 64), photo("grass", 96)]
    out = IQAStage(cfg, RunContext())(b)
    for m in out["meta"]:
        rec = m["filters"]["iqa"]
        assert set(rec) == {"piqe", "musiq", "topiq_nr"}
        assert rec["piqe"]["lower_better"] is True
        assert rec["musiq"]["lower_better"] is False and rec["topiq_nr"]["lower_better"] is False
        assert all(np.isfinite(v["score"]) for v in rec.values())
        assert all("threshold" not in v for v in rec.values())  # no rule: scores are only recorded
    assert out["reject"] == [None] * 5


def test_percentile_threshold_direction():
    s = np.arange(100, dtype=float)
    assert percentile_threshold(s, 0.9, lower_better=False) == pytest.approx(9.9)
    assert percentile_threshold(s, 0.9, lower_better=True) == pytest.approx(89.1)
    assert percentile_threshold([np.nan, 1.0, 2.0], 1.0, lower_better=False) == 1.0


def test_keep_top_calibrates_persists_and_survives_resume(tmp_path):
    run = tmp_path / "run"
    cfg = IQAFilterConfig(metrics=[{"name": "piqe", "keep_top": 0.8}], calibration_samples=100)
    calls = []

    def upstream(n):
        calls.append(n)
        b = batch_of(0, n)
        b["reject"][5] = {"stage": "sanity", "rule": "flat", "reason": "x", "value": 0}  # not calibrated on
        b["hq"][5] = None
        return b

    st = IQAStage(cfg, RunContext(run_url=str(run)))
    assert st.needs_calibration
    st.prepare(upstream)
    assert calls == [100]
    path = run / "filters" / "iqa.thresholds.json"
    doc = json.loads(path.read_text())
    t = doc["metrics"]["piqe"]["threshold"]
    assert doc["metrics"]["piqe"]["samples"] == 99 and doc["metrics"]["piqe"]["lower_better"] is True
    assert abs(doc["metrics"]["piqe"]["calibration_keep_rate"] - 0.8) <= 1 / 99

    # a worker gets the pickled stage (no scorer travels) and reads the persisted file in setup()
    worker = pickle.loads(pickle.dumps(st))
    assert worker.scorer is None
    out = worker(batch_of(100, 120))
    kept = sum(r is None for r in out["reject"])
    assert 0.65 <= kept / 120 <= 0.95  # held-out samples of the same distribution
    rec = out["meta"][0]["filters"]["iqa"]["piqe"]
    assert rec["rule"] == "keep_top" and rec["threshold"] == t and rec["keep_top"] == 0.8
    rejected = [r for r in out["reject"] if r is not None]
    assert all(r["rule"] == "piqe" and r["value"] > t for r in rejected)

    # resume: a fresh stage loads the file and never asks upstream again; the file is not rewritten
    before = path.read_bytes()
    again = IQAStage(cfg, RunContext(run_url=str(run)))
    again.prepare(lambda n: pytest.fail("thresholds must be reused on resume, not recomputed"))
    assert again.thresholds == {"piqe": t} and path.read_bytes() == before

    # a changed rule does not silently reuse thresholds computed for another one
    changed = IQAStage(cfg.model_copy(update={"metrics": [cfg.metrics[0].model_copy(update={"keep_top": 0.5})]}), RunContext(run_url=str(run)))
    with pytest.raises(RuntimeError, match="different IQA rules"):
        changed.prepare(upstream)


def test_worker_without_calibration_refuses_to_guess(tmp_path):
    st = IQAStage(IQAFilterConfig(metrics=[{"name": "piqe", "keep_top": 0.9}]), RunContext(run_url=str(tmp_path / "r")))
    with pytest.raises(RuntimeError, match="prepare"):
        st(batch_of(0, 2))


def test_fluxgen_preset_and_config_snippet():
    import pyiqa

    preset = IQAFilterConfig(preset="fluxgen")
    assert [(m.name, m.keep_top) for m in preset.metrics] == [
        ("clipiqa+_vitL14_512", 0.95),
        ("maniqa-pipal", 0.95),
        ("musiq", 0.95),
    ]
    known = set(pyiqa.list_models())
    assert all(m.name in known for m in preset.metrics)
    snippet = Path(__file__).resolve().parents[2] / "configs" / "filters" / "fluxgen.yaml"
    cfg = parse_config({"filters": yaml.safe_load(snippet.read_text())})
    assert cfg.filters[0].metrics == preset.metrics and cfg.filters[0].name == "fluxgen_iqa"
    # the dumped config (run.json) validates again: preset and its own expansion agree
    assert IQAFilterConfig.model_validate(preset.model_dump()).metrics == preset.metrics
    with pytest.raises(ConfigError, match="preset"):
        parse_config({"filters": [{"kind": "iqa", "preset": "fluxgen", "metrics": [{"name": "piqe"}]}]})
    with pytest.raises(ConfigError, match="not both"):
        parse_config({"filters": [{"kind": "iqa", "metrics": [{"name": "piqe", "threshold": 1, "keep_top": 0.9}]}]})
