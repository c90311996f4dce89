"""Scores of the fill alone (helpers.inpaint.hole_scores): PSNR and SSIM inside the hole, the hole's
box for SIFID, the holes read back from the step's PNGs.

The reference is scikit-image's ``skimage.metrics`` (``peak_signal_noise_ratio``,
``structural_similarity``), and for PSNR also its closed form on a known fill.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from helpers.inpaint import QualityError
from helpers.inpaint import hole_scores as hs


def _image(seed: int = 0, side: int = 48) -> np.ndarray:
    """A smooth, textured RGB image (SSIM's statistics are meaningless on pure noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side]
    base = 120 + 60 * np.sin(x / 5.0)[..., None] * np.cos(y / 7.0)[..., None] * np.array([1.0, 0.7, 0.4])
    return np.clip(base + rng.normal(0, 8, (side, side, 3)), 0, 255).astype(np.uint8)


def _square(side: int, top: int, left: int, size: int) -> np.ndarray:
    hole = np.zeros((side, side), dtype=bool)
    hole[top:top + size, left:left + size] = True
    return hole


def test_psnr_in_the_hole_is_the_closed_form_and_skimage_on_the_holes_pixels():
    original = _image()
    hole = _square(48, 10, 12, 16)
    original[hole] = np.clip(original[hole], 0, 245)  # so that + 10 never clips: every error is 10
    result = original.copy()
    result[hole] = original[hole] + 10
    assert hs.psnr_hole(original, result, hole) == pytest.approx(20 * np.log10(255 / 10), rel=1e-12)
    assert hs.psnr_hole(original, result, hole) == pytest.approx(
        peak_signal_noise_ratio(original[hole], result[hole], data_range=255), rel=1e-12)
    # the whole-image PSNR is higher by -10 log10(hole share): the untouched pixels dilute it
    whole = peak_signal_noise_ratio(original, result, data_range=255)
    assert whole - hs.psnr_hole(original, result, hole) == pytest.approx(-10 * np.log10(hole.mean()), rel=1e-9)


def test_ssim_in_the_hole_is_skimages_map_averaged_over_the_hole():
    original = _image(1)
    result = np.clip(original.astype(int) + np.random.default_rng(2).normal(0, 20, original.shape), 0, 255)
    result = result.astype(np.uint8)
    # skimage's mean SSIM averages the map without a 3 px border (7x7 window): the same region as a hole
    interior = np.zeros((48, 48), dtype=bool)
    interior[3:-3, 3:-3] = True
    mssim = structural_similarity(original, result, channel_axis=-1, data_range=255)
    assert hs.ssim_hole(original, result, interior) == pytest.approx(mssim, rel=1e-12)
    hole = _square(48, 20, 5, 9)
    _, full = structural_similarity(original, result, full=True, channel_axis=-1, data_range=255)
    assert hs.ssim_hole(original, result, hole) == pytest.approx(full[20:29, 5:14].mean(), rel=1e-12)
    assert 0 < hs.ssim_hole(original, result, hole) < 0.9
    assert hs.scores_in_hole(original, result, hole) == {
        "psnr_hole": hs.psnr_hole(original, result, hole), "ssim_hole": hs.ssim_hole(original, result, hole)}


def test_a_fill_equal_to_the_original_scores_perfectly_whatever_happens_outside():
    original = _image(3)
    hole = _square(48, 16, 16, 12)
    assert hs.psnr_hole(original, original.copy(), hole) == float("inf")
    assert hs.ssim_hole(original, original.copy(), hole) == pytest.approx(1.0, abs=1e-12)

    outside = original.copy()
    outside[~hole] = 255 - outside[~hole]  # every pixel but the hole's changed
    assert hs.psnr_hole(original, outside, hole) == float("inf")
    assert hs.ssim_hole(original, outside, hole) < 1  # the window reaches 3 px past the hole's edge
    far = original.copy()
    far[:9] = 0  # changes more than 3 px away from the hole: SSIM's windows there never see them
    assert hs.ssim_hole(original, far, hole) == pytest.approx(1.0, abs=1e-12)
    assert hs.psnr_hole(original, far, hole) == float("inf")


def test_empty_holes_and_mismatched_shapes():
    original = _image(4)
    empty = np.zeros((48, 48), dtype=bool)
    assert np.isnan(hs.psnr_hole(original, original, empty)) and np.isnan(hs.ssim_hole(original, original, empty))
    assert hs.hole_box(empty) is None
    img = Image.fromarray(original)
    assert hs.hole_crops(img, img, empty) is None
    with pytest.raises(QualityError, match="one height and width"):
        hs.psnr_hole(original, original[:40], _square(48, 0, 0, 4))


def test_the_holes_box_grows_to_the_minimum_side_inside_the_image():
    side = 384
    assert hs.HOLE_BOX_MIN == 64
    # a tiny hole in a corner: grown to 64 px, pushed inside the image
    assert hs.hole_box(_square(side, 0, 380, 4)) == (320, 0, 384, 64)
    # a tiny hole in the middle: grown around its centre
    left, top, right, bottom = hs.hole_box(_square(side, 100, 200, 10))
    assert (right - left, bottom - top) == (64, 64) and left <= 200 and right >= 210 and top <= 100
    # a large hole keeps its own bounding box
    hole = np.zeros((side, side), dtype=bool)
    hole[50:170, 30:40] = True
    hole[100, 30:300] = True
    assert hs.hole_box(hole) == (30, 50, 300, 170)  # 270 x 120 px: nothing to grow
    # an image smaller than the minimum keeps its side
    assert hs.hole_box(_square(40, 5, 5, 3)) == (0, 0, 40, 40)

    img_a, img_b = Image.new("RGB", (side, side), (10, 20, 30)), Image.new("RGB", (side, side), (0, 0, 0))
    crop_a, crop_b = hs.hole_crops(img_a, img_b, _square(side, 0, 380, 4))
    assert crop_a.size == crop_b.size == (64, 64) and crop_a.getpixel((0, 0)) == (10, 20, 30)


def test_holes_are_read_back_from_the_steps_pngs(tmp_path):
    hole = _square(32, 4, 6, 10)
    path = tmp_path / "0000.png"
    Image.fromarray((hole * 255).astype(np.uint8)).save(path)
    back = hs.read_hole(path, (32, 32))
    assert back.dtype == bool and np.array_equal(back, hole)
    with pytest.raises(QualityError, match=r"0000\.png is 32x32 but its image is 40x32"):
        hs.read_hole(path, (32, 40))
    broken = tmp_path / "0001.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(QualityError, match=r"cannot read the hole .*0001\.png.*run the inpaint step"):
        hs.read_hole(broken)
