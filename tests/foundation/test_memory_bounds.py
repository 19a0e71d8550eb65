"""Bounded memory per image (issue 12, item 10): a pixel limit per stage with a clear <stage>/too_large
rejection, limits checked from the header before decoding, and reduced-size decoding where a resize
follows (``source.max_side``)."""
from __future__ import annotations

import json

import numpy as np
from PIL import Image

from pairforge.config import parse_config
from pairforge.io.images import ImageRejected, decode_image
from pairforge.io.storage import LocalStorage
from pairforge.pipeline import ledger
from pairforge.pipeline.plan import build_stages
from pairforge.pipeline.runner import run_pipeline
from pairforge.pipeline.shardwork import stage_max_pixels
from pairforge.stage import RunContext
from tests.conftest import jpeg_bytes, photo, png_bytes


def big_jpeg(w=2400, h=1600) -> bytes:
    return jpeg_bytes(np.asarray(Image.fromarray(photo("astronaut", None)).resize((w, h))), quality=85)


def test_max_side_decodes_a_large_jpeg_at_reduced_size_and_records_it():
    img, info = decode_image(big_jpeg(), "big.jpg", max_side=500)
    assert img.shape == (333, 500, 3)
    assert info["decoded_size"] == [1600, 2400]
    steps = info["converted"].split("; ")
    assert steps == ["decoded at reduced size 2400x1600->600x400 (JPEG draft)", "downscaled 600x400->500x333 (max_side=500)"]


def test_max_pixels_applies_to_the_reduced_size_and_names_the_way_out():
    # 3.84 MP in the header, under 1 MP once drafted to 1/4
    try:
        decode_image(big_jpeg(), "big.jpg", max_pixels=1_000_000)
        raise AssertionError("not rejected")
    except ImageRejected as e:
        assert e.rule == "too_large" and "max_pixels=1000000" in e.reason and "source.max_side" in e.reason
    img, _ = decode_image(big_jpeg(), "big.jpg", max_pixels=1_000_000, max_side=600)
    assert max(img.shape[:2]) == 600


def test_png_has_no_draft_but_is_downscaled_and_recorded():
    img, info = decode_image(png_bytes(photo("coffee", 300)), "c.png", max_side=100)
    assert img.shape == (100, 100, 3) and info["converted"] == "downscaled 300x300->100x100 (max_side=100)"


def test_a_header_over_pillows_own_bomb_limit_is_too_large_not_undecodable():
    """A PNG claiming 20000x20000 (400 MP, over Pillow's hard limit): rejected from the header."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 20000, 20000, 8, 0, 0, 0, 0))
    bomb = header + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")
    try:
        decode_image(bomb, "bomb.png", max_pixels=10**9)
        raise AssertionError("not rejected")
    except ImageRejected as e:
        assert e.rule == "too_large"


def test_each_stage_has_a_pixel_limit_with_a_clear_rejection(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "small.png").write_bytes(png_bytes(photo("astronaut", 64)))
    (folder / "large.png").write_bytes(png_bytes(photo("coffee", 160)))
    cfg = parse_config({
        "source": {"kind": "files", "paths": [str(folder)]},
        "filters": [{"kind": "sanity", "min_size": 32, "resources": {"max_pixels": 10_000}}],
        "degrade": {"kind": "simple", "scale": 2},
        "output": {"samples_per_shard": 4},
    })
    out = tmp_path / "out"
    s = run_pipeline(cfg, str(out), executor="local")
    assert s.accepted == 1 and s.rejected == {"sanity/too_large": 1}
    (rec,) = ledger.committed_records(LocalStorage(out)).values()
    (r,) = rec["rejected"]
    assert r["value"] == 160 * 160 and "max_pixels=10000" in r["reason"] and "resources.max_pixels" in r["reason"]
    assert json.loads((out / "run.json").read_text())["config"]["filters"][0]["resources"]["max_pixels"] == 10_000


def test_degrade_stages_have_a_default_limit_sized_from_their_memory_per_pixel():
    ctx = RunContext(seed=0, run_url=None, device="cpu")
    limits = {}
    for kind in ("simple", "chain", "realworld"):  # simple has no resources section: its default applies
        cfg = parse_config({"source": {"kind": "bundled"}, "degrade": {"kind": kind}})
        limits[kind] = stage_max_pixels(build_stages(cfg, ctx)[-1])
    assert limits["realworld"] < limits["chain"] < limits["simple"]
    mix = parse_config({"source": {"kind": "bundled"}, "degrade": {"kind": "mix", "components": [
        {"weight": 1, "degrade": {"kind": "chain", "preset": "realesrgan", "scale": 4}},
        {"weight": 1, "degrade": {"kind": "realworld"}}], "scale": 4}})
    assert stage_max_pixels(build_stages(mix, ctx)[-1]) == limits["realworld"]  # its hungriest component's
    cfg = parse_config({"source": {"kind": "bundled"}, "degrade": {"kind": "chain", "resources": {"max_pixels": 5}}})
    assert stage_max_pixels(build_stages(cfg, ctx)[-1]) == 5
