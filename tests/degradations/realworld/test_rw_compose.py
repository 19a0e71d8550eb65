"""``kind: realworld``: type choice, stacking, web tail, strength records, batch independence."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pairforge.config import parse_config
from pairforge.degradations.base import Degrader
from pairforge.degradations.realworld import (
    NAMES,
    ORDER,
    RealWorldDegradeConfig,
    RealWorldDegrader,
)
from pairforge.seeding import sample_seed


def aux_list(photos, n):
    return [{"index": i, "key": f"{i:010d}", "second_image": photos[(i + 1) % len(photos)]} for i in range(n)]


def test_pipeline_config_accepts_kind_realworld():
    cfg = parse_config({"degrade": {"kind": "realworld", "severity": "light",
                                    "stack": {"probability": 0.5, "presets": [["low_light", "noise", "compression"]]},
                                    "rain": {"angle": [80, 80]}}})
    assert isinstance(cfg.degrade, RealWorldDegradeConfig)
    d = cfg.degrade.build()
    assert isinstance(d, Degrader) and d.types["rain"].config.severity == "light"
    from pairforge.config import ConfigError

    with pytest.raises(ConfigError, match="stack.presets"):
        parse_config({"degrade": {"kind": "realworld", "stack": {"presets": [["fog"]]}}})
    with pytest.raises(ConfigError, match="weights"):
        parse_config({"degrade": {"kind": "realworld", "weights": {"blur": 0.0}}})


def test_default_choice_is_one_type_roughly_equal_over_nine_with_a_stacked_share():
    d = RealWorldDegrader()
    counts, sizes = Counter(), Counter()
    for s in range(900):
        names = d.choose(np.random.default_rng(s))
        sizes[len(names)] += 1
        counts.update(names)
    assert set(counts) == set(NAMES) and set(sizes) == {1, 2}
    assert 0.22 < sizes[2] / 900 < 0.38, sizes  # 30% of the samples carry a second type
    assert min(counts.values()) > 80 and max(counts.values()) < 180, counts
    single = RealWorldDegrader(RealWorldDegradeConfig(stack={"probability": 0.0}))
    assert all(len(single.choose(np.random.default_rng(s))) == 1 for s in range(100))


def test_weights_and_stacking_in_physical_order():
    d = RealWorldDegrader(RealWorldDegradeConfig(weights={"haze": 1.0, "noise": 3.0}, stack={"probability": 0.0}))
    c = Counter(d.choose(np.random.default_rng(s))[0] for s in range(400))
    assert set(c) == {"haze", "noise"} and c["noise"] > 2 * c["haze"]
    d = RealWorldDegrader(RealWorldDegradeConfig(stack={"probability": 1.0, "count": [2, 4]}))
    for s in range(50):
        names = d.choose(np.random.default_rng(s))
        assert 2 <= len(names) <= 4 and len(set(names)) == len(names)
        assert names == sorted(names, key=ORDER.index)
    d = RealWorldDegrader(RealWorldDegradeConfig(
        stack={"probability": 1.0, "presets": [["compression", "noise", "low_light"]]}))
    assert d.choose(np.random.default_rng(0)) == ["low_light", "noise", "compression"]


def test_stacked_sample_records_every_op_and_strength(photos):
    cfg = RealWorldDegradeConfig(stack={"probability": 1.0, "presets": [["low_light", "noise", "compression"]]},
                                 web_tail={"probability": 1.0})
    res = cfg.build().degrade(photos[:1], [123], aux_list(photos, 1))[0]
    p = res.params
    json.dumps(p, allow_nan=False)
    assert res.lq.shape == photos[0].shape and res.lq.dtype == np.uint8
    assert p["chain"] == "realworld" and p["type"] == "low_light+noise+compression" and p["stacked"]
    assert [o["op"] for o in p["ops"]] == ["low_light", "noise", "compression", "web_tail"]
    for o in p["ops"][:3]:
        assert o["severity"] in ("light", "medium", "heavy") and "psnr" in o["stat"]
    assert set(p["strength"]["stats"]) == {"low_light", "noise", "compression"}
    assert 0 < p["strength"]["psnr"] < 40 and -1 <= p["strength"]["ssim"] < 0.95
    assert "blockiness" in p["strength"]["stats"]["compression"]


def test_batching_never_changes_a_sample(photos):
    cfg = RealWorldDegradeConfig(stack={"probability": 0.4}, web_tail={"probability": 0.4})
    d1, d2 = cfg.build(), cfg.build()
    seeds = [sample_seed(0, i, "degrade") for i in range(6)]
    imgs = [photos[i % 3] for i in range(6)]
    batch = d1.degrade(imgs, seeds, aux_list(photos, 6))
    for i in range(6):
        one = d2.degrade([imgs[i]], [seeds[i]], [aux_list(photos, 6)[i]])[0]
        assert np.array_equal(one.lq, batch[i].lq) and one.params == batch[i].params


def test_depth_and_segment_sources_are_recorded(photos):
    d = RealWorldDegrader(RealWorldDegradeConfig(weights={"haze": 1.0}))
    p = d.degrade(photos[:1], [1], [{}])[0].params
    assert p["depth_source"] == "scene:neutral" and "segments_source" not in p  # a close-up: no layout cue
    assert p["scene"]["depth_form"] == "neutral" and p["ops"][0]["depth_form"] == "neutral"
    depth = np.full(photos[0].shape[:2], 0.7, np.float32)
    p = d.degrade(photos[:1], [1], [{"depth": depth, "depth_source": "lidar"}])[0].params
    assert p["depth_source"] == "lidar"
    d = RealWorldDegrader(RealWorldDegradeConfig(weights={"noise": 1.0}, noise={"region_probability": 1.0},
                                                 segments={"method": "slic", "segments": 8}))
    p = d.degrade(photos[:1], [1], [{}])[0].params
    assert p["segments_source"] == "classical:slic" and p["segments_count"] == 8


def test_reflection_in_the_pipeline_uses_the_run_loader(photos):
    d = RealWorldDegrader(RealWorldDegradeConfig(weights={"reflection": 1.0}))
    loads = []

    def load(i):
        loads.append(i)
        return photos[i % 3]

    res = d.degrade([photos[0]], [5], [{"index": 9, "key": "0000000009", "load_image": load}])[0]
    op = res.params["ops"][0]
    assert op["second_source"] == "run_sample" and op["partner_index"] in loads and op["partner_index"] < 9
    assert len(loads) == 1  # loaded once, reused by apply and statistic


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**40), h=st.integers(24, 80), w=st.integers(24, 80),
       stack=st.floats(0, 1), tail=st.floats(0, 1))
def test_composition_any_seed_any_size(photos, seed, h, w, stack, tail):
    import cv2

    cfg = RealWorldDegradeConfig(stack={"probability": stack}, web_tail={"probability": tail})
    hq = cv2.resize(photos[seed % 3], (w, h), interpolation=cv2.INTER_AREA)
    aux = [{"index": 0, "second_image": photos[(seed + 1) % 3]}]
    r1 = cfg.build().degrade([hq], [seed], aux)[0]
    r2 = cfg.build().degrade([hq], [seed], aux)[0]
    assert r1.lq.shape == hq.shape and r1.lq.dtype == np.uint8
    assert np.array_equal(r1.lq, r2.lq) and r1.params == r2.params
    json.dumps(r1.params, allow_nan=False)
    assert r1.params["strength"]["psnr"] > 0
