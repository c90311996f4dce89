"""Chapter 3: NIQE of each inpainted image, with pyiqa and the carried pristine parameters.

**NIQE** (Mittal, Soundararajan and Bovik 2013; lower is better) measures how far the statistics of
an image's 96x96 patches lie from a multivariate Gaussian fitted once on pristine photographs (the
LIVE pristine images). Those 36 means and the 36x36 covariance are data, carried in the repository
(``helpers/inpaint/niqe_data/niqe_pris_params.npz``, from the basicsr 1.4.2 source distribution; see its
README), checked against their published sha256, and handed to pyiqa's NIQE as a ``.mat`` file
under the data root: pyiqa never downloads anything.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..core.distributed import default_device
from ..core.download import file_digest
from ..core.files import atomic_write_bytes
from ..core.paths import data_root
from .quality import QualityError, batches_by_size, to_tensor

DATA_DIR = Path(__file__).resolve().parent / "niqe_data"
NIQE_PARAMS_FILE = DATA_DIR / "niqe_pris_params.npz"
NIQE_PARAMS_SHA256 = "2a7c182a68c9e7f1b2e2e5ec723279d6f65d912b6fcaf37eb2bf03d7367c4296"
NIQE_BLOCK = 96  # pyiqa's (and the reference's) patch side; partial blocks are dropped

_NIQE_METRICS: dict = {}


def niqe_pristine_params(verify: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """The LIVE pristine parameters (mu 1x36, cov 36x36, float64) carried in ``niqe_data``."""
    if verify:
        found = file_digest(NIQE_PARAMS_FILE, "sha256")
        if found != NIQE_PARAMS_SHA256:
            raise QualityError(f"{NIQE_PARAMS_FILE} has sha256 {found}, not the published "
                               f"{NIQE_PARAMS_SHA256}; restore the file from the repository")
    with np.load(NIQE_PARAMS_FILE) as params:
        mu = np.asarray(params["mu_pris_param"], dtype=np.float64).reshape(1, 36)
        cov = np.asarray(params["cov_pris_param"], dtype=np.float64).reshape(36, 36)
    return mu, cov


def niqe_mat_path() -> Path:
    return data_root() / "cache" / "niqe_pris_params.mat"


def _mat_holds(path: Path, mu: np.ndarray, cov: np.ndarray) -> bool:
    """Whether the ``.mat`` at ``path`` holds exactly these parameters (False when unreadable)."""
    import scipy.io  # lazily: scipy loads in a second, and only NIQE needs it

    if not path.exists():
        return False
    try:
        have = scipy.io.loadmat(path)
        return np.array_equal(have["mu_prisparam"], mu) and np.array_equal(have["cov_prisparam"], cov)
    except (OSError, ValueError, KeyError, scipy.io.matlab.MatReadError):
        return False  # unreadable or damaged: written again


def write_niqe_mat() -> Path:
    """The carried parameters as the ``.mat`` pyiqa reads (keys mu_prisparam, cov_prisparam).

    Written atomically under the data root, and rewritten only when missing or different.
    """
    import scipy.io

    mu, cov = niqe_pristine_params()
    path = niqe_mat_path()
    if not _mat_holds(path, mu, cov):
        buf = io.BytesIO()
        scipy.io.savemat(buf, {"mu_prisparam": mu, "cov_prisparam": cov})
        atomic_write_bytes(path, buf.getvalue())
    return path


def niqe_metric(device: str | torch.device | None = None):
    """pyiqa's NIQE on ``device`` with the carried parameters (built once per device and file)."""
    import pyiqa

    device = default_device(device)
    path = write_niqe_mat()
    key = (str(device), str(path))
    if key not in _NIQE_METRICS:
        # create_metric forwards extra options to the NIQE arch, whose pretrained_model_path
        # replaces the download of its default parameters.
        _NIQE_METRICS[key] = pyiqa.create_metric("niqe", device=device, pretrained_model_path=str(path))
    return _NIQE_METRICS[key]


def _check_sizes(images: Sequence[Image.Image]) -> None:
    """NIQE needs at least two whole 96x96 patches to fit its Gaussian: smaller images are refused."""
    for i, img in enumerate(images):
        w, h = img.size
        if (h // NIQE_BLOCK) * (w // NIQE_BLOCK) < 2:
            raise QualityError(f"image {i} is {w}x{h}: NIQE needs at least two whole "
                               f"{NIQE_BLOCK}x{NIQE_BLOCK} patches (e.g. 192x96)")


def niqe(images: Sequence[Image.Image], device: str | torch.device | None = None,
         batch_size: int = 16) -> np.ndarray:
    """NIQE of each image (lower is better), float64, in the order given.

    Images of equal size are scored together in batches (on the GPU when there is one).
    """
    images = list(images)
    _check_sizes(images)
    out = np.full(len(images), np.nan, dtype=np.float64)
    if not images:
        return out
    metric = niqe_metric(device)
    with torch.no_grad():
        for idx in batches_by_size(images, batch_size):
            batch = torch.stack([to_tensor(images[i]) for i in idx]).to(metric.device)
            out[idx] = metric(batch).reshape(-1).double().cpu().numpy()
    return out
