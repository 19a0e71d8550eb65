"""`pairforge evaluate`: a tiny trained checkpoint on tiny datasets (by type, severity, source; JSON; grid),
BasicSR / Real-ESRGAN layout state dicts, HQ/LQ folders, LQ-only inputs with no-reference scores, and the
metric definitions themselves."""
from __future__ import annotations

import json
import tarfile

import cv2
import numpy as np
import pytest
import torch
from train_shardkit import RRDB_TINY_X2, make_config, png, write_dataset
from typer.testing import CliRunner

from pairforge.cli import app
from pairforge.evaluate.metrics import crop_border, full_reference, psnr, rgb_to_y
from pairforge.evaluate.models import load_model
from pairforge.evaluate.run import evaluate
from pairforge.train.config import NAFNetConfig, RRDBNetConfig, TrainConfig
from pairforge.train.loop import run_training
from pairforge.train.nets import build_generator
from pairforge.train.restore import restore_array
from pairforge.train.statedicts import StateDictError, convert_state_dict

runner = CliRunner()


@pytest.fixture(scope="module")
def typed_data(tmp_path_factory):
    """x2 pairs whose metadata names a degradation type (blur or noise) and a bundled photo."""
    return write_dataset(tmp_path_factory.mktemp("typed") / "ds", 12, size=48, scale=2, noise=8, per_shard=6,
                         seed=5, types={"blur": 1.0, "noise": 1.0})


@pytest.fixture(scope="module")
def tiny_checkpoint(typed_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("evck") / "run"
    cfg = make_config(out, typed_data, {**RRDB_TINY_X2, "residual": "none"},
                      data={"patch_size": 32, "batch_size": 4}, train={"max_steps": 3})
    run_training(TrainConfig.model_validate(cfg))
    return out


# ---------------------------------------------------------------------------------------------- metrics
def test_y_channel_and_border_crop_follow_the_sr_convention():
    white = np.full((4, 4, 3), 255, np.uint8)
    black = np.zeros((4, 4, 3), np.uint8)
    assert rgb_to_y(white)[0, 0] == pytest.approx(235.0) and rgb_to_y(black)[0, 0] == pytest.approx(16.0)
    img = np.arange(10 * 10 * 3, dtype=np.uint8).reshape(10, 10, 3)
    assert crop_border(img, 2).shape == (6, 6, 3) and crop_border(img, 0) is img
    rng = np.random.default_rng(0)
    hq = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    out = hq.copy()
    out[:2] = 0  # damage only the border: a border crop of 2 hides it
    m = full_reference(out, hq, border=2)
    assert m["psnr"] == float("inf") and m["ssim"] == pytest.approx(1.0) and m["ssim_y"] == pytest.approx(1.0)
    assert full_reference(out, hq, border=0)["psnr"] < 30
    # SSIM is Wang et al.'s Gaussian-window SSIM (BasicSR's calculate_ssim): scikit-image's reference agrees
    from skimage.metrics import structural_similarity

    noisy = np.clip(hq.astype(int) + rng.integers(-40, 40, hq.shape), 0, 255).astype(np.uint8)
    kw = {"data_range": 255.0, "gaussian_weights": True, "sigma": 1.5, "use_sample_covariance": False}
    got = full_reference(noisy, hq)
    assert got["ssim"] == pytest.approx(structural_similarity(noisy.astype(float), hq.astype(float),
                                                              channel_axis=2, **kw), abs=1e-9)
    assert got["ssim_y"] == pytest.approx(structural_similarity(rgb_to_y(noisy), rgb_to_y(hq), **kw), abs=1e-9)


# ------------------------------------------------------------------------------ trainer checkpoint
def test_evaluate_cli_on_a_dataset_by_type_with_json_and_grid(typed_data, tiny_checkpoint, tmp_path):
    js, grid = tmp_path / "eval.json", tmp_path / "grid.png"
    res = runner.invoke(app, ["evaluate", str(typed_data), "-c", str(tiny_checkpoint), "--json", str(js),
                              "--grid", str(grid), "--by", "type", "--tile", "0"])
    assert res.exit_code == 0, res.output
    assert "blur" in res.output and "noise" in res.output and "all" in res.output
    doc = json.loads(js.read_text())
    assert doc["overall"]["n"] == 12 and set(doc["by"]["type"]) == {"blur", "noise"}
    assert sum(g["n"] for g in doc["by"]["type"].values()) == 12
    assert set(doc["by"]["source"]) <= {f"bundled {p}" for p in
                                        ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry",
                                         "hubble_deep_field")}
    assert doc["model"]["kind"] == "pairforge" and doc["model"]["step"] == 3
    # the baseline of one sample, recomputed here: bicubic x2 of the LQ, border crop 2, PSNR on Y
    s = doc["samples"][0]
    shard = min((typed_data / "shards").glob("*.tar"))
    with tarfile.open(shard) as tar:
        hq = cv2.cvtColor(cv2.imdecode(np.frombuffer(tar.extractfile(f"{s['key']}.hq.png").read(), np.uint8), 1),
                          cv2.COLOR_BGR2RGB)
        lq = cv2.cvtColor(cv2.imdecode(np.frombuffer(tar.extractfile(f"{s['key']}.lq.png").read(), np.uint8), 1),
                          cv2.COLOR_BGR2RGB)
    base = cv2.resize(lq, (48, 48), interpolation=cv2.INTER_CUBIC)
    assert s["border"] == 2
    assert s["base_psnr_y"] == pytest.approx(psnr(rgb_to_y(base)[2:-2, 2:-2], rgb_to_y(hq)[2:-2, 2:-2]))
    img = cv2.imread(str(grid))
    assert img is not None and img.shape[0] > 2 * 160  # a row per type


def test_held_out_evaluates_only_the_sources_the_split_kept_back(typed_data, tiny_checkpoint, tmp_path):
    out = tmp_path / "run"
    cfg = make_config(out, typed_data, {**RRDB_TINY_X2, "residual": "none"},
                      data={"patch_size": 32, "batch_size": 4}, train={"max_steps": 2},
                      split={"by": "source", "held_out": ["coffee", "rocket"]})
    cfg["val"] = {"url": str(typed_data), "every": 1000, "max_samples": 4}
    run_training(TrainConfig.model_validate(cfg))
    r, info = load_model(out)
    assert info["split"]["held_out"] == ["coffee", "rocket"]
    assert info["heldout"]["val_groups"] and set(info["heldout"]["val_groups"]) <= {"bundled:coffee", "bundled:rocket"}
    from pairforge.evaluate.heldout import held_out_selector

    res = evaluate(r, info, [str(typed_data)], select=held_out_selector(info, str(out)), lpips="off")
    assert res.rows and {row["source"] for row in res.rows} <= {"bundled coffee", "bundled rocket"}
    assert res.skipped["not_selected"] == 12 - len(res.rows)
    # without a split in the checkpoint, --held-out is a clear error
    plain = runner.invoke(app, ["evaluate", str(typed_data), "-c", str(tiny_checkpoint), "--held-out"])
    assert plain.exit_code == 2 and "records no split" in plain.output


def test_scale_mismatch_is_a_counted_skip_and_folders_of_pairs_work(tiny_checkpoint, tmp_path):
    root = tmp_path / "pairs"
    (root / "hq").mkdir(parents=True)
    (root / "lq").mkdir()
    rng = np.random.default_rng(1)
    for i in range(3):
        hq = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        (root / "hq" / f"p{i}.png").write_bytes(png(hq))
        lq = cv2.resize(hq, (16, 16), interpolation=cv2.INTER_AREA) if i < 2 else hq  # the last: same size
        (root / "lq" / f"p{i}.png").write_bytes(png(lq))
    r, info = load_model(tiny_checkpoint)
    res = evaluate(r, info, [str(root)], lpips="off", tile=None)
    assert [row["key"] for row in res.rows] == ["p0", "p1"]
    assert res.skipped == {"scale_mismatch_x1_data_x2_model": 1}
    (root / "hq" / "p0.png").unlink()
    bad = runner.invoke(app, ["evaluate", str(root), "-c", str(tiny_checkpoint)])
    assert bad.exit_code == 2 and "without an HQ" in bad.output and "Traceback" not in bad.output


# --------------------------------------------------------------------------------- LQ-only inputs
def test_lq_only_inputs_get_no_reference_scores_before_and_after(tiny_checkpoint, tmp_path):
    photos = tmp_path / "real"
    photos.mkdir()
    rng = np.random.default_rng(2)
    for i in range(2):
        base = cv2.resize(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8), (64, 64), interpolation=cv2.INTER_CUBIC)
        (photos / f"real{i}.png").write_bytes(png(base))
    js = tmp_path / "nr.json"
    res = runner.invoke(app, ["evaluate", str(photos), "-c", str(tiny_checkpoint), "--nr", "piqe", "--json", str(js)])
    assert res.exit_code == 0, res.output
    doc = json.loads(js.read_text())
    assert doc["no_reference"]["metrics"] == ["piqe"] and doc["no_reference"]["lower_is_better"] == {"piqe": True}
    s = doc["samples"][0]
    assert "psnr" not in s and s["nr_piqe"] is not None and s["base_nr_piqe"] is not None
    assert doc["by"]["type"]["unrecorded"]["n"] == 2
    assert "PIQE" in res.output
    # a metric whose weights are not on this machine, asked for by name: one clear line, no download
    missing = runner.invoke(app, ["evaluate", str(photos), "-c", str(tiny_checkpoint), "--nr", "no-such-metric"])
    assert missing.exit_code == 2 and "no-such-metric" in missing.output and "Traceback" not in missing.output


# ------------------------------------------------------------------------------ public state dicts
def _to_basicsr_rrdb(sd: dict) -> dict:
    """Our RRDBNet names -> BasicSR's (body.N.rdbK.convJ), written independently of the module under test."""
    out = {}
    for k, v in sd.items():
        parts = k.split(".")
        if k.startswith("body.") and parts[2] == "blocks":
            k = f"body.{parts[1]}.rdb{int(parts[3]) + 1}.conv{int(parts[5]) + 1}.{parts[6]}"
        out[k] = v
    return out


def _to_basicsr_naf(sd: dict) -> dict:
    names = {"expand": "conv1", "depthwise": "conv2", "project": "conv3", "ffn_in": "conv4", "ffn_out": "conv5"}
    out = {}
    for k, v in sd.items():
        parts = k.split(".")
        if parts[0] == "middle":
            parts[0] = "middle_blks"
        for i, p in enumerate(parts):
            if p in names:
                parts[i] = names[p]
        out[".".join(parts)] = v
    return out


def test_realesrgan_layout_rrdbnet_loads_and_evaluates_like_the_module(typed_data, tmp_path):
    torch.manual_seed(0)
    cfg = RRDBNetConfig(scale=2, num_feat=8, num_block=2, num_grow_ch=4)
    net = build_generator(cfg).eval()
    for p in net.parameters():  # non-zero everywhere, so a misplaced tensor shows
        p.data.normal_(0, 0.05)
    ema = {f"module.{k}": v for k, v in _to_basicsr_rrdb(net.state_dict()).items()}
    other = {k: torch.zeros_like(v) for k, v in ema.items()}
    path = tmp_path / "RealESRGAN_x2_tiny.pth"
    torch.save({"params": other, "params_ema": ema}, path)  # Real-ESRGAN's inference prefers params_ema
    r, info = load_model(path)
    assert info["kind"] == "state_dict" and info["model"]["num_block"] == 2 and r.scale == 2
    assert info["model"]["num_grow_ch"] == 4 and info["model"]["num_feat"] == 8
    x = np.random.default_rng(0).integers(0, 256, (20, 24, 3), dtype=np.uint8)
    want = build_generator(cfg)
    want.load_state_dict(net.state_dict())
    from pairforge.train.restore import Restorer

    ref = restore_array(Restorer(want.eval(), 2, torch.device("cpu"), 0, path), x, None)
    assert np.array_equal(restore_array(r, x, None), ref)
    res = runner.invoke(app, ["evaluate", str(typed_data), "-c", str(path), "--limit", "3"])
    assert res.exit_code == 0, res.output


def test_basicsr_nafnet_layout_and_bad_files(tmp_path):
    torch.manual_seed(1)
    cfg = NAFNetConfig(width=8, enc_blocks=[1, 2], middle_blocks=1, dec_blocks=[1, 1], dw_expand=2, ffn_expand=2)
    net = build_generator(cfg).eval()
    got_cfg, sd = convert_state_dict({"params": _to_basicsr_naf(net.state_dict())})
    assert got_cfg == cfg
    assert set(sd) == set(net.state_dict())
    with pytest.raises(StateDictError, match="neither an RRDBNet"):
        convert_state_dict({"params": {"foo.weight": torch.zeros(1)}})
    with pytest.raises(StateDictError, match="no tensors"):
        convert_state_dict({"meta": {"x": 1}})
    bad = tmp_path / "bad.pth"
    torch.save({"params": {"foo.weight": torch.zeros(1)}}, bad)
    res = runner.invoke(app, ["evaluate", str(tmp_path), "-c", str(bad)])
    assert res.exit_code == 2 and "neither an RRDBNet" in res.output


def test_a_folder_layout_dataset_on_s3(tiny_checkpoint, s3_bucket):
    from pairforge.io.dataset import DatasetWriter
    from pairforge.io.storage import open_storage

    url = f"s3://{s3_bucket}/ds"
    writer = DatasetWriter(open_storage(url), layout="folder")
    rng = np.random.default_rng(3)
    with writer.open_shard(0, 0, 3) as shard:
        for i in range(3):
            hq = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
            lq = cv2.resize(hq, (16, 16), interpolation=cv2.INTER_AREA)
            meta = {"source": {"kind": "files", "path": f"/p/{i}.png"},
                    "degradation": {"chain": "realesrgan", "scale": 2}}
            shard.write({"__key__": f"{i:010d}", "hq.png": png(hq), "lq.png": png(lq), "json": json.dumps(meta).encode()})
        shard.commit()
    r, info = load_model(tiny_checkpoint)
    res = evaluate(r, info, [url], lpips="off", tile=None)
    assert [row["key"] for row in res.rows] == [f"{i:010d}" for i in range(3)]
    assert {tuple(row["types"]) for row in res.rows} == {("realesrgan",)} and res.rows[0]["border"] == 2
