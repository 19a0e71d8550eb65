import io

import numpy as np
import pytest
from PIL import Image

from pairforge.io.images import ImageRejected, decode_image, decode_png, encode_png
from tests.conftest import photo


def test_png_roundtrip_is_lossless():
    img = photo("astronaut", 96)
    assert np.array_equal(decode_png(encode_png(img, 1)), img)


def test_messy_folder_decodes_or_rejects_with_reason(messy_photos):
    folder, expected = messy_photos
    for name, outcome in expected.items():
        data = (folder / name).read_bytes()
        if outcome.startswith("source/"):
            with pytest.raises(ImageRejected) as e:
                decode_image(data, name, max_pixels=400_000)
            assert e.value.rule == outcome.split("/")[1], name
            assert name in e.value.reason
        else:
            img, info = decode_image(data, name, max_pixels=400_000)
            assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3, name


def test_exif_rotation_is_applied(messy_photos):
    folder, _ = messy_photos
    img, info = decode_image((folder / "exif_rotated.jpg").read_bytes())
    # stored 200 wide x 120 high, orientation 6 -> displayed 120 wide x 200 high
    assert img.shape[:2] == (200, 120)
    assert info["exif_orientation"] == 6


def test_alpha_is_composited_on_white_and_recorded(messy_photos):
    folder, _ = messy_photos
    img, info = decode_image((folder / "alpha.png").read_bytes())
    assert (img[:40, :40] == 255).all()
    assert "alpha composited" in info["converted"]


def test_sixteen_bit_is_scaled_not_truncated(messy_photos):
    folder, _ = messy_photos
    img, info = decode_image((folder / "gray16.png").read_bytes())
    ref = photo("camera", 160)
    assert np.abs(img[..., 0].astype(int) - ref.astype(int)).max() <= 1
    assert "16-bit" in info["converted"]


def test_cmyk_and_palette_convert_to_rgb(messy_photos):
    folder, _ = messy_photos
    for name in ("cmyk.jpg", "palette.png"):
        img, info = decode_image((folder / name).read_bytes())
        assert img.shape == (160, 160, 3)
        assert info["mode"] in ("CMYK", "P") and "->RGB" in info["converted"]


def test_every_conversion_is_recorded_48_and_64_bit_included():
    """Pillow silently keeps the high byte of 16-bit RGB samples: that is a conversion and is recorded."""
    import cv2

    rng = np.random.default_rng(0)
    rgb16 = rng.integers(0, 65536, (20, 30, 3), dtype=np.uint16)
    img, info = decode_image(cv2.imencode(".png", rgb16)[1].tobytes(), "rgb48.png")
    assert info["converted"] == "RGB;16B->RGB (16-bit to 8-bit, high byte)"
    assert np.array_equal(img, (rgb16[..., ::-1] >> 8).astype(np.uint8))
    rgba16 = rng.integers(0, 65536, (20, 30, 4), dtype=np.uint16)
    rgba16[..., 3] = 65535
    _, info = decode_image(cv2.imencode(".png", rgba16)[1].tobytes(), "rgba64.png")
    assert info["converted"] == "RGBA;16B->RGBA (16-bit to 8-bit, high byte); RGBA->RGB (opaque alpha dropped)"
    _, info = decode_image(cv2.imencode(".tiff", rgb16)[1].tobytes(), "rgb48.tiff")
    assert "16-bit to 8-bit" in info["converted"]
    # 8-bit RGB is not converted; every other mode says what happened
    _, info = decode_image(cv2.imencode(".png", (rgb16 >> 8).astype(np.uint8))[1].tobytes(), "rgb24.png")
    assert "converted" not in info
    for mode in ("1", "L", "LA", "P", "CMYK", "I;16"):
        buf = io.BytesIO()
        Image.fromarray((rgb16 >> 8).astype(np.uint8)).convert(mode).save(buf, format="TIFF" if mode == "CMYK" else "PNG")
        _, info = decode_image(buf.getvalue(), mode)
        assert info["converted"].startswith(f"{info['mode']}->RGB"), (mode, info)


def test_decoding_leaves_pillows_bomb_limit_alone_and_rejects_past_max_pixels():
    before = Image.MAX_IMAGE_PIXELS
    buf = io.BytesIO()
    Image.new("RGB", (300, 200)).save(buf, "PNG")
    img, _ = decode_image(buf.getvalue(), "ok.png")
    assert img.shape == (200, 300, 3) and Image.MAX_IMAGE_PIXELS == before
    with pytest.raises(ImageRejected) as e:
        decode_image(buf.getvalue(), "big.png", max_pixels=50_000)
    assert e.value.rule == "too_large" and e.value.value == 60_000
    assert Image.MAX_IMAGE_PIXELS == before
