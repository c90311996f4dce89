"""Chapter 3: ``python -m helpers bench score``, images/s of NIQE, SIFID, LPIPS and the Inception features.

Each is the book's own function (:mod:`helpers.inpaint.niqe`, :mod:`helpers.inpaint.fid`,
:mod:`helpers.inpaint.lpips`), batched on the device it picks (the GPU when there is one), on
random images of the profile's stored size. Their speed depends on the images' size, not their
content, and not on the networks' weights: when the published weights are not in the torch-hub
cache, the run uses seeded random stand-ins written into a temporary ``TORCH_HOME`` (never into
the user's cache), and says so.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings

import numpy as np
import torch
from PIL import Image

from ..inpaint import fid, inception, lpips, niqe
from .bench_timing import device_name, report, timed


def random_images(n: int, side: int, seed: int = 0) -> list[Image.Image]:
    """``n`` RGB images of ``side`` x ``side`` with uniform random pixels."""
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (side, side, 3), dtype=np.uint8)) for _ in range(n)]


@contextlib.contextmanager
def scoring_weights():
    """The published weights where the torch-hub cache holds them; otherwise stand-ins in a
    temporary ``TORCH_HOME`` for the time of the run. Yields whether stand-ins are used."""
    published = not inception.inception_weights_status()["standin"] and \
        not lpips.lpips_weights_status()["standin"] and \
        all(path.exists() for _, path, _ in inception.inception_weight_files() + lpips.lpips_weight_files())
    if published:
        yield False
        return
    before = os.environ.get("TORCH_HOME")
    with tempfile.TemporaryDirectory(prefix="bench-torch-home-") as home:
        os.environ["TORCH_HOME"] = home
        try:
            inception.ensure_standin_inception_weights()
            lpips.ensure_standin_lpips_weights()
            yield True
        finally:
            if before is None:
                os.environ.pop("TORCH_HOME", None)
            else:
                os.environ["TORCH_HOME"] = before


def _metrics(images: list[Image.Image], others: list[Image.Image], device) -> dict:
    """Each metric as a call on the whole set (pairs for the paired ones)."""
    pairs = list(zip(images, others))
    inception_net, sifid_net = inception.inception_model(3, device), fid.sifid_model(device)
    return {
        "niqe": lambda: niqe.niqe(images, device),
        "sifid": lambda: fid.sifid_pairs(pairs, model=sifid_net),
        "lpips": lambda: lpips.lpips_pairs(pairs, device),
        "inception_features": lambda: fid.pool_features(images, model=inception_net),
    }


def bench_score(profile, device: torch.device | None = None, n_images: int = 32, repeats: int = 1) -> dict:
    """Images/s of each metric on ``n_images`` random images of ``profile.image_size`` (after a
    warm-up call); a pair counts as one image for SIFID and LPIPS."""
    side = profile.image_size
    images, others = random_images(n_images, side, seed=0), random_images(n_images, side, seed=1)
    with scoring_weights() as standins, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the stand-ins' warnings: said once, below
        metrics = _metrics(images, others, device)
        dev = inception.model_device(inception.inception_model(3, device))
        seconds = {name: timed(fn, dev, repeats=repeats) for name, fn in metrics.items()}
    rates = {name: round(n_images / s, 3) for name, s in seconds.items()}
    result = report(f"score (NIQE, SIFID, LPIPS and Inception features in turn, {side}px)", n_images,
                    sum(seconds.values()), device_name(dev))
    for metric, rate in rates.items():
        print(f"bench score: {metric}: {rate:.2f} images/s", flush=True)
    note = f"random images of {side}x{side}, " + ("stand-in random weights (speed only)" if standins
                                                  else "the published weights")
    print(f"bench score: {note}", flush=True)
    return result | {"images_per_s_by_metric": rates, "img_size": side, "standin_weights": standins, "note": note}
