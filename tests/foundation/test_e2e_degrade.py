"""`pairforge degrade`: the offline use case, photos in, pairs out, no Ray."""
import json
import subprocess
import sys

import numpy as np
import pytest

pytestmark = pytest.mark.slow


def test_degrade_folder_to_shards_records_rejections(messy_photos, tmp_path):
    folder, expected = messy_photos
    out = tmp_path / "pairs"
    r = subprocess.run(
        [sys.executable, "-m", "pairforge.cli", "degrade", str(folder), str(out), "--preset", "realesrgan-x2"],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "pairs/s" in r.stdout
    index = json.loads((out / "index.json").read_text())
    undecodable = sum(v == "source/undecodable" for v in expected.values())
    assert index["rejected"] == {"source/undecodable": undecodable, "sanity/too_small": 1}
    assert index["total_samples"] == len(expected) - undecodable - 1
    rec = json.loads((out / "shards/shard-000000.json").read_text())
    reasons = {x["rule"]: x["reason"] for x in rec["rejected"]}
    assert "truncated" in reasons["undecodable"] or "not an image" in reasons["undecodable"]


def test_degrade_to_folder_with_crops(tmp_path):
    from tests.conftest import photo, png_bytes

    src = tmp_path / "in"
    src.mkdir()
    for name in ("astronaut", "coffee"):
        (src / f"{name}.png").write_bytes(png_bytes(photo(name, 200)))
    out = tmp_path / "out"
    r = subprocess.run(
        [sys.executable, "-m", "pairforge.cli", "degrade", str(src), str(out), "--preset", "web", "--crop", "96",
         "--tiles-per-image", "3", "--format", "folder", "-q"],
        capture_output=True, text=True, timeout=300,
    )
    assert r.returncode == 0, r.stderr
    hq = sorted((out / "hq").iterdir())
    assert len(hq) == 6
    meta = json.loads((out / "meta" / "0000000004.json").read_text())
    assert meta["source"]["tile"] == 1 and meta["source"]["crop"][2:] == [96, 96]


def test_a_plain_source_png_is_stored_as_the_hq_only_when_its_pixels_are_the_hq(tmp_path):
    """An 8-bit RGB PNG used whole: its own pixel stream becomes ``hq.png`` (recorded as ``hq_png``), and
    decodes to the source's pixels; a cropped HQ, or a palette PNG (converted), is encoded."""
    from PIL import Image

    from pairforge.io.images import decode_png
    from tests.conftest import photo, png_bytes

    src = tmp_path / "in"
    src.mkdir()
    (src / "a.png").write_bytes(png_bytes(photo("astronaut", 128)))
    Image.fromarray(photo("coffee", 128)).convert("P").save(src / "b.png")
    for extra, expect in (([], {"a.png": "source", "b.png": None}), (["--crop", "96"], {"a.png": None, "b.png": None})):
        out = tmp_path / f"out{len(extra)}"
        r = subprocess.run([sys.executable, "-m", "pairforge.cli", "degrade", str(src), str(out), "--preset", "web",
                            "--format", "folder", "-q", *extra], capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        for key in ("0000000000", "0000000001"):
            meta = json.loads((out / "meta" / f"{key}.json").read_text())
            name = meta["source"]["path"].rsplit("/", 1)[-1]
            assert meta.get("hq_png") == expect[name], (extra, name)
            hq = decode_png((out / "hq" / f"{key}.png").read_bytes())
            whole = np.asarray(Image.open(src / name).convert("RGB"))
            if extra:
                y, x, h, w = meta["source"]["crop"]
                whole = whole[y : y + h, x : x + w]
            assert np.array_equal(hq, whole)


def test_unknown_preset_is_a_clear_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pairforge.cli", "degrade", str(tmp_path), str(tmp_path / "o"), "--preset", "nope"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "unknown degradation preset 'nope'" in r.stderr and "realesrgan" in r.stderr


def test_gallery_command_writes_one_sheet_per_type(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pairforge.cli", "gallery", str(tmp_path / "g"), "--types", "haze,noise",
                        "--photos", "coffee,chelsea", "--tile", "64"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    from PIL import Image

    for t in ("haze", "noise"):
        im = Image.open(tmp_path / "g" / f"{t}.png")
        assert im.size[0] >= 4 * 64 and im.size[1] >= 2 * 64


def test_ray_address_without_ray_is_a_clear_error(tmp_path):
    r = subprocess.run([sys.executable, "-m", "pairforge.cli", "degrade", str(tmp_path), str(tmp_path / "o"),
                        "--ray-address", "auto"], capture_output=True, text=True)
    assert r.returncode == 2 and "--ray-address needs --ray" in r.stderr
