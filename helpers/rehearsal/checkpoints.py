"""Chapter 3's rehearsal stand-ins: random-weight inpainting checkpoints where the real ones would be.

The dress rehearsal runs ``course`` and ``paper`` offline through unchanged code, so Chapter 3's
fetch code (:mod:`helpers.inpaint.weights`) must find a file at each published checkpoint's cache
path, check its layout strictly and record its sha256, exactly as it does with a downloaded file.
:func:`place_standin_checkpoints` writes those files: the real architectures (the partial-convolution
U-Net, whose file holds its all-ones mask kernels beside the trained ones; DeepFill v2's
``networks_tf.py`` generator, the class ``states_tf_places2.pth`` holds) with seeded random weights,
in the published layouts. Both networks are small enough to be full size always (files of about
210 MB and 16 MB, written in a few seconds), so there is no reduced variant, and no ``full_size``
switch.
Their fills are noise: a rehearsal checks that the chapter runs, never what it finds.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import torch

from ..inpaint.weights import cache_path, record_path


def pconv_checkpoint(seed: int = 0) -> dict:
    """The naoto0804 layout: ``{'n_iter', 'model': U-Net state, 'optimizer': Adam state}`` (n_iter 0
    marks an untrained stand-in)."""
    from ..inpaint.pconv import PConvUNet

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = PConvUNet()
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    return {"n_iter": 0, "model": model.state_dict(), "optimizer": optimizer.state_dict()}


def deepfill_checkpoint(seed: int = 0) -> dict:
    """The layout of ``states_tf_places2.pth``: ``{'G': GeneratorTF state}``."""
    from ..inpaint.deepfill import GeneratorTF

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return {"G": GeneratorTF().state_dict()}


def _write_new(path: Path, checkpoint: dict) -> None:
    """Save ``checkpoint`` at ``path`` unless a file is there: linked into place, so a file that
    appeared meanwhile (a real download) is never replaced. A record left without its file goes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    torch.save(checkpoint, buf)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.standin.tmp")
    tmp.write_bytes(buf.getvalue())
    try:
        os.link(tmp, path)
        record_path(path).unlink(missing_ok=True)
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)


def place_standin_checkpoints() -> list[Path]:
    """Put stand-in checkpoints at ``cache_path("pconv")`` and ``cache_path("deepfill_v2")`` (under
    the current ``$TORCH_HOME``) where no file is yet; returns both paths. An existing file, a real
    one above all, is never replaced: set ``TORCH_HOME`` to a scratch folder first."""
    paths = []
    for model, make in (("pconv", pconv_checkpoint), ("deepfill_v2", deepfill_checkpoint)):
        path = cache_path(model)
        if not path.exists():
            _write_new(path, make())
        paths.append(path)
    return paths
