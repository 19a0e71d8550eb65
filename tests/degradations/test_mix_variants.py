"""Mixed degradation models (``kind: mix``) and LQ variants (``variants: K``), issue 13.5."""
from __future__ import annotations

import json

import numpy as np
import pytest
from chain_data import photo_crops
from pydantic import ValidationError

from pairforge.config import parse_config
from pairforge.degradations.base import build_degrader
from pairforge.degradations.mix import MixDegradeConfig

CHAIN = {"kind": "chain", "preset": "realesrgan", "device": "cpu"}
REAL = {"kind": "realworld", "measure_ssim": False}


def _mix(**over) -> MixDegradeConfig:
    data = {"kind": "mix", "scale": 4, "components": [
        {"name": "chain", "weight": 1, "degrade": CHAIN},
        {"name": "realworld", "weight": 1, "degrade": REAL}]}
    data.update(over)
    return MixDegradeConfig.model_validate(data)


def test_mix_draws_a_component_per_sample_and_records_it():
    d = build_degrader(_mix())
    photos = photo_crops(16, (101, 130), seed=2)
    res = d.degrade(photos, list(range(16)))
    names = [r.params["mix"]["name"] for r in res]
    assert {"chain", "realworld"} == set(names)
    for r in res:
        assert r.lq.shape == (25, 32, 3) and r.params["scale"] == 4
        assert r.hq.shape == (100, 128, 3)  # cropped to a multiple of the scale, for every component
        m = r.params["mix"]
        assert m["weight"] == 0.5 and m["component"] == ["chain", "realworld"].index(m["name"])
        if m["name"] == "realworld":
            assert r.params["chain"] == "realworld" and r.params["types"]
            assert m["downscale"] == {"mode": "area", "at": "before", "from": [100, 128], "to": [25, 32]}
            assert r.params["input_size"] == [25, 32]
        else:
            assert r.params["chain"] == "realesrgan" and "downscale" not in m


def test_mix_is_deterministic_per_sample_whatever_the_batch():
    d = build_degrader(_mix())
    photos = photo_crops(6, 96, seed=4)
    whole = d.degrade(photos, list(range(6)))
    alone = [build_degrader(_mix()).degrade([p], [s])[0] for p, s in zip(photos[::-1], range(5, -1, -1))][::-1]
    for a, b in zip(whole, alone):
        assert np.array_equal(a.lq, b.lq) and a.params["mix"] == b.params["mix"]


def test_a_mix_of_one_component_is_that_component():
    photos = photo_crops(3, 96, seed=5)
    mixed = build_degrader(MixDegradeConfig.model_validate(
        {"kind": "mix", "components": [{"weight": 2, "degrade": CHAIN}]})).degrade(photos, [7, 8, 9])
    plain = build_degrader(parse_config({"degrade": CHAIN}).degrade).degrade(photos, [7, 8, 9])
    for a, b in zip(mixed, plain):
        assert np.array_equal(a.lq, b.lq)
        assert {k: v for k, v in a.params.items() if k != "mix"} == b.params


def test_weights_set_the_proportions():
    d = build_degrader(_mix(components=[{"name": "a", "weight": 3, "degrade": CHAIN},
                                        {"name": "b", "weight": 1, "degrade": {**CHAIN, "preset": "web", "scale": 4}}]))
    picks = [d.choose(s) for s in range(4000)]
    assert 0.72 < picks.count(0) / 4000 < 0.78


@pytest.mark.parametrize("bad, match", [
    ({"components": [{"weight": 1, "degrade": CHAIN}, {"weight": 1, "degrade": REAL}], "scale": None},
     "different scales"),
    ({"components": [{"weight": 1, "degrade": {"kind": "mix", "components": []}}]}, "cannot itself be a mix"),
    ({"components": [{"weight": 0, "degrade": CHAIN}]}, "greater than 0"),
    ({"components": [{"weight": 1, "degrade": {**CHAIN, "variants": 2}}]}, "set variants on the mix"),
    ({"components": [{"weight": 1, "degrade": {**CHAIN, "crop": {"size": 64}}}], "variants": 2}, "crops random patches"),
    ({"components": [{"weight": 1, "degrade": {**CHAIN, "scale": 3}}], "scale": 4}, "does not divide"),
    ({"components": [{"weight": 1, "degrade": {"preset": "realesrgan"}}]}, "needs a kind"),
    ({"components": [{"weight": 1, "degrade": CHAIN}, {"weight": 1, "degrade": {**CHAIN, "preset": "bsrgan-plus"}}],
      "variants": 2}, "sharpened HQ"),
])
def test_bad_mixes_fail_with_a_clear_message(bad, match):
    data = {"kind": "mix", "scale": 4, **bad}
    if data["scale"] is None:
        data.pop("scale")
    with pytest.raises(ValidationError, match=match):
        MixDegradeConfig.model_validate(data)


def test_chain_variants_with_random_crops_are_refused():
    from pairforge.config import ConfigError

    with pytest.raises(ConfigError, match="variants: 2 with crop"):
        parse_config({"degrade": {**CHAIN, "crop": {"size": 64}, "variants": 2}})


def _run(tmp_path, degrade: dict, name: str, limit: int = 6):
    from pairforge.io.dataset import DatasetReader
    from pairforge.io.storage import LocalStorage
    from pairforge.pipeline.runner import run_pipeline

    cfg = parse_config({"run": {"seed": 1},
                        "source": {"kind": "bundled", "photos": ["chelsea", "coffee"], "crop": {"mode": "tiles", "size": 96, "stride": 96}},
                        "degrade": degrade, "output": {"samples_per_shard": 3}})
    out = tmp_path / name
    run_pipeline(cfg, str(out), executor="local", limit=limit)
    return list(DatasetReader(LocalStorage(out)).iter_samples())


def test_variants_write_k_independent_lqs_with_their_own_records(tmp_path):
    mix = {"kind": "mix", "scale": 4, "variants": 3, "components": [
        {"name": "chain", "weight": 1, "degrade": CHAIN}, {"name": "realworld", "weight": 1, "degrade": REAL}]}
    samples = _run(tmp_path, mix, "v")
    assert len(samples) == 6
    names = set()
    for s in samples:
        assert {"lq_0.png", "lq_1.png", "lq_2.png"} <= set(s) and "lq.png" not in s
        meta = json.loads(s["json"])
        assert meta["lq_variants"] == 3 and len(meta["degradation"]) == 3
        assert meta["lq_size"] == [[24, 24]] * 3 and meta["hq_size"] == [96, 96]
        assert len({s[f"lq_{k}.png"] for k in range(3)}) == 3  # independently degraded
        names |= {d["mix"]["name"] for d in meta["degradation"]}
    assert names == {"chain", "realworld"}
    # deterministic for a seed, and variant 0 is the LQ a single-variant run writes
    again = _run(tmp_path, mix, "v2")
    assert [s["lq_1.png"] for s in again] == [s["lq_1.png"] for s in samples]
    single = _run(tmp_path, {**mix, "variants": 1}, "v1")
    assert [s["lq.png"] for s in single] == [s["lq_0.png"] for s in samples]


def test_variants_of_a_chain(tmp_path):
    samples = _run(tmp_path, {**CHAIN, "variants": 2}, "c", limit=3)
    for s in samples:
        meta = json.loads(s["json"])
        assert [d["chain"] for d in meta["degradation"]] == ["realesrgan", "realesrgan"]
        assert s["lq_0.png"] != s["lq_1.png"]


def test_variants_that_change_the_hq_differently_are_rejected_not_written():
    """The stage's safety net behind the config checks: K results must share one HQ."""
    from pairforge.batch import Batch
    from pairforge.stage import RunContext
    from pairforge.stages.degrade import DegradeStage

    cfg = MixDegradeConfig.model_validate({"kind": "mix", "components": [
        {"weight": 1, "degrade": CHAIN}, {"weight": 1, "degrade": {**CHAIN, "preset": "bsrgan-plus"}}]})
    object.__setattr__(cfg, "variants", 4)  # bypass the config check on purpose
    photos = photo_crops(4, 64, seed=1)
    stage = DegradeStage(cfg, RunContext(seed=0))
    stage.setup()
    batch: Batch = {"index": list(range(4)), "key": [f"{i:010d}" for i in range(4)], "hq": photos,
                    "meta": [{} for _ in range(4)], "reject": [None] * 4}
    out = stage.process(batch)
    rules = [r and r["rule"] for r in out["reject"]]
    assert "variants_hq" in rules
    for r, lq in zip(out["reject"], out["lq"]):
        assert (r is None) == isinstance(lq, list)


def test_downscale_after_shrinks_the_components_lq():
    d = build_degrader(_mix(components=[{"name": "realworld", "weight": 1, "degrade": REAL}], downscale_at="after"))
    photos = photo_crops(4, (101, 130), seed=2)
    for p, r in zip(photos, d.degrade(photos, list(range(4)))):
        assert r.lq.shape == (25, 32, 3) and r.hq.shape == (100, 128, 3)
        assert r.params["mix"]["downscale"] == {"mode": "area", "at": "after", "from": [100, 128], "to": [25, 32]}
        assert "input_size" not in r.params
