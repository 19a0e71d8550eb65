"""What people see of a dataset: provenance labels, preview sheets (aspect kept, captions, rows by type),
info breakdowns; and how a resume treats damaged shards (run_pipeline, local executor)."""
import json
import logging
import os

import numpy as np
import pytest

from pairforge.config import parse_config
from pairforge.io.dataset import DatasetReader, DatasetWriter
from pairforge.io.provenance import (
    Degradation,
    degradations,
    describe_degradation,
    source_label,
)
from pairforge.io.storage import LocalStorage
from pairforge.pipeline.runner import run_pipeline
from pairforge.preview import fit, item_from_sample, load_by_type, preview_sheet
from pairforge.report import dataset_info


def realworld(t, sev, *more, tail=False):
    types = [t] + [m[0] for m in more]
    ops = [{"op": t, "severity": sev}] + [{"op": m[0], "severity": m[1]} for m in more]
    if tail:
        ops.append({"op": "web_tail", "jpeg": 80})
    return {"chain": "realworld", "type": "+".join(types), "types": types, "ops": ops, "web_tail": tail,
            "scale": 1, "strength": {"psnr": 21.25}}


def test_degradation_labels():
    assert describe_degradation(realworld("haze", "heavy")).label == "haze heavy"
    d = describe_degradation(realworld("blur", "light", ("noise", "medium"), tail=True))
    assert d.label == "blur light + noise medium + web tail" and d.types == ["blur", "noise"] and d.psnr == 21.25
    assert describe_degradation({"chain": "realesrgan", "scale": 4, "ops": []}).label == "chain realesrgan x4"
    assert describe_degradation({"chain": "simple", "scale": 2}).label == "simple x2"
    assert describe_degradation({"component": 1, "params": {"chain": "bsrgan", "scale": 4}}).label == "chain bsrgan x4"
    assert describe_degradation({"odd": 1}).label == "unknown"
    assert degradations({"degradation": [realworld("rain", "light"), {"chain": "web", "scale": 1}]})[1] == \
        Degradation("chain", "web", (("web", None),), scale=1)
    assert degradations({}) == []


def test_source_labels():
    assert source_label({"source": {"kind": "bundled", "photo": "coffee"}}) == "bundled coffee"
    assert source_label({"source": {"kind": "files", "path": "/data/set1/a.jpg"}}) == "files /data/set1"
    assert source_label({"source": {"kind": "synthesis", "model": "tiny-flux", "quality": "negative"}}) == "synthesis tiny-flux (negative)"
    assert source_label({}) == "unknown"


def test_fit_keeps_the_aspect_ratio():
    img = np.zeros((30, 90, 3), np.uint8)
    assert fit(img, 180).size == (180, 60)  # upscaled 2x, not squashed
    assert fit(np.zeros((400, 100, 3), np.uint8), 100).size == (25, 100)


def write_samples(root, metas, hq_shape=(40, 80), variants=0, layout="webdataset"):
    st = LocalStorage(root)
    from pairforge.batch import new_batch

    n = len(metas)
    b = new_batch(list(range(n)))
    rng = np.random.default_rng(0)
    b["lq"] = []
    for r, deg in enumerate(metas):
        hq = rng.integers(0, 256, (*hq_shape, 3), dtype=np.uint8)
        b["hq"][r] = hq
        b["lq"].append([hq[::2, ::2].copy() for _ in range(variants)] if variants else hq[::2, ::2].copy())
        b["meta"][r] = {"degradation": deg, "source": {"kind": "bundled", "photo": "coffee"}}
    DatasetWriter(st, layout=layout).write_batch(0, 0, n, b)
    return st


def test_preview_captions_each_lq_and_keeps_aspect(tmp_path):
    st = write_samples(tmp_path, [[realworld("haze", "heavy"), realworld("rain", "light")]], variants=2)
    sample = DatasetReader(st).find("0000000000")
    item = item_from_sample(sample)
    assert [t.lines[0] for t in item.tiles[1:]] == ["haze heavy, 21.2 dB", "rain light, 21.2 dB"]
    assert item.tiles[0].lines == ["0000000000", "bundled coffee", "HQ 80x40"]
    assert item.tiles[2].lines[1] == "LQ 40x20  variant 1"
    sheet = preview_sheet(DatasetReader(st), n=4, cell=100)
    px = np.asarray(sheet)
    # a 80x40 HQ in a 100 px cell is drawn 100x50: rows above and below it stay the box colour
    assert tuple(px[8 + 10, 8 + 50]) == (44, 44, 44) and tuple(px[8 + 90, 8 + 50]) == (44, 44, 44)
    assert sheet.width == 8 + 3 * 100 + 2 * 4 + 8


def test_preview_by_type_draws_one_row_per_type(tmp_path):
    metas = [realworld("haze", "heavy"), realworld("rain", "light"), realworld("haze", "light"),
             realworld("blur", "medium", ("noise", "light")), {"chain": "realesrgan", "scale": 2}]
    st = write_samples(tmp_path, metas, layout="folder")
    rows = load_by_type(DatasetReader(st), per_type=4)
    titles = [t.split()[0] for t, _ in rows]
    assert titles == ["blur", "haze", "noise", "rain", "realesrgan"]
    by = dict(zip(titles, (items for _t, items in rows)))
    assert [it.key for it in by["haze"]] == ["0000000000", "0000000002"]
    assert by["noise"][0].tiles[1].lines[0].startswith("blur medium + noise light")
    assert rows[1][0] == "haze  (2 LQs in the dataset)"
    # a type's row shows LQs of that type alone before stacked ones
    metas = [realworld("blur", "light", ("noise", "medium"))] * 3 + [realworld("noise", "heavy")]
    rows = dict(load_by_type(DatasetReader(write_samples(tmp_path / "s", metas)), per_type=2))
    noise = next(v for k, v in rows.items() if k.startswith("noise"))
    assert noise[0].key == "0000000003" and noise[1].tiles[1].lines[0].startswith("blur light + noise medium")
    assert preview_sheet(DatasetReader(st), by="type", cell=64).height > 5 * 64


def test_info_breakdown_by_type_severity_and_source(tmp_path):
    metas = [realworld("haze", "heavy"), realworld("haze", "heavy"), realworld("blur", "light", ("noise", "medium")),
             [realworld("rain", "light"), {"chain": "realesrgan", "scale": 2}]]
    st = write_samples(tmp_path, metas[:3])
    info = dataset_info(st)
    assert info["degradations"] == {"haze": 2, "blur+noise": 1}
    assert info["degradation_severity"] == {"blur": {"light": 1}, "haze": {"heavy": 2}, "noise": {"medium": 1}}
    assert info["sources"] == {"bundled coffee": 3} and info["lq_variants"] == {"1": 3}
    st2 = write_samples(tmp_path / "v", [metas[3]], variants=2)
    info = dataset_info(st2)
    assert info["degradations"] == {"rain": 1, "realesrgan": 1} and info["lq_variants"] == {"2": 1}
    assert info["degradation_severity"]["realesrgan"] == {"-": 1}


def test_info_never_decodes_images(tmp_path, monkeypatch):
    st = write_samples(tmp_path, [realworld("haze", "heavy")] * 3)
    import cv2

    def boom(*a, **k):
        raise AssertionError("info decoded an image")

    monkeypatch.setattr(cv2, "imdecode", boom)
    assert dataset_info(st)["degradations"] == {"haze": 3}


# -- resume with damaged shards ----------------------------------------------------------------------

CFG = {"run": {"seed": 5}, "source": {"kind": "bundled", "photos": ["chelsea"], "crop": {"mode": "tiles", "size": 64}},
       "degrade": {"kind": "simple", "scale": 2}, "output": {"samples_per_shard": 3}}


def run(out, **kw):
    return run_pipeline(parse_config({**CFG, **kw}), str(out), executor="local", limit=9)


@pytest.mark.parametrize("fmt", ["webdataset", "folder"])
def test_resume_redoes_a_shard_whose_data_changed(fmt, tmp_path, caplog):
    out = tmp_path / "o"
    run(out, output={"samples_per_shard": 3, "format": fmt})
    rec = json.loads((out / "shards/shard-000001.json").read_text())
    victim = out / (rec["tar"] or rec["files"][1])
    clean = victim.read_bytes()
    st0 = victim.stat()
    bad = bytearray(clean)
    bad[100:164] = bytes(b ^ 0x5A for b in bad[100:164])
    victim.write_bytes(bytes(bad))
    later = (out / "shards/shard-000001.json").stat().st_mtime + 2
    os.utime(victim, (later, later))
    with caplog.at_level(logging.WARNING):
        s = run(out, output={"samples_per_shard": 3, "format": fmt})
    assert (s.shards_skipped, s.shards_written) == (2, 1)
    assert "shards/shard-000001.json" in caplog.text and "changed after it was committed" in caplog.text
    assert victim.read_bytes() == clean
    # a change that kept size and mtime is found only by the full check
    victim.write_bytes(bytes(bad))
    os.utime(victim, ns=(st0.st_atime_ns, st0.st_mtime_ns))
    assert run(out, output={"samples_per_shard": 3, "format": fmt}).shards_written == 0
    s = run_pipeline(parse_config({**CFG, "output": {"samples_per_shard": 3, "format": fmt}}), str(out),
                     executor="local", limit=9, verify=True)
    assert s.shards_written == 1 and victim.read_bytes() == clean


@pytest.mark.parametrize("content", ["[]", "{not json", "null"])
def test_resume_and_info_survive_a_malformed_record(content, tmp_path, caplog):
    out = tmp_path / "o"
    run(out)
    (out / "shards/shard-000002.json").write_text(content)
    info = dataset_info(LocalStorage(out))
    assert info["committed_shards"] == 2 and not info["complete"]
    assert info["problems"] and info["problems"][0].startswith("shards/shard-000002.json: ")
    with caplog.at_level(logging.WARNING):
        s = run(out)
    assert s.shards_written == 1 and "shards/shard-000002.json" in caplog.text
    assert json.loads((out / "shards/shard-000002.json").read_text())["shard"] == 2
