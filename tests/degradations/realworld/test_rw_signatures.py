"""Each type's physical signature is present and grows with severity, measured on real photos."""
from __future__ import annotations

import itertools

import numpy as np
import pytest

from pairforge.degradations.realworld import make_type
from pairforge.degradations.realworld import strength as S
from pairforge.degradations.realworld.blur import BlurConfig
from pairforge.degradations.realworld.compression import CompressionConfig
from pairforge.degradations.realworld.flare import FlareConfig
from pairforge.degradations.realworld.moire import MoireConfig
from pairforge.degradations.realworld.noise import NoiseConfig
from pairforge.degradations.realworld.rain import RainConfig
from pairforge.degradations.realworld.reflection import ReflectionConfig

LEVELS = ("light", "medium", "heavy")
SEEDS = (0, 1)


def degrade_all(name, config, photos, severity, aux_fn=None, seeds=SEEDS):
    """(hq, lq, params, aux) for every photo x seed at one severity."""
    t = make_type(name, config.model_copy(update={"severity": severity}))
    out = []
    for i, hq in enumerate(photos):
        for s in seeds:
            aux = aux_fn(i, hq) if aux_fn else {}
            lq, params = t(hq, np.random.default_rng(1000 * i + s), aux)
            out.append((hq, lq, params, aux))
    return t, out


def mean_stat(name, config, photos, key, aux_fn=None, seeds=SEEDS):
    """Mean of one statistic per severity level."""
    res = []
    for lv in LEVELS:
        t, runs = degrade_all(name, config, photos, lv, aux_fn, seeds)
        res.append(float(np.mean([t.statistic(h, lq, p, a)[key] for h, lq, p, a in runs])))
    return res


def increasing(xs):
    return all(a < b for a, b in itertools.pairwise(xs))


def decreasing(xs):
    return all(a > b for a, b in itertools.pairwise(xs))


def test_low_light_darkens_and_raises_shadow_noise(photos):
    from pairforge.degradations.realworld.lowlight import LowLightConfig

    lum = mean_stat("low_light", LowLightConfig(), photos, "luminance_ratio")
    assert lum[0] < 0.8 and decreasing(lum), lum
    # sensor noise relative to the signal in the shadows, against the same exposure without noise
    rel = []
    for lv in LEVELS:
        t, runs = degrade_all("low_light", LowLightConfig(), photos, lv)
        vals = []
        for hq, lq, p, _ in runs:
            clean = t.apply(hq, {**p, "shot": 0.0, "read": 0.0}).astype(np.float32)
            shadow = S.gray(hq) <= np.quantile(S.gray(hq), 0.3)
            vals.append(float(np.std((lq - clean)[shadow]) / max(clean[shadow].mean(), 1.0)))
        rel.append(float(np.mean(vals)))
    assert rel[0] > 0.02 and increasing(rel), rel
    # the exposure is solved for the target brightness: the LQ's mean luma lands on it, and a photo
    # already darker than the target is not darkened further
    for hq, lq, p, _ in runs:
        assert abs(float(S.gray(lq).mean()) - p["brightness"]) < 0.04 or p["exposure"] == 1.0, p
    dark = (photos[0] * 0.15).astype(np.uint8)
    lq, p = t(dark, np.random.default_rng(0), {})
    assert p["exposure"] == 1.0 and abs(float(S.gray(lq).mean()) - float(S.gray(dark).mean())) < 0.05


def test_haze_lowers_contrast_more_where_depth_is_larger(photos):
    from pairforge.degradations.realworld.haze import HazeConfig

    h, w = photos[0].shape[:2]
    ramp = np.repeat(np.linspace(1.0, 0.0, h, dtype=np.float32)[:, None], w, axis=1)  # top far
    aux_fn = lambda i, hq: {"depth": ramp}
    far = mean_stat("haze", HazeConfig(), photos, "contrast_ratio_far", aux_fn)
    near = mean_stat("haze", HazeConfig(), photos, "contrast_ratio_near", aux_fn)
    assert all(f < n - 0.1 for f, n in zip(far, near)), (far, near)
    assert decreasing(far) and all(f < 1 for f in far), far
    # the haze is the airlight colour: far rows converge towards it
    _t, runs = degrade_all("haze", HazeConfig(), photos, "heavy", aux_fn, seeds=(0,))
    for hq, lq, p, _ in runs:
        a = np.asarray(p["airlight"]) * 255
        assert np.abs(lq[: h // 8].reshape(-1, 3).mean(0) - a).max() < np.abs(hq[: h // 8].reshape(-1, 3).mean(0) - a).max()


@pytest.mark.parametrize("angle", [70.0, 95.0, 110.0])
def test_rain_adds_thin_bright_streaks_at_the_configured_angle(photos, angle):
    cfg = RainConfig(angle=(angle, angle), veil=(0.0, 0.0))
    t, runs = degrade_all("rain", cfg, photos, "medium", seeds=(0,))
    for hq, lq, p, aux in runs:
        st = t.statistic(hq, lq, p, aux)
        assert S.angle_difference(st["streak_angle"], angle) < 6.0, st
        assert st["coherence"] > 0.3, st
        brighter = S.gray(lq) - S.gray(hq)
        assert brighter.mean() > 0 and (brighter > 0.03).mean() < 0.5  # thin and bright, not a wash
    coverage = mean_stat("rain", RainConfig(), photos, "coverage")
    assert increasing(coverage), coverage


def test_moire_adds_narrow_band_spectral_peaks(photos, rng_noise_baseline=0.05):
    # a white-noise residual spreads its energy: the same measure gives ~0.03 there
    white = S.spectral_peak_fraction(np.random.default_rng(0).normal(size=(128, 128)))
    assert white < rng_noise_baseline
    for screen in (0.0, 1.0):
        cfg = MoireConfig(layers=(1, 1), screen_probability=screen)
        peak = mean_stat("moire", cfg, photos, "peak_fraction")
        assert min(peak) > 2 * white, (screen, peak)
        energy = mean_stat("moire", cfg, photos, "residual_rms")
        assert increasing(energy), (screen, energy)
    # the default (1-3 fused layers) too
    assert min(mean_stat("moire", MoireConfig(), photos, "peak_fraction")) > 3 * white


def test_compression_adds_8x8_blockiness(photos):
    cfg = CompressionConfig(codecs={"jpeg": 1.0})
    block = mean_stat("compression", cfg, photos, "blockiness")
    base = float(np.mean([S.blockiness(S.gray(p)) for p in photos]))
    assert block[0] > base and increasing(block), (base, block)
    # the grid is the codec's: the same measure on a grid shifted by 4 stays flat
    _t, runs = degrade_all("compression", cfg, photos, "heavy", seeds=(0,))
    for hq, lq, _, _ in runs:
        assert S.blockiness(S.gray(lq)) > S.blockiness(S.gray(lq)[4:, 4:]) + 0.1


def test_blur_removes_high_frequencies_along_the_motion(photos):
    cfg = BlurConfig(modes={"linear": 1.0})
    t, runs = degrade_all("blur", cfg, photos, "heavy")
    for hq, lq, p, _ in runs:
        st = t.statistic(hq, lq, p)
        assert st["along_ratio"] < 0.6 * st["across_ratio"], st
    for modes in ({"linear": 1.0}, {"shake": 1.0}, {"defocus": 1.0}, {"gaussian": 1.0}):
        hf = mean_stat("blur", BlurConfig(modes=modes), photos, "hf_ratio")
        assert hf[0] < 1.0 and decreasing(hf), (modes, hf)


def test_object_blur_stays_on_the_subject_with_a_soft_edge(photos):
    hq = photos[2]
    subject = np.zeros(hq.shape[:2], np.float32)
    subject[32:96, 32:96] = 1.0
    t = make_type("blur", BlurConfig(modes={"object": 1.0}, severity="heavy"))
    lq, p = t(hq, np.random.default_rng(3), {"subject": subject})
    assert p["object_form"] == "subject"
    diff = np.abs(lq.astype(int) - hq.astype(int)).sum(-1)
    reach = int(np.ceil(max(p["length"] * 128, 6.0))) + 6  # motion + feathered edge
    outside = np.ones_like(subject, bool)
    outside[32 - reach:96 + reach, 32 - reach:96 + reach] = False
    assert diff[outside].max() <= 3 and diff[40:88, 40:88].mean() > 5
    # the edge is soft: the change ramps up across the boundary instead of jumping
    ramp = [diff[40:88, c].mean() for c in range(22, 44, 3)]
    assert ramp[0] < ramp[-1] and max(np.diff(ramp)) < 0.8 * (ramp[-1] - ramp[0]) + 1, ramp
    # no subject (a flat frame has none): camera motion instead, recorded
    flat = np.full_like(hq, 120)
    flat[::8] = 200
    lq2, p2 = t(flat, np.random.default_rng(3), {})
    assert p2["object_form"] == "camera" and not np.array_equal(lq2, flat)


def test_depth_dependent_defocus_follows_depth(photos):
    hq = photos[1]
    ramp = np.repeat(np.linspace(1.0, 0.0, 128, dtype=np.float32)[:, None], 128, axis=1)
    t = make_type("blur", BlurConfig(modes={"defocus": 1.0}, depth_dependent_probability=1.0, severity="heavy"))
    params = t.sample(np.random.default_rng(0))
    params["focus_depth"] = 0.0  # focused on the nearest plane (bottom rows)
    lq = t.apply(hq, params, {"depth": ramp})
    top = S.laplacian_energy(S.gray(lq)[:40]) / S.laplacian_energy(S.gray(hq)[:40])
    bottom = S.laplacian_energy(S.gray(lq)[-40:]) / S.laplacian_energy(S.gray(hq)[-40:])
    assert top < 0.5 * bottom, (top, bottom)


def test_flare_adds_bright_saturated_radial_structure(photos):
    cfg = FlareConfig(inside_probability=1.0)
    sat = mean_stat("flare", cfg, photos, "saturated_gain")
    gain = mean_stat("flare", cfg, photos, "mean_gain")
    assert sat[-1] > 0.003 and increasing(gain), (sat, gain)
    t, runs = degrade_all("flare", cfg, photos, "heavy")
    for hq, lq, p, _ in runs:
        rings = [r for r in t.statistic(hq, lq, p)["radial_fill"][1:] if r is not None]
        assert len(rings) >= 2 and all(a > b for a, b in itertools.pairwise(rings)) and rings[-1] > 0, rings
        if p["anchor"] == "bright_source":
            x, y = p["position"][0] * 127, p["position"][1] * 127
            core = lq[round(y) - 1:round(y) + 2, round(x) - 1:round(x) + 2]
            assert core.min() >= 250  # the source saturates the sensor
        else:
            assert not (0 <= p["position"][0] <= 1 and 0 <= p["position"][1] <= 1)


def test_reflection_correlates_output_with_second_image(photos):
    def aux_fn(i, hq):
        return {"second_image": photos[(i + 1) % len(photos)]}

    corr = mean_stat("reflection", ReflectionConfig(), photos, "second_correlation_lq", aux_fn)
    t, runs = degrade_all("reflection", ReflectionConfig(), photos, "light", aux_fn)
    base = float(np.mean([t.statistic(h, lq, p, a)["second_correlation_hq"] for h, lq, p, a in runs]))
    assert corr[0] > base + 0.05 and increasing(corr), (base, corr)
    for h, lq, p, a in runs:
        assert t.statistic(h, lq, p, a)["second_correlation"] > 0.2


def sensor_fit(photos, photons, read):
    cfg = NoiseConfig(components={"poisson_gaussian": 1.0}, count=(1, 1), correlation=(0.0, 0.0),
                      region_probability=0.0, photons=(photons, photons), read=(read, read))
    t, runs = degrade_all("noise", cfg, photos, "medium")
    stats = [t.statistic(h, lq, p) for h, lq, p, _ in runs]
    return (float(np.median([s["linear_var_slope"] for s in stats])),
            float(np.median([s["linear_var_offset"] for s in stats])))


def test_noise_raises_high_frequencies_with_configured_signal_dependence(photos):
    hf = mean_stat("noise", NoiseConfig(region_probability=0.0), photos, "hf_ratio")
    assert hf[0] > 1.0 and increasing(hf), hf
    # Poisson-Gaussian sensor noise: var = x / photons + read^2 in linear light, recovered by a fit
    a100, _ = sensor_fit(photos, 100.0, 0.002)
    a400, _ = sensor_fit(photos, 400.0, 0.002)
    assert 0.7 / 100 < a100 < 1.3 / 100, a100
    assert 2.5 < a100 / a400 < 5.5, (a100, a400)
    # read-noise dominated: flat in the signal, offset = read^2
    a_read, b_read = sensor_fit(photos, 1e6, 0.02)
    assert abs(a_read) < 0.1 * b_read / 0.4 and 0.5 * 0.02**2 < b_read < 1.5 * 0.02**2, (a_read, b_read)


def test_region_wise_noise_varies_by_segment(photos):
    hq = photos[0]
    labels = np.zeros(hq.shape[:2], np.int32)
    labels[:, 64:] = 1
    cfg = NoiseConfig(components={"gaussian": 1.0}, count=(1, 1), region_probability=1.0,
                      region_gain=(0.1, 2.0), severity="medium")
    t = make_type("noise", cfg)
    ratios = []
    for s in range(6):
        lq, _p = t(hq, np.random.default_rng(s), {"segments": labels})
        r = lq.astype(float) - hq.astype(float)
        a, b = r[:, 8:56].std(), r[:, 72:120].std()
        ratios.append(max(a, b) / min(a, b))
    assert max(ratios) > 2.0, ratios
