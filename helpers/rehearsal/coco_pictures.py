"""Dress rehearsal of Chapter 1's data step: the stand-in COCO's photographs, and its bad files.

A picture that is not flat (a gradient, a smooth random field, the objects' polygons, sensor-like
noise), so that resizing, JPEG encoding and the classifiers see texture; and the bad files real
downloads can be (truncated, greyscale, CMYK), so that the data step meets each one.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw


def paint(width: int, height: int, objects: list[dict], seed: int) -> Image.Image:
    """A picture that is not flat: a two-colour gradient, a smooth random field, the objects'
    polygons in their own colours, and sensor-like noise; different for every seed."""
    rng = np.random.default_rng(seed)
    t = _gradient(rng, width, height)[..., None]
    low, high = rng.uniform(0, 255, 3), rng.uniform(0, 255, 3)
    field = np.asarray(Image.fromarray(rng.uniform(0, 255, (4, 5, 3)).astype(np.uint8)).resize(
        (width, height), Image.Resampling.BICUBIC), dtype=np.float32)
    base = low.astype(np.float32) + t * (high - low).astype(np.float32)
    picture = Image.fromarray(np.clip(0.6 * base + 0.4 * field, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    for obj in objects:
        if not obj["iscrowd"]:
            poly = obj["segmentation"][0]
            colour = tuple(int(c) for c in rng.integers(0, 256, 3))
            draw.polygon(list(zip(poly[0::2], poly[1::2])), fill=colour)
    noise = rng.standard_normal((height, width, 3), dtype=np.float32) * 6
    return Image.fromarray(np.clip(np.asarray(picture, dtype=np.float32) + noise, 0, 255).astype(np.uint8))


def _gradient(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    angle = rng.uniform(0, 2 * np.pi)
    xs = np.arange(width, dtype=np.float32)[None, :] / width
    ys = np.arange(height, dtype=np.float32)[:, None] / height
    ramp = np.cos(angle) * xs + np.sin(angle) * ys
    return (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)


def encode(picture: Image.Image, kind: str | None) -> bytes:
    buf = io.BytesIO()
    if kind == "greyscale":
        picture = picture.convert("L")
    elif kind == "cmyk":
        picture = picture.convert("CMYK")
    picture.save(buf, format="JPEG", quality=90)
    data = buf.getvalue()
    return data[:int(len(data) * 0.6)] if kind == "truncated" else data
