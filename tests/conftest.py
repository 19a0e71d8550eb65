"""Shared fixtures: real photos and broken files on disk, a moto S3 server on loopback."""
from __future__ import annotations

import io
import os
import socket

import numpy as np
import pytest
from PIL import Image

os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture(scope="session")
def moto_s3():
    """A real S3-compatible HTTP server (moto) on 127.0.0.1; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    old = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1"
    )
    yield endpoint
    server.stop()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


@pytest.fixture()
def s3_bucket(moto_s3):
    import boto3
    import uuid

    name = "pf-" + uuid.uuid4().hex[:12]
    boto3.client("s3", endpoint_url=moto_s3).create_bucket(Bucket=name)
    return name


def photo(name: str = "astronaut", size: int | None = 160) -> np.ndarray:
    import skimage.data as d

    img = getattr(d, name)()
    if size:
        img = np.asarray(Image.fromarray(img).resize((size, size), Image.BICUBIC))
    return img


def png_bytes(img: np.ndarray, mode: str | None = None) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img, mode=mode).save(buf, format="PNG") if mode else Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(img: np.ndarray, quality: int = 90, exif=None) -> bytes:
    buf = io.BytesIO()
    kw = {"quality": quality}
    if exif is not None:
        kw["exif"] = exif
    Image.fromarray(img).save(buf, format="JPEG", **kw)
    return buf.getvalue()


@pytest.fixture()
def messy_photos(tmp_path):
    """A folder of what real folders contain: good photos in many modes, and files that are unusable.

    Returns (folder, expected) where expected maps file name -> "ok" or the rejection rule."""
    d = tmp_path / "photos"
    d.mkdir()
    a = photo("astronaut", 160)
    c = photo("coffee", 160)
    expected = {}

    def put(name, data, outcome):
        (d / name).write_bytes(data)
        expected[name] = outcome

    put("good_rgb.png", png_bytes(a), "ok")
    put("good.jpg", jpeg_bytes(c), "ok")
    truncated = jpeg_bytes(a)
    put("truncated.jpg", truncated[: len(truncated) // 2], "source/undecodable")
    put("corrupt.png", b"\x89PNG\r\n\x1a\n" + os.urandom(300), "source/undecodable")
    put("not_an_image.png", b"hello, I am text pretending to be a png\n" * 20, "source/undecodable")
    put("empty.jpg", b"", "source/undecodable")
    # CMYK JPEG
    buf = io.BytesIO()
    Image.fromarray(c).convert("CMYK").save(buf, format="JPEG")
    put("cmyk.jpg", buf.getvalue(), "ok")
    # palette PNG
    buf = io.BytesIO()
    Image.fromarray(a).convert("P", palette=Image.ADAPTIVE).save(buf, format="PNG")
    put("palette.png", buf.getvalue(), "ok")
    # 16-bit grayscale PNG
    g16 = (photo("camera", 160).astype(np.uint16) * 257)
    buf = io.BytesIO()
    Image.fromarray(g16).save(buf, format="PNG")
    put("gray16.png", buf.getvalue(), "ok")
    # RGBA with real transparency
    rgba = np.dstack([a, np.full(a.shape[:2], 255, np.uint8)])
    rgba[:40, :40, 3] = 0
    put("alpha.png", png_bytes(rgba), "ok")
    # 1x1 image
    put("one_pixel.png", png_bytes(np.zeros((1, 1, 3), np.uint8)), "sanity/too_small")
    # flat/blank image
    put("blank.png", png_bytes(np.full((160, 160, 3), 200, np.uint8)), "sanity/flat")
    # EXIF-rotated photo (orientation 6 = rotate 90 CW on display)
    exif = Image.Exif()
    exif[0x0112] = 6
    wide = np.asarray(Image.fromarray(photo("rocket", None)).resize((200, 120)))
    put("exif_rotated.jpg", jpeg_bytes(wide, exif=exif), "ok")
    # a header that claims huge dimensions (decompression-bomb guard; max_pixels set low in tests)
    big = np.zeros((600, 700, 3), np.uint8)
    big[::7] = 255
    put("huge.png", png_bytes(big), "source/too_large")
    (d / "notes.txt").write_text("not an image; skipped by extension\n")
    return d, expected
