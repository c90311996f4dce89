"""Chapter 3: holes to inpaint. Every mask is a boolean array, True where pixels are missing.

- ``free_form``: seeded irregular strokes, as both inpainting papers train and test with, drawn
  until the hole covers the asked share of the image. The same index gives the same mask, so real
  and generated images get exactly the same holes.
- ``coco_object``: the outline of an annotated object of a COCO photograph (object removal, as in
  the paper's Fig. 6), carried through the same resize and centre crop as the photograph itself
  (:func:`crop_box`) and dilated a few pixels (:func:`dilate_hole`); real images only, since
  generated images have no annotations.
- ``matched_holes``: the holes of generated images in object removal: generated image i gets the
  object hole of real photograph i, moved to a seeded random place, so that the two sets' holes
  have exactly the same areas and shapes.
- ``from_folder``: masks a user drew (white = hole), one per image, matched by file name.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..data.images import BadImage, crop_box, load_rgb

# Pixels (at the preprocessed side) by which an object's hole is grown: object-removal tests do
# this so that the fill cannot copy the object's outline (its anti-aliased edge, its shadow line).
DILATE_PX = 4
# The share of the preprocessed image an object's hole may cover (before dilation): smaller ones are
# specks, larger ones leave too little context to fill from (free-form holes cover 0.15 by default).
OBJECT_MIN_RATIO, OBJECT_MAX_RATIO = 0.02, 0.3


class MaskError(ValueError):
    """A mask that cannot be used; the message names the file and what to do."""


def free_form(height: int, width: int, ratio: float, seed: int) -> np.ndarray:
    """Random brush strokes (vertices, angles, lengths, widths) until ``ratio`` of pixels are holes."""
    rng = np.random.default_rng(seed)
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    scale = min(height, width)
    target = ratio * height * width
    for _ in range(200):
        x, y = float(rng.uniform(0, width)), float(rng.uniform(0, height))
        brush = int(rng.uniform(0.03, 0.08) * scale) + 1
        for _ in range(int(rng.integers(3, 8))):
            angle = rng.uniform(0, 2 * math.pi)
            length = rng.uniform(0.05, 0.2) * scale
            nx = float(np.clip(x + length * math.cos(angle), 0, width - 1))
            ny = float(np.clip(y + length * math.sin(angle), 0, height - 1))
            draw.line([(x, y), (nx, ny)], fill=255, width=brush)
            draw.ellipse([nx - brush / 2, ny - brush / 2, nx + brush / 2, ny + brush / 2], fill=255)
            x, y = nx, ny
            if np.count_nonzero(np.asarray(canvas)) >= target:
                return np.asarray(canvas) > 0
    return np.asarray(canvas) > 0


def hole_ratio(mask: np.ndarray) -> float:
    return float(mask.mean())


def to_preprocessed(xy: np.ndarray, width: int, height: int, side: int) -> np.ndarray:
    """Points ``(x, y)`` of a ``width`` x ``height`` original, in the preprocessed ``side`` x
    ``side`` image: shifted by the crop, scaled by side / shorter side (both in pixel-edge
    coordinates, as COCO's polygons and PIL's resize box are). At side 384, a 640x480
    photograph's x 500 lands at (500 - 80) * 0.8 = 336."""
    left, top, right, _ = crop_box(width, height)
    return (np.asarray(xy, dtype=np.float64) - (left, top)) * (side / (right - left))


def polygons_mask(polygons: Sequence[Sequence[float]], width: int, height: int, side: int) -> np.ndarray:
    """COCO polygons (``[x0, y0, x1, y1, ...]`` each, in the original's pixels) rasterised in the
    preprocessed ``side`` x ``side`` image: a pixel is in when its centre is inside (scikit-image's
    ``polygon2mask``); what the crop cut away is simply not there."""
    from skimage.draw import polygon2mask  # lazily: scikit-image is heavy

    mask = np.zeros((side, side), dtype=bool)
    for poly in polygons:
        xy = np.asarray(poly, dtype=np.float64)[: len(poly) // 2 * 2].reshape(-1, 2)
        if len(xy) < 3:
            continue
        # pixel j's centre sits at j + 0.5 in edge coordinates, at j in scikit-image's
        xy = to_preprocessed(xy, width, height, side) - 0.5
        mask |= polygon2mask((side, side), xy[:, ::-1])
    return mask


def dilate_hole(hole: np.ndarray, pixels: int = DILATE_PX) -> np.ndarray:
    """``hole`` grown by ``pixels``: every pixel within that Euclidean distance of a hole pixel
    joins it (binary dilation by a disk, scipy.ndimage with scikit-image's ``disk``)."""
    if pixels < 0:
        raise ValueError(f"a hole is grown by 0 or more pixels, not {pixels}")
    hole = np.asarray(hole, dtype=bool)
    if pixels == 0 or not hole.any():
        return hole.copy()
    from scipy import ndimage  # lazily: scipy and scikit-image are heavy
    from skimage.morphology import disk

    return ndimage.binary_dilation(hole, structure=disk(pixels).astype(bool))


def coco_object(instances: dict, image_id: int, side: int, height: int | None = None, *,
                min_ratio: float = OBJECT_MIN_RATIO, max_ratio: float = OBJECT_MAX_RATIO,
                dilate: int = DILATE_PX) -> np.ndarray | None:
    """The hole of object removal for COCO image ``image_id`` in its preprocessed ``side`` x
    ``side`` version, or None when it has no suitable object.

    The object is the largest non-crowd polygon object whose part *inside the centre crop*
    covers between ``min_ratio`` and ``max_ratio`` of the preprocessed image (an object the crop
    cut away is never chosen); its hole is then grown by ``dilate`` pixels. ``height``, if given,
    must equal ``side`` (an older call passed the square's width and height).
    """
    if height is not None and height != side:
        raise ValueError(f"object holes are drawn in the preprocessed {side}x{side} square, not "
                         f"{side}x{height}: pass the profile's image_size as side")
    image = next((im for im in instances["images"] if im["id"] == image_id), None)
    if image is None:
        return None
    best, best_pixels = None, 0
    for ann in instances["annotations"]:
        if ann["image_id"] != image_id or ann.get("iscrowd", 0) or not isinstance(ann["segmentation"], list):
            continue
        mask = polygons_mask(ann["segmentation"], image["width"], image["height"], side)
        pixels = int(mask.sum())
        if min_ratio <= pixels / side ** 2 <= max_ratio and pixels > best_pixels:
            best, best_pixels = mask, pixels
    return None if best is None else dilate_hole(best, dilate)


def moved_hole(hole: np.ndarray, seed: int | Sequence[int]) -> np.ndarray:
    """``hole`` with the same pixels in the same arrangement, its bounding box moved to a place
    drawn uniformly (seeded) among those where it stays wholly inside the image: the same area and
    shape, at a new position."""
    hole = np.asarray(hole, dtype=bool)
    out = np.zeros_like(hole)
    if not hole.any():
        return out
    rows, cols = np.nonzero(hole)
    patch = hole[rows.min():rows.max() + 1, cols.min():cols.max() + 1]
    rng = np.random.default_rng(seed)
    top = int(rng.integers(0, hole.shape[0] - patch.shape[0] + 1))
    left = int(rng.integers(0, hole.shape[1] - patch.shape[1] + 1))
    out[top:top + patch.shape[0], left:left + patch.shape[1]] = patch
    return out


def matched_holes(real_holes: Sequence[np.ndarray], seed: int) -> list[np.ndarray]:
    """Holes for generated images, which have no annotations, of matched area and shape.

    Generated image i gets the object hole of real photograph i, moved to a random place where it
    fits wholly inside the image (:func:`moved_hole`, seeded by ``seed`` and i). Each generated
    hole has exactly the area and outline of its real counterpart, so the two sets' holes come
    from one distribution of sizes and shapes and a difference in the fills cannot come from
    harder holes; only the position is new, since there is no annotated object to take it from.
    The same seed gives the same holes.
    """
    if seed < 0:
        raise ValueError(f"the seed of matched holes is a non-negative integer, not {seed}")
    return [moved_hole(hole, [seed, i]) for i, hole in enumerate(real_holes)]


def load_instances(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MaskError(f"{path} is not a COCO instances file ({exc}); it comes from "
                        f"annotations_trainval2017.zip (the data step extracts it)") from None


def from_folder(folder: Path, key: str, width: int, height: int) -> np.ndarray:
    """The user's mask for image ``key``: ``folder/key.png`` (any image file with that stem).

    White (or any value above half) marks the hole; it is resized to the image with nearest
    neighbours so that it stays binary.
    """
    folder = Path(folder)
    candidates = sorted(folder.glob(f"{key}.*"))
    if not candidates:
        raise MaskError(f"no mask for {key!r} in {folder}: add {key}.png (white = hole)")
    try:
        img = load_rgb(candidates[0], min_side=1).convert("L")
    except BadImage as exc:
        raise MaskError(f"{candidates[0]}: {exc}") from None
    arr = np.asarray(img.resize((width, height), Image.Resampling.NEAREST)) > 127
    if not arr.any():
        raise MaskError(f"{candidates[0]} has no hole (no white pixel): white marks what to fill")
    if arr.all():
        raise MaskError(f"{candidates[0]} is all hole: leave the pixels to keep black")
    return arr
