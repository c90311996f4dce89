"""Chapter 2: the paper's Algorithm 1, augmenting generated training images, as we read it.

The paper grows its 7,000 generated training images to 10,000 by applying, at random, random
rotation, Gaussian noise, brightness and contrast changes and colour jitter (sections 4 and 5.1;
the pseudo-code itself is not reproduced in the text). Our reading, stated in Chapter 2:

- the sources are drawn from the generated training images by a seeded permutation (each image is
  used once before any is used twice; :func:`plan`);
- each new image applies a non-empty subset of the four techniques, drawn uniformly from the 15
  possible subsets, with each parameter drawn uniformly from its range (``AugmentRanges``;
  :func:`draw`);
- the operations are applied in a fixed order (:func:`apply`), each image with its own seed
  (:func:`aug_seed`), so a rerun makes the same pixels.

The ``augment`` step that runs it over a profile's images and records them is
:mod:`helpers.augment.step`.
"""

from __future__ import annotations

import hashlib
import itertools
import math

import numpy as np
from PIL import Image

TECHNIQUES = ("rotation", "noise", "brightness_contrast", "color_jitter")
# Every non-empty subset, in a fixed order: a draw picks one uniformly.
SUBSETS = [c for k in range(1, 5) for c in itertools.combinations(TECHNIQUES, k)]


class AugmentError(RuntimeError):
    """The augmentation step cannot run; the message says what to do."""


def aug_seed(base_seed: int, label_name: str, index: int) -> int:
    """The seed of augmented image ``index`` of a class: its draw and its noise depend on nothing else."""
    digest = hashlib.sha256(f"{base_seed}:augment:{label_name}:{index}".encode()).hexdigest()
    return int(digest[:15], 16)


def draw(rng: np.random.Generator, ranges) -> dict:
    """A subset of the techniques and their parameters, drawn from ``ranges``."""
    ops = SUBSETS[int(rng.integers(len(SUBSETS)))]
    params: dict = {"ops": list(ops)}
    if "rotation" in ops:
        params["angle"] = float(rng.uniform(-ranges.rotation_deg, ranges.rotation_deg))
    if "noise" in ops:
        params["sigma"] = float(rng.uniform(*ranges.noise_sigma))
    if "brightness_contrast" in ops:
        params["brightness"] = float(rng.uniform(*ranges.brightness))
        params["contrast"] = float(rng.uniform(*ranges.contrast))
    if "color_jitter" in ops:
        params["saturation"] = float(rng.uniform(*ranges.saturation))
        params["hue"] = float(rng.uniform(*ranges.hue))
    return params


def plan(profile, pool, label_name: str) -> list[dict]:
    """The seeded list of ``profile.augment_count`` augmented images: the index, source row of
    ``pool`` (a table of training images), seed and drawn parameters of each."""
    if pool.empty:
        raise AugmentError(f"no {label_name} training images to augment: run `python -m helpers data` "
                           f"and `generate` for profile '{profile.name}' first")
    order = np.random.default_rng([profile.seed, len(pool)]).permutation(len(pool))
    items = []
    for i in range(profile.augment_count):
        src = pool.iloc[int(order[i % len(pool)])]
        seed = aug_seed(profile.seed, label_name, i)
        params = draw(np.random.default_rng(seed), profile.augment)
        items.append(dict(index=i, source=src, seed=seed, params=params))
    return items


def crop_scale(width: int, height: int, angle_deg: float) -> float:
    """Largest scale s such that an s-scaled, centred crop of the same shape has no empty corner."""
    a = math.radians(abs(angle_deg))
    c, s = math.cos(a), math.sin(a)
    return min(width / (width * c + height * s), height / (width * s + height * c))


def apply(img: Image.Image, params: dict, noise_seed: int) -> Image.Image:
    """Apply the drawn operations in a fixed order: rotation, brightness/contrast, colour, noise.

    A rotation is followed by the largest centred crop without empty corners, scaled back to the
    image's size, so no black wedge tells an augmented image apart.
    """
    import torch  # lazily: drawing and planning need no torch
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as TF

    x = TF.to_dtype(TF.to_image(img), torch.float32, scale=True)
    h, w = x.shape[-2:]
    if "angle" in params:
        x = TF.rotate(x, params["angle"], interpolation=InterpolationMode.BILINEAR)
        k = crop_scale(w, h, params["angle"])
        x = TF.center_crop(x, [max(1, int(h * k)), max(1, int(w * k))])
        x = TF.resize(x, [h, w], interpolation=InterpolationMode.BICUBIC, antialias=True).clamp(0, 1)
    if "brightness" in params:
        x = TF.adjust_contrast(TF.adjust_brightness(x, params["brightness"]), params["contrast"])
    if "saturation" in params:
        x = TF.adjust_hue(TF.adjust_saturation(x, params["saturation"]), params["hue"])
    if "sigma" in params:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(noise_seed)
            x = TF.gaussian_noise(x, sigma=params["sigma"], clip=True)
    arr = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return Image.fromarray(arr, mode="RGB")
