"""Chapter 3: one interface for every inpainting method, ``inpainter(image, hole) -> image``.

- ``image``: a PIL RGB image, any size.
- ``hole``: a boolean numpy array of the image's height x width, **True where pixels are missing**
  (whatever the model's own convention; each wrapper converts).
- returns a PIL RGB image of the same size, in which every pixel outside the hole is the input's
  pixel (the methods fill the hole; the wrappers paste the rest back), so scores compare fills.

``helpers.inpaint.step.build(name, profile, device)`` builds one by name.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from PIL import Image


class Inpainter(Protocol):
    name: str

    def __call__(self, image: Image.Image, hole: np.ndarray) -> Image.Image: ...


def composite(original: Image.Image, filled: Image.Image, hole: np.ndarray) -> Image.Image:
    """``filled`` inside the hole, ``original`` everywhere else."""
    a = np.asarray(original.convert("RGB"))
    b = np.asarray(filled.convert("RGB").resize(original.size, Image.Resampling.BICUBIC))
    return Image.fromarray(np.where(hole[..., None], b, a))


def check_inputs(image: Image.Image, hole: np.ndarray) -> None:
    if hole.dtype != bool or hole.shape != (image.size[1], image.size[0]):
        raise ValueError(f"hole must be a boolean array of shape {(image.size[1], image.size[0])} "
                         f"(True = missing); got {hole.dtype} {hole.shape}")


class Classical:
    """OpenCV's Telea and Navier-Stokes methods, scikit-image's biharmonic: no weights, offline."""

    def __init__(self, method: str, radius: int = 5):
        self.name, self.radius = method, radius

    def __call__(self, image: Image.Image, hole: np.ndarray) -> Image.Image:
        check_inputs(image, hole)
        rgb = np.asarray(image.convert("RGB"))
        if self.name == "biharmonic":
            from skimage.restoration import inpaint_biharmonic

            out = inpaint_biharmonic(rgb, hole, channel_axis=-1, split_into_regions=True)
            filled = Image.fromarray((np.clip(out, 0, 1) * 255).round().astype(np.uint8))
        else:
            import cv2

            flag = {"telea": cv2.INPAINT_TELEA, "navier_stokes": cv2.INPAINT_NS}[self.name]
            filled = Image.fromarray(cv2.inpaint(rgb, hole.astype(np.uint8) * 255, self.radius, flag))
        return composite(image, filled, hole)
