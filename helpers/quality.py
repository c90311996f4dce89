"""Image-quality scores of Chapter 4: NIQE per image, FID per set, SIFID per pair, and a bootstrap.

The paper scores inpainting results on real and on generated images with FID and NIQE. This module
gives the book those scores, computed by the reference packages (pyiqa for NIQE, pytorch-fid for
the Inception features and the Frechet distance), and a bootstrap to compare the two groups.

**NIQE** (Mittal, Soundararajan and Bovik 2013; lower is better) measures how far the statistics of
an image's 96x96 patches lie from a multivariate Gaussian fitted once on pristine photographs (the
LIVE pristine images). Those 36 means and the 36x36 covariance are data, carried in the repository
(``helpers/data/niqe_pris_params.npz``, from the basicsr 1.4.2 source distribution; see its
README), checked against their published sha256, and handed to pyiqa's NIQE as a ``.mat`` file
under the data root: pyiqa never downloads anything.

**FID** (Heusel et al. 2017) fits one Gaussian to the 2048-d pool features of *a set* of images and
another to a second set, and takes the Frechet distance between the two Gaussians::

    d^2 = ||mu_a - mu_b||^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2))

The features come from pytorch-fid's InceptionV3. The distance is pytorch-fid's
``calculate_frechet_distance`` up to 256 dimensions; for the 2048-d features the same formula is
evaluated through symmetric eigenvalues / singular values (:func:`frechet_distance`), because
scipy's ``sqrtm`` of a singular 2048x2048 product takes about two minutes on a 2-core CPU; the
tests check that both routes agree.

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
positions. A 64x64 image gives 14x14 = 196 samples of a 64-d feature and a 384x384 image 93x93 =
8,649, so the covariance is estimated from many more samples than dimensions and the Frechet
distance between one original and its inpainted result is well defined. As in the reference, images
are fed at their own resolution (no resizing to 299); SIFID compares the internal patch statistics
of two images, so it is a per-image companion to the paper's FID, not the same number.

**Offline Inception for the smoke profile.** pytorch-fid loads its weights with
``torch.hub.load_state_dict_from_url`` from the torch-hub cache
(``$TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth``) and downloads them when the
file is missing. :func:`ensure_standin_inception_weights` puts a file with *random* weights of the
same architecture there, when (and only when) no file is there, so pytorch-fid's own loading path
runs unchanged offline. Every number computed with it is a pipeline check, not a finding;
:func:`inception_weights_status` says which weights are in use (the published file's sha256 starts
with ``6726825d``, torch-hub's naming convention).

**Bootstrap.** :func:`bootstrap_difference` resamples the two groups of per-image scores (e.g. NIQE
on real vs on generated images) to give the difference of means, a 95% percentile interval and a
two-sided p-value.

Everything here returns plain numbers (floats, numpy arrays, dicts); no plotting.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .download import file_digest
from .paths import atomic_write_bytes, data_root

# --------------------------------------------------------------------------------------- NIQE ----

DATA_DIR = Path(__file__).resolve().parent / "data"
NIQE_PARAMS_FILE = DATA_DIR / "niqe_pris_params.npz"
NIQE_PARAMS_SHA256 = "2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296"
NIQE_BLOCK = 96  # pyiqa's (and the reference's) patch side; partial blocks are dropped

_NIQE_METRICS: dict = {}


class QualityError(ValueError):
    """An input that a score is not defined for; the message says why."""


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def sha256_of(path: Path) -> str:
    return file_digest(path, "sha256")


def niqe_pristine_params(verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The LIVE pristine parameters (mu 1x36, cov 36x36, float64) carried in ``helpers/data``."""
    if verify:
        found = sha256_of(NIQE_PARAMS_FILE)
        if found != NIQE_PARAMS_SHA256:
            raise QualityError(f"{NIQE_PARAMS_FILE} has sha256 {found}, not the published "
                               f"{NIQE_PARAMS_SHA256}; restore the file from the repository")
    with np.load(NIQE_PARAMS_FILE) as params:
        mu = np.asarray(params["mu_pris_param"], dtype=np.float64).reshape(1, 36)
        cov = np.asarray(params["cov_pris_param"], dtype=np.float64).reshape(36, 36)
    return mu, cov


def niqe_mat_path() -> Path:
    return data_root() / "cache" / "niqe_pris_params.mat"


def write_niqe_mat() -> Path:
    """The carried parameters as the ``.mat`` pyiqa reads (keys mu_prisparam, cov_prisparam).

    Written atomically under the data root, and rewritten only when missing or different.
    """
    import scipy.io

    mu, cov = niqe_pristine_params()
    path = niqe_mat_path()
    if path.exists():
        try:
            have = scipy.io.loadmat(path)
            current = (np.array_equal(have["mu_prisparam"], mu)
                       and np.array_equal(have["cov_prisparam"], cov))
        except (OSError, ValueError, KeyError, scipy.io.matlab.MatReadError):
            current = False  # unreadable or damaged: write it again
        if current:
            return path
    buf = io.BytesIO()
    scipy.io.savemat(buf, {"mu_prisparam": mu, "cov_prisparam": cov})
    atomic_write_bytes(path, buf.getvalue())
    return path


def niqe_metric(device: str | torch.device | None = None):
    """pyiqa's NIQE on ``device`` with the carried parameters (built once per device and file)."""
    import pyiqa

    device = torch.device(device or default_device())
    path = write_niqe_mat()
    key = (str(device), str(path))
    if key not in _NIQE_METRICS:
        # create_metric forwards extra options to the NIQE arch, whose pretrained_model_path
        # replaces the download of its default parameters.
        _NIQE_METRICS[key] = pyiqa.create_metric("niqe", device=device, pretrained_model_path=str(path))
    return _NIQE_METRICS[key]


def _to_tensor(image: Image.Image) -> torch.Tensor:
    """An RGB PIL image as a float tensor (3, H, W) in [0, 1]."""
    arr = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr).permute(2, 0, 1).contiguous()


def _batches_by_size(images: Sequence[Image.Image], batch_size: int) -> Iterable[list[int]]:
    """Indices of ``images`` in batches of equal size (a batch tensor needs one shape)."""
    groups: dict[tuple[int, int], list[int]] = {}
    for i, img in enumerate(images):
        groups.setdefault(img.size, []).append(i)
    for idx in groups.values():
        for start in range(0, len(idx), batch_size):
            yield idx[start:start + batch_size]


def niqe(images: Sequence[Image.Image], device: str | torch.device | None = None,
         batch_size: int = 16) -> np.ndarray:
    """NIQE of each image (lower is better), float64, in the order given.

    Images of equal size are scored together in batches (on the GPU when there is one). NIQE needs
    at least two whole 96x96 patches to fit its Gaussian, so smaller images are refused.
    """
    images = list(images)
    for i, img in enumerate(images):
        w, h = img.size
        if (h // NIQE_BLOCK) * (w // NIQE_BLOCK) < 2:
            raise QualityError(f"image {i} is {w}x{h}: NIQE needs at least two whole "
                               f"{NIQE_BLOCK}x{NIQE_BLOCK} patches (e.g. 192x96)")
    out = np.full(len(images), np.nan, dtype=np.float64)
    if not images:
        return out
    metric = niqe_metric(device)
    dev = metric.device
    with torch.no_grad():
        for idx in _batches_by_size(images, batch_size):
            batch = torch.stack([_to_tensor(images[i]) for i in idx]).to(dev)
            scores = metric(batch).reshape(-1).double().cpu().numpy()
            out[idx] = scores
    return out


# ----------------------------------------------------------------------- Inception and FID -------

def inception_weights_path() -> Path:
    """Where pytorch-fid's loader looks: the torch-hub checkpoints cache, file named by its URL."""
    from pytorch_fid.inception import FID_WEIGHTS_URL

    name = os.path.basename(urlparse(FID_WEIGHTS_URL).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def _published_prefix() -> str:
    # torch-hub's convention: name-<first hex digits of the sha256>.ext
    stem = inception_weights_path().stem
    return stem.rsplit("-", 1)[-1].lower()


_STATUS_CACHE: dict = {}


def inception_weights_status() -> dict:
    """{'path', 'exists', 'standin', 'sha256'}: whether the weights in the cache are the published ones.

    A file whose sha256 does not start with the hash in its name (``6726825d``) is not the published
    one: the stand-in, or something else; either way its numbers are not comparable with papers.
    """
    path = inception_weights_path()
    if not path.exists():
        return {"path": str(path), "exists": False, "standin": None, "sha256": None}
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _STATUS_CACHE:
        _STATUS_CACHE[key] = sha256_of(path)
    digest = _STATUS_CACHE[key]
    return {"path": str(path), "exists": True, "standin": not digest.startswith(_published_prefix()),
            "sha256": digest}


def _standin_fid_inception(seed: int) -> torch.nn.Module:
    """An Inception v3 in pytorch-fid's FID layout (1008 classes, no aux head, FID blocks), random.

    Built here rather than through ``fid_inception_v3()``, which would try to download. The FID
    blocks have the parameters of torchvision's blocks (only their pooling differs), so the state
    dict has exactly the keys and shapes pytorch-fid's strict ``load_state_dict`` expects.
    """
    from pytorch_fid import inception as pfi

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = pfi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
        swaps = {
            "Mixed_5b": pfi.FIDInceptionA(192, pool_features=32),
            "Mixed_5c": pfi.FIDInceptionA(256, pool_features=64),
            "Mixed_5d": pfi.FIDInceptionA(288, pool_features=64),
            "Mixed_6b": pfi.FIDInceptionC(768, channels_7x7=128),
            "Mixed_6c": pfi.FIDInceptionC(768, channels_7x7=160),
            "Mixed_6d": pfi.FIDInceptionC(768, channels_7x7=160),
            "Mixed_6e": pfi.FIDInceptionC(768, channels_7x7=192),
            "Mixed_7b": pfi.FIDInceptionE_1(1280),
            "Mixed_7c": pfi.FIDInceptionE_2(2048),
        }
        for name, block in swaps.items():
            setattr(net, name, block)
        # He initialisation keeps activations of order one through the ~50 layers (batch norm is
        # the identity in eval mode with fresh running statistics), so features are not vanishing.
        for module in net.modules():
            if isinstance(module, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
            elif isinstance(module, torch.nn.BatchNorm2d):
                torch.nn.init.ones_(module.weight)
                torch.nn.init.zeros_(module.bias)
            elif isinstance(module, torch.nn.Linear):
                torch.nn.init.normal_(module.weight, std=0.01)
                torch.nn.init.zeros_(module.bias)
    return net


def ensure_standin_inception_weights(seed: int = 0) -> bool:
    """Make pytorch-fid loadable offline; True when the weights in the cache are not the published ones.

    If no file is at :func:`inception_weights_path`, write random weights of pytorch-fid's FID
    Inception there (seeded, so every run gets the same stand-in). An existing file is never
    replaced: the new file is linked into place, which fails if one appeared meanwhile.
    """
    path = inception_weights_path()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        torch.save(_standin_fid_inception(seed).state_dict(), buf)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.standin.tmp")
        with open(tmp, "wb") as fh:
            fh.write(buf.getvalue())
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, path)  # atomic and never overwrites
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return bool(inception_weights_status()["standin"])


_INCEPTIONS: dict = {}


def inception_model(block: int = 3, device: str | torch.device | None = None,
                    resize_input: bool = True) -> torch.nn.Module:
    """pytorch-fid's InceptionV3 returning ``block`` (3: 2048-d pool, 0: 64-ch first max-pool), eval.

    Built once per block, device and weights file. Loading goes through pytorch-fid's own path, so
    the weights must be in the torch-hub cache (the published file, or the stand-in for smoke).
    """
    from pytorch_fid.inception import InceptionV3

    device = torch.device(device or default_device())
    status = inception_weights_status()
    key = (block, str(device), resize_input, status["path"], status["sha256"])
    if key not in _INCEPTIONS:
        if status["standin"]:
            warnings.warn("pytorch-fid is using stand-in random Inception weights: FID and SIFID "
                          "values are pipeline checks, not findings", stacklevel=2)
        model = InceptionV3([block], resize_input=resize_input, normalize_input=True,
                            use_fid_inception=True)
        _INCEPTIONS[key] = model.to(device).eval()
    return _INCEPTIONS[key]


def _model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


def pool_features(images: Sequence[Image.Image], model: torch.nn.Module | None = None,
                  device: str | torch.device | None = None, batch_size: int = 32) -> np.ndarray:
    """The 2048-d pool features of each image, (n, 2048) float64, as pytorch-fid computes them.

    Each image is resized to 299x299 with the bilinear interpolation the model itself uses (so
    images of any size can share a batch); the model's own resize is then the identity.
    """
    model = model if model is not None else inception_model(3, device)
    dev = _model_device(model)
    images = list(images)
    feats = np.empty((len(images), 2048), dtype=np.float64)
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            chunk = images[start:start + batch_size]
            batch = torch.stack([
                F.interpolate(_to_tensor(img)[None], size=(299, 299), mode="bilinear",
                              align_corners=False)[0] for img in chunk]).to(dev)
            out = model(batch)[0]
            if out.shape[2:] != (1, 1):
                out = F.adaptive_avg_pool2d(out, (1, 1))
            feats[start:start + len(chunk)] = out.flatten(1).double().cpu().numpy()
    return feats


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
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    diff = mu_a - mu_b
    tr_a, tr_b = float(np.trace(np.atleast_2d(sigma_a))), float(np.trace(np.atleast_2d(sigma_b)))
    return float(diff @ diff + tr_a + tr_b - 2 * _trace_sqrt_product(a - mu_a, b - mu_b))


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


# ------------------------------------------------------------------------------------- SIFID -----

SIFID_BLOCK = 0  # pytorch-fid's first block: 64 channels after the first max-pool


def sifid_model(device: str | torch.device | None = None) -> torch.nn.Module:
    """pytorch-fid's InceptionV3 up to block 0, at the image's own resolution (as in SinGAN)."""
    return inception_model(SIFID_BLOCK, device, resize_input=False)


def _position_features(images: Sequence[Image.Image], model: torch.nn.Module,
                       batch_size: int) -> list[np.ndarray]:
    """For each image, its block-0 feature map as (positions, 64) float64."""
    dev = _model_device(model)
    out: list[np.ndarray | None] = [None] * len(images)
    with torch.no_grad():
        for idx in _batches_by_size(images, batch_size):
            batch = torch.stack([_to_tensor(images[i]) for i in idx]).to(dev)
            fmap = model(batch)[0]  # (b, 64, h, w)
            rows = fmap.flatten(2).transpose(1, 2).double().cpu().numpy()
            for j, i in enumerate(idx):
                out[i] = rows[j]
    for i, feats in enumerate(out):
        if feats.shape[0] < 2:
            raise QualityError(f"image {i} ({images[i].size[0]}x{images[i].size[1]}) gives "
                               f"{feats.shape[0]} feature position(s); SIFID needs images of at "
                               f"least ~16 px a side (and ~75 px for a full-rank 64x64 covariance)")
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


# --------------------------------------------------------------------------------- bootstrap -----

def _resampled_stat(values: np.ndarray, idx: np.ndarray, stat: Callable) -> np.ndarray:
    samples = values[idx]  # (n_boot, n)
    try:
        res = np.asarray(stat(samples, axis=1), dtype=np.float64)
        if res.shape == (idx.shape[0],):
            return res
    except TypeError:
        pass
    return np.array([stat(row) for row in samples], dtype=np.float64)


def bootstrap_difference(a, b, n_boot: int = 2000, seed: int = 0, stat: Callable = np.mean,
                         level: float = 0.95) -> dict:
    """stat(b) - stat(a) with a percentile bootstrap interval and a two-sided bootstrap p-value.

    The groups are resampled independently with replacement (``n_boot`` times, seeded). The p-value
    inverts the percentile interval: twice the smaller share of resampled differences on either
    side of 0, with the usual +1 correction, so it is at least 1 / (n_boot + 1) and below
    1 - level exactly when the interval excludes 0 (up to that resolution).
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if a.size < 2 or b.size < 2:
        raise QualityError(f"each group needs at least two values; got {a.size} and {b.size}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise QualityError("the scores contain NaN or infinite values; drop them first and say how many")
    if n_boot < 100:
        raise QualityError(f"n_boot={n_boot} is too few for a 95% interval; use at least 1000")
    rng = np.random.default_rng(seed)
    idx_a = rng.integers(0, a.size, size=(n_boot, a.size))
    idx_b = rng.integers(0, b.size, size=(n_boot, b.size))
    diffs = _resampled_stat(b, idx_b, stat) - _resampled_stat(a, idx_a, stat)
    alpha = 1.0 - level
    low, high = np.quantile(diffs, [alpha / 2, 1 - alpha / 2])
    below = (np.count_nonzero(diffs <= 0) + 1) / (n_boot + 1)
    above = (np.count_nonzero(diffs >= 0) + 1) / (n_boot + 1)
    return {
        "observed": float(stat(b) - stat(a)),
        "ci_low": float(low),
        "ci_high": float(high),
        "level": float(level),
        "p_value": float(min(1.0, 2 * min(below, above))),
        "n_a": int(a.size),
        "n_b": int(b.size),
        "n_boot": int(n_boot),
        "stat": getattr(stat, "__name__", str(stat)),
        "mean_a": float(a.mean()),
        "mean_b": float(b.mean()),
    }
