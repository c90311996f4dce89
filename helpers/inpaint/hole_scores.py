"""Chapter 3: scores of the fill alone -- PSNR and SSIM inside the hole, and the hole's box for SIFID.

A whole-image score of an inpainted image mostly measures the photograph it started from: with
holes of 10-20% of the image, 80-90% of the pixels are the original's, untouched. Inside the hole
the ground truth exists (the original pixels the inpainter never saw), so the fill itself can be
scored against it:

- :func:`psnr_hole`: PSNR over the hole's pixels only (scikit-image's
  ``peak_signal_noise_ratio`` on those pixels, data range 255); infinite when the fill equals the
  original there, whatever happens outside;
- :func:`ssim_hole`: the SSIM map of scikit-image's ``structural_similarity`` (``full=True``,
  ``channel_axis=-1``, ``data_range=255``, its default 7x7 window) averaged over the hole's pixels
  and the three channels. The window of a pixel at the hole's edge reaches 3 px past it, so SSIM
  also sees the seam between the fill and its surroundings, as a reader does;
- :func:`hole_box`: the hole's bounding box, grown to at least :data:`HOLE_BOX_MIN` px a side with
  the image's own pixels around it, so that SIFID (:mod:`helpers.inpaint.fid`) can compare the
  original's and the result's crops (:func:`hole_crops`).

Why the box grows. SIFID's network (pytorch-fid's Inception up to block 0) needs a crop of at least
15 px a side to give the 2x2 feature positions :func:`helpers.inpaint.fid.sifid_pairs` requires;
but a Gaussian of 64-d features fitted to 4 positions has a singular covariance, and the Frechet
distance of two such Gaussians rests on the square root of a singular product. A 64x64 crop gives
14x14 = 196 positions, more than the 64 dimensions, so a smaller box is grown (centred on the
hole, kept inside the image) to 64 px a side. Nothing is resized or padded with made-up pixels:
the added context is the same in the original and the result, so it dilutes the score of a tiny
hole a little but never invents a difference. An image smaller than 64 px keeps its own side.

Everything here is numpy and scikit-image (imported where used): no torch. LPIPS inside the hole
(``lpips_hole``) needs its network, so it lives in :mod:`helpers.inpaint.lpips`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from .quality import QualityError

HOLE_BOX_MIN = 64  # px: 14x14 = 196 block-0 positions, more than SIFID's 64 feature dimensions


def read_hole(path: str | Path, shape: tuple[int, int] | None = None) -> np.ndarray:
    """The hole the inpaint step wrote as a PNG (white = hole) as a bool array, checked against
    the image's (height, width) when given."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            hole = np.asarray(img.convert("L")) > 127
    except (OSError, ValueError) as exc:
        raise QualityError(f"cannot read the hole {path} ({exc}); delete it and run the inpaint step "
                           f"again, which writes it with its result") from exc
    if shape is not None and hole.shape != tuple(shape):
        raise QualityError(f"the hole {path} is {hole.shape[1]}x{hole.shape[0]} but its image is "
                           f"{shape[1]}x{shape[0]}; delete the model's results folder and run the "
                           f"inpaint step again")
    return hole


def _checked(original, result, hole) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The three inputs as arrays of one height and width (images HxWx3 uint8, hole HxW bool)."""
    original, result = np.asarray(original), np.asarray(result)
    hole = np.asarray(hole, dtype=bool)
    if original.shape != result.shape or original.shape[:2] != hole.shape:
        raise QualityError(f"original {original.shape}, result {result.shape} and hole {hole.shape} "
                           f"must share one height and width")
    return original, result, hole


def psnr_hole(original, result, hole) -> float:
    """PSNR (dB) of the result against the original over the hole's pixels only; ``inf`` when they
    are equal there, NaN for an empty hole (there is nothing to score)."""
    from skimage.metrics import peak_signal_noise_ratio  # lazily: scikit-image is heavy

    original, result, hole = _checked(original, result, hole)
    if not hole.any():
        return float("nan")
    inside_a, inside_b = original[hole], result[hole]
    if np.array_equal(inside_a, inside_b):
        return float("inf")  # skimage gives inf too, with a divide-by-zero warning
    return float(peak_signal_noise_ratio(inside_a, inside_b, data_range=255))


def ssim_hole(original, result, hole) -> float:
    """Mean of scikit-image's SSIM map (7x7 window, data range 255, per channel) over the hole's
    pixels; 1 when the fill and its 3 px surroundings equal the original, NaN for an empty hole."""
    from skimage.metrics import structural_similarity

    original, result, hole = _checked(original, result, hole)
    if not hole.any():
        return float("nan")
    _, ssim_map = structural_similarity(original, result, full=True, channel_axis=-1, data_range=255)
    return float(ssim_map[hole].mean())


def _grown(start: int, stop: int, size: int, min_side: int) -> tuple[int, int]:
    """[start, stop) grown around its centre to ``min(min_side, size)`` and kept inside [0, size)."""
    side = max(stop - start, min(min_side, size))
    first = (start + stop - side) // 2
    first = min(max(first, 0), size - side)
    return first, first + side


def hole_box(hole, min_side: int = HOLE_BOX_MIN) -> tuple[int, int, int, int] | None:
    """The hole's bounding box as PIL's ``(left, top, right, bottom)``, grown to at least
    ``min_side`` px a side inside the image (see the module docstring); None for an empty hole."""
    hole = np.asarray(hole, dtype=bool)
    rows, cols = np.flatnonzero(hole.any(axis=1)), np.flatnonzero(hole.any(axis=0))
    if rows.size == 0:
        return None
    top, bottom = _grown(int(rows[0]), int(rows[-1]) + 1, hole.shape[0], min_side)
    left, right = _grown(int(cols[0]), int(cols[-1]) + 1, hole.shape[1], min_side)
    return left, top, right, bottom


def hole_crops(original: Image.Image, result: Image.Image, hole,
               min_side: int = HOLE_BOX_MIN) -> tuple[Image.Image, Image.Image] | None:
    """The original and the result cropped to :func:`hole_box`, for ``sifid_hole``; None for an
    empty hole."""
    box = hole_box(hole, min_side)
    if box is None:
        return None
    if original.size != result.size or original.size != np.asarray(hole).shape[::-1]:
        raise QualityError(f"original {original.size}, result {result.size} and hole "
                           f"{np.asarray(hole).shape[::-1]} (width, height) must share one size")
    return original.crop(box), result.crop(box)


def scores_in_hole(original, result, hole) -> dict[str, float]:
    """``psnr_hole`` and ``ssim_hole`` of one image (the columns of the step's scores.csv)."""
    return {"psnr_hole": psnr_hole(original, result, hole), "ssim_hole": ssim_hole(original, result, hole)}
