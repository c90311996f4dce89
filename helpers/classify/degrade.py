"""Chapter 6: the degradations of the robustness curves, and the blur + JPEG augmentation of robust training.

A detector that only works on pristine files is of little use: images on the web are recompressed,
resized, blurred and noisy. CNNDetection (Wang et al., CVPR 2020) and GenImage report accuracy under
such damage, so Chapter 6 does the same for the study's classifiers. Each degradation is a function
of a PIL image and a level, applied to both classes alike and to the image as stored (the study's
common format), before the model's own input transform. :data:`LEVELS` are the levels the curves
use; the first of each is the undegraded (or, for JPEG, nearly undegraded) image.

:class:`RobustAugment` is CNNDetection's training recipe ("Blur+JPEG (0.5)"): each training image,
of either class, is blurred with probability 0.5 (sigma ~ U[0, 3]) and JPEG-compressed with
probability 0.5 (quality ~ U{30..100}). Its randomness comes from a seed derived from (run seed,
epoch, image index) alone, never from a global generator, so a resumed run sees the same images.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torchvision.transforms.v2 import functional as TF

from .reencode import reencode_image

DEGRADATIONS = ("jpeg", "downscale", "blur", "noise")
# The levels of the curves, mildest first. JPEG: the qualities of CNNDetection's and GenImage's
# tables, down to 30 where blocking is plain to see. Downscale: the factor of the shorter side
# (then back to the stored size); 0.25 keeps 96 of 384 px, about a thumbnail. Blur: Gaussian
# sigma in pixels, 0-3 as CNNDetection's training range. Noise: Gaussian sigma on the [0, 1]
# scale; Chapter 2's augmentation adds 0.01-0.04 to generated training images only, so 0.01-0.02
# sits inside what the model saw on one class, 0.05 and 0.1 beyond it.
LEVELS = {
    "jpeg": (100, 90, 75, 50, 30),
    "downscale": (1.0, 0.75, 0.5, 0.25),
    "blur": (0.0, 0.5, 1.0, 2.0, 3.0),
    "noise": (0.0, 0.01, 0.02, 0.05, 0.1),
}
# How each level is read on a plot's axis.
AXIS = {"jpeg": "JPEG quality", "downscale": "scale factor", "blur": "blur sigma (px)",
        "noise": "noise sigma ([0, 1] scale)"}


def jpeg(img: Image.Image, quality: int) -> Image.Image:
    """Saved as JPEG at ``quality`` (4:2:0, as the shortcut check) and decoded, in memory."""
    return reencode_image(img, ("jpeg", int(quality)))


def downscale(img: Image.Image, factor: float) -> Image.Image:
    """Shrunk by ``factor`` (anti-aliased) and enlarged back to its own size: the detail finer
    than that scale is gone, as in an image that was posted small and enlarged."""
    if not 0 < factor <= 1:
        raise ValueError(f"downscale factor must be in (0, 1], got {factor!r}")
    if factor == 1:
        return img.convert("RGB")
    return reencode_image(img, ("resize", max(8, round(min(img.size) * factor))))


def blur(img: Image.Image, sigma: float) -> Image.Image:
    """Gaussian blur of standard deviation ``sigma`` pixels (kernel to 3 sigma, mirrored edges);
    0 leaves the image as it is."""
    if sigma < 0:
        raise ValueError(f"blur sigma must be 0 or more, got {sigma!r}")
    if sigma == 0:
        return img.convert("RGB")
    x = TF.to_image(img.convert("RGB")).float()
    size = 2 * math.ceil(3 * sigma) + 1
    out = TF.gaussian_blur(x, [size, size], [float(sigma), float(sigma)])
    return TF.to_pil_image(out.round().clamp(0, 255).to(torch.uint8))


def noise(img: Image.Image, sigma: float, seed: int = 0) -> Image.Image:
    """Gaussian noise of standard deviation ``sigma`` on the [0, 1] scale, clipped; ``seed`` makes
    it the same on every run (:func:`image_seed` gives each image its own)."""
    if sigma < 0:
        raise ValueError(f"noise sigma must be 0 or more, got {sigma!r}")
    if sigma == 0:
        return img.convert("RGB")
    x = np.asarray(img.convert("RGB"), dtype=np.float64) / 255.0
    x = x + np.random.default_rng(seed).normal(0.0, sigma, x.shape)
    return Image.fromarray(np.round(np.clip(x, 0.0, 1.0) * 255.0).astype(np.uint8))


def image_seed(img: Image.Image, seed: int) -> int:
    """A seed of the image's own pixels and ``seed``: each image gets its own noise, the same on
    every run and whatever order or thread reads it."""
    return zlib.crc32(img.tobytes(), int(seed) & 0xFFFFFFFF)


def check_level(kind: str, level) -> None:
    """Refuse an unknown degradation or a level outside its range, naming the valid ones."""
    if kind not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {kind!r}; valid: {', '.join(DEGRADATIONS)}")
    ok = {"jpeg": lambda v: float(v).is_integer() and 1 <= v <= 100, "downscale": lambda v: 0 < v <= 1,
          "blur": lambda v: v >= 0, "noise": lambda v: v >= 0}[kind]
    if not ok(level):
        raise ValueError(f"{kind} level {level!r} is out of range (e.g. {', '.join(map(str, LEVELS[kind]))})")


def degrade(img: Image.Image, kind: str, level, seed: int = 0) -> Image.Image:
    """``img`` under degradation ``kind`` at ``level`` (the noise seeded by the image and ``seed``)."""
    check_level(kind, level)
    if kind == "jpeg":
        return jpeg(img, int(level))
    if kind == "downscale":
        return downscale(img, float(level))
    if kind == "blur":
        return blur(img, float(level))
    return noise(img, float(level), image_seed(img, seed))


@dataclass(frozen=True)
class RobustAugment:
    """CNNDetection's "Blur+JPEG (0.5)" augmentation, drawn from (``seed``, epoch, index).

    A frozen dataclass so that DataLoader workers can pickle it; the same (seed, epoch, index)
    gives the same image in any process, before or after a restart. Blur comes first, then JPEG,
    as in Wang et al.'s code. Four numbers are always drawn, so one choice never shifts another.
    """

    seed: int
    blur_p: float = 0.5
    blur_max: float = 3.0
    jpeg_p: float = 0.5
    jpeg_min: int = 30
    jpeg_max: int = 100

    def draws(self, epoch: int, index: int) -> tuple[float | None, int | None]:
        """(blur sigma or None, JPEG quality or None) of one image in one epoch."""
        rng = np.random.default_rng([int(self.seed), int(epoch), int(index)])
        do_blur, sigma, do_jpeg = rng.random(), rng.uniform(0.0, self.blur_max), rng.random()
        quality = int(rng.integers(self.jpeg_min, self.jpeg_max + 1))
        return (sigma if do_blur < self.blur_p else None), (quality if do_jpeg < self.jpeg_p else None)

    def __call__(self, img: Image.Image, epoch: int, index: int) -> Image.Image:
        sigma, quality = self.draws(epoch, index)
        if sigma is not None:
            img = blur(img, sigma)
        if quality is not None:
            img = jpeg(img, quality)
        return img

    def settings(self) -> dict:
        """The recipe, for the run's settings: a run resumed with another one is refused."""
        return {"blur_p": self.blur_p, "blur_max": self.blur_max, "jpeg_p": self.jpeg_p,
                "jpeg_quality": [self.jpeg_min, self.jpeg_max]}
