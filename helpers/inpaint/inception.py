"""Chapter 3: pytorch-fid's Inception network behind FID and SIFID, and its offline stand-in.

pytorch-fid loads its weights with ``torch.hub.load_state_dict_from_url`` from the torch-hub cache
(``$TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth``) and downloads them when the
file is missing. For the offline smoke profile, :func:`ensure_standin_inception_weights` puts a
file with *random* weights of the same architecture there, when (and only when) no file is there,
so pytorch-fid's own loading path runs unchanged offline. Every number computed with it is a
pipeline check, not a finding; :func:`inception_weights_status` says which weights are in use (the
published file's sha256 starts with ``6726825d``, torch-hub's naming convention).
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from urllib.parse import urlparse

import torch

from ..core.distributed import default_device
from ..core.download import file_digest
from ..core.files import atomic_torch_save


def inception_weights_path() -> Path:
    """Where pytorch-fid's loader looks: the torch-hub checkpoints cache, file named by its URL."""
    from pytorch_fid.inception import FID_WEIGHTS_URL

    name = os.path.basename(urlparse(FID_WEIGHTS_URL).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / name


def inception_weight_files() -> list[tuple[str, Path, str]]:
    """(what, where it is read from, where it is fetched from) of the one file, as
    :func:`helpers.inpaint.quality.missing_weights` names it when it cannot be loaded."""
    from pytorch_fid.inception import FID_WEIGHTS_URL

    return [("pytorch-fid's Inception weights", inception_weights_path(), FID_WEIGHTS_URL)]


_STATUS_CACHE: dict = {}


def weights_file_status(path: str | Path) -> dict:
    """{'path', 'exists', 'standin', 'sha256'} of a torch-hub weights file named by torch-hub's
    convention, ``name-<first hex digits of its sha256>.ext`` (pytorch-fid's Inception, torchvision's
    AlexNet for LPIPS): a file whose sha256 does not start with the digits in its name is not the
    published one (a stand-in, or something else), and its numbers are not comparable with papers.
    The digest is computed once per file, size and modification time."""
    path = Path(path)
    if not path.exists():
        return {"path": str(path), "exists": False, "standin": None, "sha256": None}
    st = path.stat()
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key not in _STATUS_CACHE:
        _STATUS_CACHE[key] = file_digest(path, "sha256")
    digest = _STATUS_CACHE[key]
    published = path.stem.rsplit("-", 1)[-1].lower()
    return {"path": str(path), "exists": True, "standin": not digest.startswith(published), "sha256": digest}


def inception_weights_status() -> dict:
    """:func:`weights_file_status` of the Inception weights in the cache (the published file's
    sha256 starts with ``6726825d``)."""
    return weights_file_status(inception_weights_path())


def _fid_blocks() -> dict[str, torch.nn.Module]:
    """pytorch-fid's FID blocks, by the name of the torchvision block each replaces."""
    from pytorch_fid import inception as pfi

    return {
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


def _he_init(net: torch.nn.Module) -> None:
    """He initialisation keeps activations of order one through the ~50 layers (batch norm is the
    identity in eval mode with fresh running statistics), so features are not vanishing."""
    for module in net.modules():
        if isinstance(module, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        elif isinstance(module, torch.nn.BatchNorm2d):
            torch.nn.init.ones_(module.weight)
            torch.nn.init.zeros_(module.bias)
        elif isinstance(module, torch.nn.Linear):
            torch.nn.init.normal_(module.weight, std=0.01)
            torch.nn.init.zeros_(module.bias)


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
        for name, block in _fid_blocks().items():
            setattr(net, name, block)
        _he_init(net)
    return net


def ensure_standin_inception_weights(seed: int = 0) -> bool:
    """Make pytorch-fid loadable offline; True when the weights in the cache are not the published ones.

    If no file is at :func:`inception_weights_path`, write random weights of pytorch-fid's FID
    Inception there (seeded, so every run gets the same stand-in), atomically. A file already
    there is never replaced.
    """
    path = inception_weights_path()
    if not path.exists():
        atomic_torch_save(_standin_fid_inception(seed).state_dict(), path)
    return bool(inception_weights_status()["standin"])


_INCEPTIONS: dict = {}


def inception_model(block: int = 3, device: str | torch.device | None = None,
                    resize_input: bool = True) -> torch.nn.Module:
    """pytorch-fid's InceptionV3 returning ``block`` (3: 2048-d pool, 0: 64-ch first max-pool), eval.

    Built once per block, device and weights file. Loading goes through pytorch-fid's own path, so
    the weights must be in the torch-hub cache (the published file, or the stand-in for smoke).
    """
    from pytorch_fid.inception import InceptionV3

    device = default_device(device)
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


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device
