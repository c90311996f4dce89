"""Chapter 3: FID between sets of inpainted images and SIFID between one original and its result.

**FID** (Heusel et al. 2017) fits one Gaussian to the 2048-d pool features of *a set* of images and
another to a second set, and takes the Frechet distance between the two Gaussians::

    d^2 = ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))

The features come from pytorch-fid's InceptionV3 (:mod:`helpers.inpaint.inception`). The distance
is pytorch-fid's ``calculate_frechet_distance`` up to 256 dimensions; for the 2048-d features the
same formula is evaluated through symmetric eigenvalues / singular values
(:func:`frechet_distance`), because scipy's ``sqrtm`` of a singular 2048x2048 product takes about
two minutes on a 2-core CPU; the tests check that both routes agree.

**Why there is no FID of one image.** The paper's Table 2 lists an FID per image. With the standard
2048-d pool features one image is *one sample*: its mean is the feature vector itself and its
covariance is undefined (the unbiased estimate divides by n - 1 = 0) or, taken as zero, makes the
distance the plain squared Euclidean distance of two feature vectors, which is not FID and not
comparable with any published FID. Even a few hundred images give a singular 2048x2048 covariance
(rank at most n - 1), which is why FID is reported on sets of thousands. So this module reports FID
between *sets* (all real-image results vs their originals, all generated-image results vs theirs).

**SIFID** (Shaham, Dekel and Michaeli, SinGAN, 2019) is the per-image score that *is* defined: it
takes the feature map of an early Inception layer (pytorch-fid's block 0: the 64 channels after the
first max-pool), treats every spatial position as one sample, and fits the Gaussians to those
positions. A 64x64 image gives 14x14 = 196 samples of a 64-d feature and a 384x384 image 94x94 =
8,836, so the covariance is estimated from many more samples than dimensions and the Frechet
distance between one original and its inpainted result is well defined. As in the reference, images
are fed at their own resolution (no resizing to 299); SIFID compares the internal patch statistics
of two images, so it is a per-image companion to the paper's FID, not the same number.

**KID** (Binkowski, Sutherland, Arbel and Gretton, "Demystifying MMD GANs", 2018) is FID's
companion for small sets: the squared maximum mean discrepancy between the two sets' pool features
under the polynomial kernel k(x, y) = (x.y / d + 1)^3, with the *unbiased* estimator
(:func:`kernel_distance`). FID's estimate is biased upwards by an amount that depends on the number
of images; KID's has no bias, so KIDs of sets of different sizes can be compared, and a KID near 0
(it may be slightly negative) means the sets cannot be told apart. As torch-fidelity and clean-fid
do, sets of more than 1,000 images are scored on 100 random subsets of 1,000 and averaged; smaller
sets are scored whole, with no subsets.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .inception import inception_model, model_device
from .quality import QualityError, batches_by_size, to_tensor

SIFID_BLOCK = 0  # pytorch-fid's first block: 64 channels after the first max-pool


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased) covariance of samples in rows; refuses fewer than two samples."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or features.shape[0] < 2:
        raise QualityError(f"a Gaussian needs at least two samples (rows); got shape {features.shape}: "
                           f"the covariance of one sample is undefined")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def _trace_sqrt_product(centred_a: np.ndarray, centred_b: np.ndarray) -> float:
    """tr((S_a S_b)^(1/2)) for the unbiased covariances of two centred sample matrices, exactly.

    The eigenvalues of S_a S_b are real and non-negative (it is similar to S_a^(1/2) S_b S_a^(1/2)),
    so the trace of its square root is the nuclear norm of S_a^(1/2) S_b^(1/2). With fewer samples
    than dimensions it is cheaper from the samples: with S = A^T A / (n - 1), the non-zero
    eigenvalues of S_a S_b are the squared singular values of A_a A_b^T over (n_a - 1)(n_b - 1).
    """
    from scipy import linalg

    (na, d), nb = centred_a.shape, centred_b.shape[0]
    scale = np.sqrt((na - 1) * (nb - 1))
    if min(na, nb) <= d:
        return float(linalg.svdvals(centred_a @ centred_b.T).sum() / scale)
    sigma_a = centred_a.T @ centred_a / (na - 1)
    sigma_b = centred_b.T @ centred_b / (nb - 1)
    w, v = linalg.eigh(sigma_a)
    root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    ev = linalg.eigvalsh(root_a @ sigma_b @ root_a)
    return float(np.sqrt(np.clip(ev, 0, None)).sum())


def _exact_frechet(features_a, features_b, mu_a, sigma_a, mu_b, sigma_b) -> float:
    """The Frechet distance with the trace term from :func:`_trace_sqrt_product`."""
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    diff = mu_a - mu_b
    tr_a, tr_b = float(np.trace(np.atleast_2d(sigma_a))), float(np.trace(np.atleast_2d(sigma_b)))
    return float(diff @ diff + tr_a + tr_b - 2 * _trace_sqrt_product(a - mu_a, b - mu_b))


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray, method: str = "auto") -> float:
    """Frechet distance between Gaussians fitted to two sets of feature rows.

    ``method="pytorch-fid"``: pytorch-fid's ``calculate_frechet_distance`` on the means and
    covariances (scipy's general ``sqrtm``; adds 1e-6 to the diagonals when the product is
    singular). ``method="exact"``: the same formula with the trace term computed through symmetric
    eigenvalues / singular values (see ``_trace_sqrt_product``), which needs no matrix square root
    of a non-symmetric matrix; on 2048-d features it takes seconds where ``sqrtm`` takes minutes on
    a small CPU, and it is exact for singular covariances too. ``"auto"``: pytorch-fid up to 256
    dimensions (SIFID's 64), exact above (FID's 2048). The tests check that both agree.
    """
    from pytorch_fid.fid_score import calculate_frechet_distance

    mu_a, sigma_a = gaussian_stats(features_a)
    mu_b, sigma_b = gaussian_stats(features_b)
    if mu_a.shape != mu_b.shape:
        raise QualityError(f"features of {mu_a.shape[0]} and {mu_b.shape[0]} dimensions cannot be compared")
    if method == "auto":
        method = "pytorch-fid" if mu_a.shape[0] <= 256 else "exact"
    if method == "pytorch-fid":
        return float(calculate_frechet_distance(mu_a, np.atleast_2d(sigma_a), mu_b, np.atleast_2d(sigma_b)))
    if method != "exact":
        raise QualityError(f"unknown method {method!r}; choose auto, pytorch-fid or exact")
    return _exact_frechet(features_a, features_b, mu_a, sigma_a, mu_b, sigma_b)


def _resized_batch(images: Sequence[Image.Image], device: torch.device) -> torch.Tensor:
    """The images at 299x299, with the bilinear interpolation pytorch-fid's model itself uses."""
    return torch.stack([F.interpolate(to_tensor(img)[None], size=(299, 299), mode="bilinear",
                                      align_corners=False)[0] for img in images]).to(device)


def pool_features(images: Sequence[Image.Image], model: torch.nn.Module | None = None,
                  device: str | torch.device | None = None, batch_size: int = 32) -> np.ndarray:
    """The 2048-d pool features of each image, (n, 2048) float64, as pytorch-fid computes them.

    Each image is resized to 299x299 here (so images of any size can share a batch); the model's
    own resize is then the identity.
    """
    model = model if model is not None else inception_model(3, device)
    images = list(images)
    feats = np.empty((len(images), 2048), dtype=np.float64)
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            out = model(_resized_batch(chunk, model_device(model)))[0]
            if out.shape[2:] != (1, 1):
                out = F.adaptive_avg_pool2d(out, (1, 1))
            feats[start:start + len(chunk)] = out.flatten(1).double().cpu().numpy()
    return feats


def fid(images_a: Sequence[Image.Image], images_b: Sequence[Image.Image],
        device: str | torch.device | None = None, batch_size: int = 32,
        model: torch.nn.Module | None = None, method: str = "auto") -> float:
    """Set-level FID between two sets of images (2048-d pool features of pytorch-fid's Inception).

    Each set needs at least two images; with fewer than 2,049 the covariances are singular and FID
    is biased upwards, so compare FIDs only between sets of the same size.
    """
    if len(images_a) < 2 or len(images_b) < 2:
        raise QualityError("FID compares two *sets*: each needs at least two images "
                           "(see the module docstring; use sifid for one pair)")
    model = model if model is not None else inception_model(3, device)
    return frechet_distance(pool_features(images_a, model, batch_size=batch_size),
                            pool_features(images_b, model, batch_size=batch_size), method=method)


KID_SUBSET_SIZE = 1000  # torch-fidelity's and clean-fid's subset size
KID_SUBSETS = 100  # and their number of subsets, used only for sets larger than one subset


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased MMD^2 of two samples under k(x, y) = (x.y / d + 1)^3 (Binkowski et al. 2018,
    eq. 2): the mean of k over pairs i != j within each sample, minus twice its mean across them."""
    n, m, d = x.shape[0], y.shape[0], x.shape[1]
    k_xx = (x @ x.T / d + 1) ** 3
    k_yy = (y @ y.T / d + 1) ** 3
    k_xy = (x @ y.T / d + 1) ** 3
    within_x = (k_xx.sum() - np.trace(k_xx)) / (n * (n - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within_x + within_y - 2 * k_xy.mean())


def kernel_distance(features_a: np.ndarray, features_b: np.ndarray, subset_size: int = KID_SUBSET_SIZE,
                    subsets: int = KID_SUBSETS, seed: int = 0) -> float:
    """KID: the unbiased MMD^2 between two sets of feature rows (see the module docstring).

    Sets of at most ``subset_size`` rows each are scored whole; otherwise the mean over ``subsets``
    seeded random subsets of ``min(n_a, n_b, subset_size)`` rows of each, drawn without
    replacement, as torch-fidelity's ``kid_subsets`` and clean-fid's ``kernel_distance`` do.
    """
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[0] < 2 or b.shape[0] < 2:
        raise QualityError(f"KID compares two sets of at least two feature rows each; got shapes "
                           f"{a.shape} and {b.shape}")
    if a.shape[1] != b.shape[1]:
        raise QualityError(f"features of {a.shape[1]} and {b.shape[1]} dimensions cannot be compared")
    if max(a.shape[0], b.shape[0]) <= subset_size:
        return _mmd2_unbiased(a, b)
    size = max(2, min(a.shape[0], b.shape[0], subset_size))
    rng = np.random.default_rng(seed)
    values = [_mmd2_unbiased(a[rng.choice(a.shape[0], size, replace=False)],
                             b[rng.choice(b.shape[0], size, replace=False)]) for _ in range(subsets)]
    return float(np.mean(values))


def kid(images_a: Sequence[Image.Image], images_b: Sequence[Image.Image],
        device: str | torch.device | None = None, batch_size: int = 32,
        model: torch.nn.Module | None = None) -> float:
    """Set-level KID between two sets of images, on the same 2048-d pool features as :func:`fid`."""
    if len(images_a) < 2 or len(images_b) < 2:
        raise QualityError("KID compares two *sets*: each needs at least two images")
    model = model if model is not None else inception_model(3, device)
    return kernel_distance(pool_features(images_a, model, batch_size=batch_size),
                           pool_features(images_b, model, batch_size=batch_size))


def sifid_model(device: str | torch.device | None = None) -> torch.nn.Module:
    """pytorch-fid's InceptionV3 up to block 0, at the image's own resolution (as in SinGAN)."""
    return inception_model(SIFID_BLOCK, device, resize_input=False)


def _check_positions(images: Sequence[Image.Image], features: list[np.ndarray]) -> None:
    for i, feats in enumerate(features):
        if feats.shape[0] < 2:
            raise QualityError(f"image {i} ({images[i].size[0]}x{images[i].size[1]}) gives "
                               f"{feats.shape[0]} feature position(s); SIFID needs images of at "
                               f"least ~16 px a side (and ~75 px for a full-rank 64x64 covariance)")


def _position_features(images: Sequence[Image.Image], model: torch.nn.Module,
                       batch_size: int) -> list[np.ndarray]:
    """For each image, its block-0 feature map as (positions, 64) float64."""
    dev = model_device(model)
    out: list[np.ndarray | None] = [None] * len(images)
    with torch.no_grad():
        for idx in batches_by_size(images, batch_size):
            fmap = model(torch.stack([to_tensor(images[i]) for i in idx]).to(dev))[0]  # (b, 64, h, w)
            rows = fmap.flatten(2).transpose(1, 2).double().cpu().numpy()
            for j, i in enumerate(idx):
                out[i] = rows[j]
    _check_positions(images, out)
    return out


def sifid_pairs(pairs: Sequence[tuple[Image.Image, Image.Image]], model: torch.nn.Module | None = None,
                device: str | torch.device | None = None, batch_size: int = 16) -> np.ndarray:
    """SIFID of each (original, result) pair, float64; 0 for identical images, larger is worse."""
    pairs = list(pairs)
    if not pairs:
        return np.empty(0, dtype=np.float64)
    model = model if model is not None else sifid_model(device)
    originals = _position_features([p[0] for p in pairs], model, batch_size)
    results = _position_features([p[1] for p in pairs], model, batch_size)
    return np.array([frechet_distance(o, r) for o, r in zip(originals, results)], dtype=np.float64)


def sifid(original: Image.Image, result: Image.Image, model: torch.nn.Module | None = None,
          device: str | torch.device | None = None) -> float:
    """SIFID between one original and its result (Shaham et al. 2019); see the module docstring."""
    return float(sifid_pairs([(original, result)], model=model, device=device)[0])
