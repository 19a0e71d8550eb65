import io

import numpy as np
import pytest
from PIL import Image

from pairforge.io.images import ImageRejected, decode_image, decode_png, encode_png
from tests.conftest import jpeg_bytes, photo


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


# -- plain PNGs: decoded by OpenCV, and kept so the writer can store them instead of encoding again ----

def _pil_decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _png_with(img: np.ndarray, **save) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG", **save)
    return buf.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _insert_after_ihdr(data: bytes, chunk: bytes) -> bytes:
    return data[:33] + chunk + data[33:]


def test_plain_pngs_decode_to_pillows_pixels_and_info():
    """The OpenCV path gives what Pillow gives, colour-management and text chunks included (neither
    applies gamma or profiles), and the same info; other PNGs take the general path."""
    from PIL import PngImagePlugin

    from pairforge.io.images import decode_image_keep, parse_plain_png

    img = photo("coffee", 120)
    text = PngImagePlugin.PngInfo()
    text.add_text("Software", "test")
    text.add_text("Comment", "zipped " * 40, zip=True)
    variants = {
        "plain": _png_with(img, compress_level=1),
        "level9": _png_with(img, compress_level=9),
        "text": _png_with(img, pnginfo=text),
        "gamma": _insert_after_ihdr(_png_with(img), _chunk(b"gAMA", (45455).to_bytes(4, "big"))),
        "icc_phys": _png_with(img, dpi=(300, 300), icc_profile=_srgb_profile()),
        "small_idat": _insert_after_ihdr(encode_png(img), _chunk(b"sRGB", b"\x00")),
    }
    for name, data in variants.items():
        assert parse_plain_png(data) is not None, name
        arr, info, kept = decode_image_keep(data, name, keep_png=True)
        assert np.array_equal(arr, _pil_decode(data)), name
        assert info == {"format": "PNG", "mode": "RGB", "decoded_size": [120, 120], "size": [120, 120]}, name
        assert kept is not None and kept.png_for(arr) is not None, name
        assert decode_image(data, name)[1] == info
    not_plain = {
        "gray": _png_with(img[..., 0]),
        "rgba": _png_with(np.dstack([img, np.full(img.shape[:2], 255, np.uint8)])),
        "palette": png_bytes_mode(img, "P"),
        "interlaced": _interlaced(img),
        "exif_text": _insert_after_ihdr(_png_with(img), _chunk(b"tEXt", b"Raw profile type exif\x00x")),
        "exif_chunk": _insert_after_ihdr(_png_with(img), _chunk(b"eXIf", b"MM\x00*")),
        "unknown_chunk": _insert_after_ihdr(_png_with(img), _chunk(b"tRNS", b"\x00\x00\x00\x00\x00\x00")),
        "jpeg": jpeg_bytes(img),
    }
    for name, data in not_plain.items():
        assert parse_plain_png(data) is None, name


def png_bytes_mode(img: np.ndarray, mode: str) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).convert(mode).save(buf, format="PNG")
    return buf.getvalue()


def _srgb_profile() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _interlaced(img: np.ndarray) -> bytes:
    # OpenCV writes no interlaced PNGs; flip the IHDR flag of a tiny all-zero image instead (still a
    # valid PNG: an Adam7 stream of a 1x1 image is one row)
    z = encode_png(np.zeros((1, 1, 3), np.uint8))
    ihdr = bytearray(z[16:29])
    ihdr[12] = 1
    return z[:8] + _chunk(b"IHDR", bytes(ihdr)) + z[33:]


def test_the_kept_png_is_stored_only_for_exactly_its_pixels():
    """``png_for`` gives bytes that decode to the same pixels, and None for anything else: other pixels,
    another shape, a stream with data missing or trailing, an uncompressed source."""
    import struct
    import zlib

    from pairforge.io.images import decode_image_keep, parse_plain_png

    img = photo("astronaut", 96)
    data = _png_with(img, compress_level=6)
    arr, _, kept = decode_image_keep(data, "a.png", keep_png=True)
    out = kept.png_for(arr)
    assert np.array_equal(decode_png(out), img) and np.array_equal(_pil_decode(out), img)
    assert len(out) <= len(data)
    changed = arr.copy()
    changed[5, 5, 1] ^= 1
    assert kept.png_for(changed) is None
    assert kept.png_for(arr[:, :-1]) is None
    assert kept.png_for(arr.astype(np.float32)) is None
    assert decode_image_keep(data, "a.png")[2] is None  # only when asked

    plain = parse_plain_png(data)
    w, h = plain.width, plain.height
    raw = zlib.decompress(plain.idat)

    def with_stream(stream: bytes) -> bytes:
        ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", stream) + _chunk(b"IEND", b"")

    def kept_for(data: bytes):
        try:
            arr, _, kept = decode_image_keep(data, "x.png", keep_png=True)
        except ImageRejected:
            return "rejected"
        assert np.array_equal(arr, img)  # a lenient decoder's pixels, but nothing kept
        return kept

    assert kept_for(with_stream(zlib.compress(raw))) is not None
    assert kept_for(with_stream(zlib.compress(raw) + b"junk")) is None  # trailing data
    assert kept_for(with_stream(zlib.compress(raw + b"\x00" * 10))) in (None, "rejected")  # too many rows
    assert kept_for(with_stream(zlib.compress(raw)[:-20])) in (None, "rejected")  # truncated
    assert kept_for(with_stream(zlib.compress(raw, 0))) is None  # not compressed: encode
    bad = bytearray(raw)
    bad[0] = 9  # filter type 9 does not exist
    assert kept_for(with_stream(zlib.compress(bytes(bad)))) in (None, "rejected")


def test_encode_png_is_lossless_at_every_level():
    img = photo("coffee", 64)
    for level in (0, 1, 6, 9):
        assert np.array_equal(decode_png(encode_png(img, level)), img)
