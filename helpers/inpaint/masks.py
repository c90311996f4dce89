"""Chapter 3: holes to inpaint. Every mask is a boolean array, True where pixels are missing.

- ``free_form``: seeded irregular strokes, as both inpainting papers train and test with, drawn
  until the hole covers the asked share of the image. The same index gives the same mask, so real
  and generated images get exactly the same holes.
- ``coco_object``: the outline of an annotated object of a COCO photograph (object removal, as in
  the paper's Fig. 6); real images only, since generated images have no annotations.
- ``from_folder``: masks a user drew (white = hole), one per image, matched by file name.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..data.images import BadImage, load_rgb


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


def coco_object(instances: dict, image_id: int, width: int, height: int,
                min_ratio: float = 0.02, max_ratio: float = 0.3) -> np.ndarray | None:
    """The largest non-crowd object of ``image_id`` covering between ``min_ratio`` and ``max_ratio``
    of the original image, rasterised at (width, height), or None."""
    image = next((im for im in instances["images"] if im["id"] == image_id), None)
    if image is None:
        return None
    sx, sy = width / image["width"], height / image["height"]
    best = None
    for ann in instances["annotations"]:
        if ann["image_id"] != image_id or ann.get("iscrowd", 0) or not isinstance(ann["segmentation"], list):
            continue
        share = ann["area"] / (image["width"] * image["height"])
        if min_ratio <= share <= max_ratio and (best is None or ann["area"] > best["area"]):
            best = ann
    if best is None:
        return None
    canvas = Image.new("L", (width, height), 0)
    draw = ImageDraw.Draw(canvas)
    for poly in best["segmentation"]:
        points = [(poly[i] * sx, poly[i + 1] * sy) for i in range(0, len(poly) - 1, 2)]
        if len(points) >= 3:
            draw.polygon(points, fill=255)
    return np.asarray(canvas) > 0


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
