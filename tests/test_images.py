"""Every kind of bad input a folder of photographs may hold."""

import io
import zlib
import struct

import numpy as np
import pytest
from PIL import Image

from helpers.data.images import BadImage, convert_file, encode, load_rgb, png_bytes, preprocess
from helpers.core.profiles import get_profile
from helpers.data.real_data import convert_all

PROFILE = get_profile("smoke")


def _photo(w=120, h=80, mode="RGB"):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    return Image.fromarray(arr).convert(mode)


def _bomb_png(path, w, h):
    """A small PNG file that claims w x h pixels (1-bit, all zero)."""
    raw = zlib.compress(b"".join(b"\x00" + b"\x00" * ((w + 7) // 8) for _ in range(h)), 9)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 1, 0, 0, 0, 0))
                     + chunk(b"IDAT", raw) + chunk(b"IEND", b""))


def test_grayscale_becomes_rgb(tmp_path):
    _photo(mode="L").save(tmp_path / "g.png")
    img = load_rgb(tmp_path / "g.png")
    assert img.mode == "RGB"
    r, g, b = img.split()
    assert r.tobytes() == g.tobytes() == b.tobytes()


def test_cmyk_jpeg_becomes_rgb_with_the_right_colours(tmp_path):
    red = Image.new("RGB", (64, 64), (220, 20, 20))
    red.convert("CMYK").save(tmp_path / "c.jpg", quality=98)
    img = load_rgb(tmp_path / "c.jpg")
    assert img.mode == "RGB"
    r, g, b = np.asarray(img).reshape(-1, 3).mean(axis=0)
    assert r > 180 and g < 70 and b < 70


def test_16_bit_uses_the_full_range(tmp_path):
    arr = np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16)
    Image.fromarray(arr).save(tmp_path / "d.png")
    assert Image.open(tmp_path / "d.png").mode.startswith("I")
    img = np.asarray(load_rgb(tmp_path / "d.png"))
    assert img.dtype == np.uint8 and img.min() == 0 and img.max() == 255


def test_palette_with_alpha_goes_onto_white(tmp_path):
    rgba = Image.new("RGBA", (64, 64), (0, 0, 255, 255))
    rgba.paste((0, 0, 0, 0), (0, 0, 32, 64))  # left half fully transparent
    rgba.convert("P", palette=Image.Palette.ADAPTIVE).save(tmp_path / "p.png", transparency=0)
    rgba.save(tmp_path / "a.png")
    for name in ("a.png",):
        img = np.asarray(load_rgb(tmp_path / name))
        assert tuple(img[10, 5]) == (255, 255, 255) and tuple(img[10, 50]) == (0, 0, 255)
    assert load_rgb(tmp_path / "p.png").mode == "RGB"


def test_exif_rotation_is_applied(tmp_path):
    img = _photo(120, 80)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.save(tmp_path / "r.jpg", exif=exif.tobytes())
    assert load_rgb(tmp_path / "r.jpg").size == (80, 120)


@pytest.mark.parametrize("kind,reason", [
    ("zero", "zero-byte"),
    ("text", "not an image"),
    ("truncated", "truncated or corrupt"),
    ("tiny", "too small: 1x1"),
    ("bomb", "decompression bomb"),
    ("missing", "cannot read"),
])
def test_bad_files_raise_with_their_reason(tmp_path, kind, reason):
    path = tmp_path / f"{kind}.jpg"
    if kind == "zero":
        path.write_bytes(b"")
    elif kind == "text":
        path.write_text("this is not a picture")
    elif kind == "truncated":
        buf = io.BytesIO()
        _photo(200, 200).save(buf, format="JPEG")
        path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    elif kind == "tiny":
        Image.new("RGB", (1, 1)).save(path)
    elif kind == "bomb":
        path = tmp_path / "bomb.png"
        _bomb_png(path, 12_000, 12_000)
    with pytest.raises(BadImage, match=reason):
        load_rgb(path, max_pixels=100_000_000)


def test_a_folder_of_bad_files_never_crashes_and_logs_each(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    good = src / "good.jpg"
    _photo(640, 480).save(good)
    (src / "zero.jpg").write_bytes(b"")
    (src / "text.jpg").write_text("nope")
    Image.new("RGB", (1, 1)).save(src / "tiny.png")
    _bomb_png(src / "bomb.png", 12_000, 12_000)
    pairs = [(p, tmp_path / "out" / (p.stem + ".jpg")) for p in sorted(src.iterdir())]
    skipped = convert_all(PROFILE, pairs, desc="test")
    assert set(p.name for p in skipped) == {"zero.jpg", "text.jpg", "tiny.png", "bomb.png"}
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["good.jpg"]


def test_both_classes_leave_in_the_same_format(tmp_path):
    """A 640x480 JPEG photo and a 768x768 PNG generation end up as the same kind of file."""
    _photo(640, 480).save(tmp_path / "real.jpg", quality=80)
    _photo(768, 768).save(tmp_path / "gen.png")
    convert_file(tmp_path / "real.jpg", tmp_path / "a.jpg", PROFILE)
    convert_file(tmp_path / "gen.png", tmp_path / "b.jpg", PROFILE)
    a, b = Image.open(tmp_path / "a.jpg"), Image.open(tmp_path / "b.jpg")
    assert a.format == b.format == "JPEG"
    assert a.size == b.size == (384, 384)
    assert a.mode == b.mode == "RGB"
    assert a.quantization == b.quantization  # same quality tables
    assert a.layer == b.layer  # same chroma subsampling


def test_preprocess_antialiases():
    # A one-pixel checkerboard averages to grey when shrunk with anti-aliasing.
    board = (np.indices((768, 768)).sum(axis=0) % 2 * 255).astype(np.uint8)
    small = np.asarray(preprocess(Image.fromarray(board).convert("RGB"), 384), dtype=float)
    assert abs(small.mean() - 127.5) < 3 and small.std() < 20


def test_encode_png_is_lossless():
    img = _photo(64, 64)
    png = encode(img, get_profile("smoke", {"store_format": "PNG"}))
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(png))), np.asarray(img))


def test_png_bytes_keep_every_pixel():
    img = _photo(37, 23)
    data = png_bytes(img)
    assert data.startswith(b"\x89PNG")
    back = Image.open(io.BytesIO(data))
    assert back.size == (37, 23) and np.array_equal(np.asarray(back), np.asarray(img))
