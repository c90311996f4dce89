"""Chapter 3: image-quality scores of inpainted images, what they share, and how two groups compare.

The paper scores inpainting results on real and on generated images with FID and NIQE. The book
computes these scores with the reference packages:

- :mod:`helpers.inpaint.niqe`: **NIQE** of each original and each result (pyiqa, with the
  pristine parameters carried in the repository, so nothing is downloaded);
- :mod:`helpers.inpaint.fid`: **FID** and **KID** between sets of images and **SIFID** between
  one original and its result (pytorch-fid's Inception, :mod:`helpers.inpaint.inception`);
- :mod:`helpers.inpaint.hole_scores`: **PSNR** and **SSIM** inside the hole against the original
  (scikit-image), and the hole's box for SIFID of the fill alone;
- :mod:`helpers.inpaint.lpips`: **LPIPS** of whole images and inside the hole (pyiqa);
- here, :func:`bootstrap_difference`: the difference of the mean scores of two groups (e.g. NIQE
  on generated minus on real images), with a bootstrap interval and p-value.

This module also holds what the scores share: their errors (among them :class:`MissingWeights`,
the one message for weights fetched on first use that are not there), images as tensors, and
batches of images of one size. It imports no torch at its top, so Chapter 3 compares scores without it.
Everything here returns plain numbers (floats, numpy arrays, dicts); no plotting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from ..core.stats import bootstrap, bootstrap_p_value


class QualityError(ValueError):
    """An input that a score is not defined for; the message says why."""


class MissingWeights(QualityError):
    """A score's network weights, fetched on first use, could not be loaded (offline, or a broken
    file); the message names each file, where it belongs and where it comes from."""


def missing_weights(what: str, files: list[tuple[str, Path, str]], exc: Exception) -> MissingWeights:
    """The error for weights that could not be fetched: which files (``(what it is, where it
    belongs, its address)``), and how to add them by hand. Shared by ``python -m helpers score``
    and the inpaint step, so that both say the same."""
    missing = [f for f in files if not Path(f[1]).exists()] or files
    lines = [f"  - {name}: {path}\n    (from {url})" for name, path, url in missing]
    return MissingWeights(f"{what} needs weight files that are fetched on first use, and they could not be "
                          f"loaded ({type(exc).__name__}: {exc}). Missing or unreadable:\n" + "\n".join(lines)
                          + "\nDownload each from its address on a machine with internet access and put it at "
                            "the path shown (the torch-hub cache, $TORCH_HOME/hub), then run again.")


def to_tensor(image: Image.Image):
    """An RGB PIL image as a float tensor (3, H, W) in [0, 1]."""
    import torch  # lazily: comparing scores needs no torch

    arr = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def batches_by_size(images: Sequence[Image.Image], batch_size: int) -> Iterable[list[int]]:
    """Indices of ``images`` in batches of equal size (a batch tensor needs one shape)."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, img in enumerate(images):
        groups.setdefault(img.size, []).append(i)
    for idx in groups.values():
        for start in range(0, len(idx), batch_size):
            yield idx[start:start + batch_size]


def _checked_scores(a, b, n_boot: int) -> tuple[np.ndarray, np.ndarray]:
    """Both groups as flat float arrays, refused when a bootstrap of them would mean nothing."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.size < 2 or b.size < 2:
        raise QualityError(f"each group needs at least two values; got {a.size} and {b.size}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise QualityError("the scores contain NaN or infinite values; drop them first and say how many")
    if n_boot < 100:
        raise QualityError(f"n_boot={n_boot} is too few for a 95% interval; use at least 1000")
    return a, b


def bootstrap_difference(a, b, n_boot: int = 2000, seed: int = 0, stat: Callable = np.mean,
                         level: float = 0.95) -> dict:
    """stat(b) - stat(a) with a percentile bootstrap interval and a two-sided bootstrap p-value.

    The groups are resampled independently with replacement (``n_boot`` times, seeded) by the
    book's one bootstrap, :func:`helpers.core.stats.bootstrap`. The p-value inverts the percentile
    interval (:func:`helpers.core.stats.bootstrap_p_value`): it is at least 1 / (n_boot + 1) and
    below 1 - level exactly when the interval excludes 0 (up to that resolution).
    """
    a, b = _checked_scores(a, b, n_boot)
    res = bootstrap(lambda x, y: float(stat(y) - stat(x)), [a, b], n=n_boot, seed=seed, level=level)
    return {
        "observed": res["estimate"],
        "ci_low": res["low"],
        "ci_high": res["high"],
        "level": res["level"],
        "p_value": bootstrap_p_value(res["values"]),
        "n_a": int(a.size),
        "n_b": int(b.size),
        "n_boot": res["n_boot"],
        "stat": getattr(stat, "__name__", str(stat)),
        "mean_a": float(a.mean()),
        "mean_b": float(b.mean()),
    }
