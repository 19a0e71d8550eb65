"""The filters inside the real pipeline (local executor): calibration before any shard, thresholds that
survive a resume, near-duplicates within a shard, the whole-run dedup post-pass, and a second run that
de-duplicates against the first through its hash index."""
import json
import tarfile

import cv2
import numpy as np
import pytest
import typer
from conftest import photo
from typer.testing import CliRunner

from pairforge.config import parse_config
from pairforge.filters.dedup import build_run_index
from pairforge.filters.dedup_cli import dedup_index_command
from pairforge.pipeline.runner import run_pipeline


def write_png(path, img):
    cv2.imwrite(str(path), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("inputs")
    coffee, rocket = photo("coffee", 128), photo("rocket", 128)
    write_png(d / "a_astronaut.png", photo("astronaut", 160))  # a face: rejected by the privacy filter
    write_png(d / "b_coffee.png", coffee)
    write_png(d / "c_coffee_resized.png", cv2.resize(photo("coffee", 200), (112, 112), interpolation=cv2.INTER_AREA))
    write_png(d / "d_rocket.png", rocket)
    write_png(d / "e_chelsea.png", photo("chelsea", 128))
    write_png(d / "f_rocket_mirrored.png", np.ascontiguousarray(rocket[:, ::-1]))  # duplicate in another shard
    write_png(d / "g_camera.png", photo("camera", 128))
    write_png(d / "h_brick.png", photo("brick", 128))
    return d


def config(folder, dedup=None, iqa=True):
    filters = [
        {"kind": "sanity", "min_size": 32},
        {"kind": "dedup", **(dedup or {})},
        {"kind": "privacy"},
    ]
    if iqa:
        filters.append({"kind": "iqa", "metrics": [{"name": "piqe", "keep_top": 0.9}], "calibration_samples": 8})
    return parse_config(
        {
            "run": {"seed": 1},
            "source": {"kind": "files", "paths": [str(folder)]},
            "filters": filters,
            "degrade": {"kind": "simple", "scale": 2},
            "output": {"samples_per_shard": 4},
        }
    )


def outcomes(out):
    res = {}
    for rec_path in sorted((out / "shards").glob("shard-*.json")):
        rec = json.loads(rec_path.read_text())
        for k in rec["accepted"]:
            res[k] = "ok"
        for r in rec["rejected"]:
            res[r["key"]] = r
    return res


def sample_meta(out, shard):
    with tarfile.open(out / "shards" / f"shard-{shard:06d}.tar") as tar:
        return {m.name.split(".")[0]: json.loads(tar.extractfile(m).read()) for m in tar if m.name.endswith(".json")}


def test_filters_in_the_pipeline_calibrate_resume_and_deduplicate(folder, tmp_path):
    out = tmp_path / "run1"
    run_pipeline(config(folder), str(out), executor="local")
    thr = out / "filters" / "iqa.thresholds.json"
    doc = json.loads(thr.read_text())
    t = doc["metrics"]["piqe"]["threshold"]
    # calibrated on the samples that survived sanity, dedup and privacy among the first 8: the astronaut,
    # the resized coffee and the mirrored rocket are gone (the calibration batch holds all 8 samples, so
    # the dedup stage sees both rockets there, unlike in the run where they sit in different shards)
    assert doc["metrics"]["piqe"]["samples"] == 5
    assert thr.stat().st_mtime <= (out / "shards" / "shard-000000.tar").stat().st_mtime

    res = outcomes(out)
    assert len(res) == 8
    assert res["0000000000"]["stage"] == "privacy" and res["0000000000"]["rule"] == "faces"
    dup = res["0000000002"]
    assert (dup["stage"], dup["rule"]) == ("dedup", "near_duplicate") and dup["value"]["kept"] == "0000000001"
    iqa_rejected = [k for k, r in res.items() if r != "ok" and r["stage"] == "iqa"]
    assert len(iqa_rejected) >= 1 and all(res[k]["value"] > t for k in iqa_rejected)
    metas = {**sample_meta(out, 0), **sample_meta(out, 1)}
    for key, meta in metas.items():
        f = meta["filters"]
        assert f["iqa"]["piqe"]["score"] <= t and f["iqa"]["piqe"]["threshold"] == t
        assert f["privacy"]["faces"] == 0 and len(f["dedup"]["value"]) == 16 and "sanity" in f

    # resume after losing shard 1's commit record: the thresholds file is reused, not recomputed
    before, meta1 = thr.read_bytes(), sample_meta(out, 1)
    (out / "shards" / "shard-000001.json").unlink()
    summary = run_pipeline(config(folder), str(out), executor="local")
    assert summary.shards_written == 1 and thr.read_bytes() == before
    assert sample_meta(out, 1) == meta1

    # the post-pass finds the cross-shard duplicate (the mirrored rocket) that the in-pipeline dedup could not
    report = build_run_index(str(out))
    accepted = sorted(k for k, r in outcomes(out).items() if r == "ok")
    assert {"0000000003", "0000000005"} <= set(accepted)
    assert [(d["key"], d["duplicate_of"]) for d in report["duplicates"]] == [("0000000005", "0000000003")]
    assert report["kept"] + len(report["duplicates"]) == len(accepted)
    assert json.loads((out / "dedup" / "duplicates.json").read_text())["duplicates"] == report["duplicates"]
    app = typer.Typer()
    app.command("dedup-index")(dedup_index_command)
    app.command("noop")(lambda: None)
    res = CliRunner().invoke(app, ["dedup-index", str(out)])
    assert res.exit_code == 0 and "1 near-duplicate(s)" in res.output, res.output
    assert json.loads((out / "dedup" / "index.json").read_text())["hash"] == "phash"

    # a second run over the same photos, de-duplicated against the first run's index (without IQA: its
    # calibration would find almost nothing alive, and says so with an error)
    out2 = tmp_path / "run2"
    run_pipeline(config(folder, dedup={"reference": [str(out)]}, iqa=False), str(out2), executor="local")
    res2 = outcomes(out2)
    for key in accepted:
        r = res2[key]
        assert r != "ok" and r["rule"] == "near_duplicate" and r["value"]["scope"] == "reference"
        src, _, kept = r["value"]["kept"].partition("#")
        assert src == str(out) and kept in accepted
    assert (out2 / "filters" / "dedup.reference.json").exists()
