import numpy as np
import pytest

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
