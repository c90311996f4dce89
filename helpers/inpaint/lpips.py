"""Chapter 3: LPIPS, of whole images (``python -m helpers score lpips``) and inside the hole (``lpips_hole``).

LPIPS (Zhang et al., 2018) compares two images through the unit-normalised activations of five
AlexNet layers, each channel's squared difference weighted by linear layers that were fitted to
human judgements of which of two distortions looks closer to a reference. 0 means identical, and
the larger, the less alike (lower is closer). The book has one implementation, pyiqa's
``create_metric("lpips")`` (AlexNet, version 0.1, the network of the authors' ``lpips`` package),
built by :func:`lpips_metric` and used twice:

- :func:`lpips_pairs`, whole images, for the command: pyiqa's own number, the mean over the image
  of each layer's distance map, summed over the layers;
- :func:`lpips_in_holes`, the fill alone, for the inpaint step's ``lpips_hole``: the same network
  with pyiqa's ``spatial=True``, which gives each layer's distance map resized (bilinearly) to the
  image, summed; that per-pixel map is averaged over the hole's pixels.

Why the map over the hole, and not LPIPS of the hole's box (as ``sifid_hole`` does):

1. LPIPS is an average over positions of a per-position distance. Averaging the same map over the
   hole is the same measure on the region that was filled, computed with the network seeing the
   whole image around the hole, as it sees any image.
2. A box holds untouched pixels around the hole, whose distance is near 0, so a box's LPIPS is the
   fill's diluted by the share of the box that the hole covers. That share differs between a
   compact object outline and thin strokes, and from image to image. The mean over the hole has no
   such dilution, so holes of different shapes compare.
3. It is how ``ssim_hole`` is defined (SSIM's map averaged over the hole), so the two in-hole
   scores read alike: each hole pixel's value comes from a neighbourhood that reaches past the
   hole's edge, so the seam counts too.

SIFID needs the box, since it fits a Gaussian to many feature positions; LPIPS does not. The
limits: the deeper layers' maps are coarse (AlexNet's fifth layer has one position per 16 px), so
at the hole's edge the map mixes in positions just outside it, and a stroke a few pixels wide is
scored together with its surroundings. The linear layers were fitted to whole 64x64 patches, not
to regions of a map, so ``lpips_hole`` is not on the scale of the authors' published judgements;
real and generated images are scored the same way, so this favours neither.

The weights are two files, fetched on first use. One is torchvision's AlexNet
(``$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth``). The other is pyiqa's linear layers
(``$TORCH_HOME/hub/pyiqa/LPIPS_v0.1_alex-df73285e.pth``). pyiqa fixes its cache folder when it is
first imported, so a ``TORCH_HOME`` set later (the smoke step's stand-in folder) would be missed.
So :func:`lpips_metric` fetches the linear layers itself, with pyiqa's own downloader, into the
folder of the ``TORCH_HOME`` in force, and hands pyiqa that file. Offline, a missing file raises
:class:`~helpers.inpaint.quality.MissingWeights`, whose message names both files and their
addresses.

For smoke and the rehearsals, :func:`ensure_standin_lpips_weights` writes random weights of the
same layout at both addresses. The weights are seeded and written atomically, and only where no
file is: a real file is never replaced. Every LPIPS computed with them is a pipeline check. The
AlexNet file is named after its sha256, as torch-hub names files, so
:func:`lpips_weights_status` tells the published file from a stand-in. The linear layers' name
is not documented to be a checksum, so that file is not checked.
"""

from __future__ import annotations

import contextlib
import pickle
import sys
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..core.distributed import default_device
from ..core.files import atomic_torch_save
from .inception import weights_file_status
from .quality import QualityError, batches_by_size, missing_weights, to_tensor

LPIPS_KEY = "0.1_alex"  # pyiqa's default_model_urls key: version 0.1, AlexNet (create_metric("lpips"))
ALEX_CHANNELS = (64, 192, 384, 256, 256)  # the five AlexNet layers LPIPS compares (pyiqa's LPIPS.chns)
STANDIN_LINEAR_MAX = 0.1  # stand-in linear weights ~ U(0, 0.1): >= 0 like trained ones, LPIPS of order 0.1-1
BATCH = 8
# errors of a weights file that cannot be fetched or read: offline (URLError is an OSError), a
# broken or foreign file (torch.load, load_state_dict)
_LOAD_ERRORS = (OSError, RuntimeError, EOFError, pickle.UnpicklingError)


def lpips_weight_files() -> list[tuple[str, Path, str]]:
    """(what, where it is read from, where it is fetched from) of LPIPS's two files, in the
    torch-hub cache of the ``TORCH_HOME`` in force now."""
    from pyiqa.archs.lpips_arch import default_model_urls
    from torchvision.models import AlexNet_Weights

    alexnet, linear = AlexNet_Weights.IMAGENET1K_V1.url, default_model_urls[LPIPS_KEY]
    hub = Path(torch.hub.get_dir())
    return [("AlexNet's ImageNet weights (torchvision)", hub / "checkpoints" / alexnet.rsplit("/", 1)[-1], alexnet),
            ("LPIPS v0.1 linear layers (pyiqa)", hub / "pyiqa" / linear.rsplit("/", 1)[-1], linear)]


def lpips_weights_status() -> dict:
    """:func:`helpers.inpaint.inception.weights_file_status` of the AlexNet file: ``standin`` is
    True when it is not torchvision's published file (see the module docstring)."""
    return weights_file_status(lpips_weight_files()[0][1])


def _standin_alexnet(seed: int) -> dict:
    """torchvision's AlexNet with its own random initialisation (seeded), as a state dict."""
    from torchvision.models import alexnet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return alexnet(weights=None).state_dict()


def _standin_linear(seed: int) -> dict:
    """Random linear layers in the layout pyiqa's LPIPS loads (``linK.model.1.weight``, a 1x1
    convolution of each layer's channels to one; index 1, after the dropout), non-negative like
    trained ones, so that LPIPS is >= 0."""
    generator = torch.Generator().manual_seed(seed)
    return {f"lin{k}.model.1.weight": STANDIN_LINEAR_MAX * torch.rand(1, c, 1, 1, generator=generator)
            for k, c in enumerate(ALEX_CHANNELS)}


def ensure_standin_lpips_weights(seed: int = 0) -> bool:
    """Make LPIPS loadable offline; True when the AlexNet weights in the cache are not the published ones.

    Each of the two files that is missing is written with random weights of its layout (seeded,
    atomically); a file already there is never replaced.
    """
    (_, alex_path, _), (_, linear_path, _) = lpips_weight_files()
    if not alex_path.exists():
        atomic_torch_save(_standin_alexnet(seed), alex_path)
    if not linear_path.exists():
        atomic_torch_save(_standin_linear(seed), linear_path)
    return bool(lpips_weights_status()["standin"])


def _linear_file() -> Path:
    """pyiqa's linear layers in the current torch-hub cache, fetched there by pyiqa's downloader
    when missing (why not pyiqa's own folder: the module docstring)."""
    from pyiqa.utils.download_util import load_file_from_url

    _, path, url = lpips_weight_files()[1]
    if not path.exists():
        load_file_from_url(url, model_dir=str(path.parent))
    return path


_METRICS: dict = {}


def lpips_metric(device: str | torch.device | None = None, spatial: bool = False) -> torch.nn.Module:
    """pyiqa's LPIPS (AlexNet, v0.1) on ``device``, built once per device, kind and weights files;
    ``spatial``: it returns the per-pixel distance map instead of its mean. Raises
    :class:`~helpers.inpaint.quality.MissingWeights` when a weights file can be neither found nor fetched."""
    import pyiqa

    device = default_device(device)
    files = lpips_weight_files()
    key = (str(device), spatial, *(str(p) for _, p, _ in files),
           *(p.stat().st_mtime_ns if p.exists() else None for _, p, _ in files))
    if key not in _METRICS:
        try:
            with contextlib.redirect_stdout(sys.stderr):  # pyiqa's and torch-hub's messages: not a table's
                linear = _linear_file()
                metric = pyiqa.create_metric("lpips", device=device, pretrained_model_path=str(linear),
                                             spatial=spatial)
        except _LOAD_ERRORS as exc:
            raise missing_weights("LPIPS", files, exc) from None
        if lpips_weights_status()["standin"]:
            warnings.warn("LPIPS is using stand-in random AlexNet weights: its values are pipeline "
                          "checks, not findings", stacklevel=2)
        _METRICS[key] = metric
    return _METRICS[key]


def _batches(first: Sequence[Image.Image], second: Sequence[Image.Image],
             metric) -> Iterator[tuple[list[int], torch.Tensor]]:
    """(indices, pyiqa's output) for each batch of pairs of one size: ``metric(second, first)``."""
    for idx in batches_by_size(first, BATCH):
        a = torch.stack([to_tensor(first[i]) for i in idx]).to(metric.device)
        b = torch.stack([to_tensor(second[i]) for i in idx]).to(metric.device)
        yield idx, metric(b, a)


def _check_sizes(first: Sequence[Image.Image], second: Sequence[Image.Image]) -> None:
    if len(first) != len(second):
        raise QualityError(f"LPIPS compares pairs: {len(first)} references but {len(second)} images")
    for i, (a, b) in enumerate(zip(first, second)):
        if a.size != b.size:
            raise QualityError(f"LPIPS compares pixel by pixel: pair {i} is {b.size} against {a.size}")


def lpips_pairs(pairs: Sequence[tuple[Image.Image, Image.Image]], device=None) -> np.ndarray:
    """pyiqa's LPIPS of each (image, reference) pair of one size, float64, in order."""
    images, references = [p[0] for p in pairs], [p[1] for p in pairs]
    _check_sizes(references, images)
    metric = lpips_metric(device)
    out = np.empty(len(pairs), dtype=np.float64)
    with torch.no_grad():
        for idx, values in _batches(references, images, metric):
            out[idx] = values.reshape(-1).double().cpu().numpy()
    return out


def lpips_in_holes(originals: Sequence[Image.Image], results: Sequence[Image.Image], holes: Sequence,
                   device=None) -> np.ndarray:
    """LPIPS of each result against its original inside its hole: the mean of LPIPS's per-pixel
    map over the hole's pixels (why: the module docstring). Exactly 0 for a result equal to its
    original; NaN for an empty hole (there is nothing to score)."""
    _check_sizes(originals, results)
    holes = [np.asarray(h, dtype=bool) for h in holes]
    for i, (img, hole) in enumerate(zip(originals, holes)):
        if hole.shape != img.size[::-1]:
            raise QualityError(f"hole {i} is {hole.shape[1]}x{hole.shape[0]} but its image is "
                               f"{img.size[0]}x{img.size[1]}")
    metric = lpips_metric(device, spatial=True)
    out = np.full(len(originals), np.nan, dtype=np.float64)
    with torch.no_grad():
        for idx, maps in _batches(originals, results, metric):
            maps = maps.reshape(len(idx), *maps.shape[-2:]).double().cpu().numpy()
            for j, i in enumerate(idx):
                if holes[i].any():
                    out[i] = float(maps[j][holes[i]].mean())
    return out

