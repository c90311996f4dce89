"""Chapters 4-5: P(generated) for image files, in batches, with the reason for each file that cannot be read.

Each file is decoded (:func:`helpers.data.images.load_rgb`), passed through an optional PIL step
(the common format, a re-encoding), then through the model's own input transform
(:func:`helpers.classify.transform.model_input`, the one training used). ``predict`` scores image
files or folders given on the command line; a file that cannot be read is listed with its reason,
never a crash.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image
from tqdm import tqdm

from . import backbones
from ..core.distributed import default_device
from ..core.files import list_files
from ..data import manifest as mf
from ..data.images import BadImage, load_rgb
from .classifier import EvaluateError, checkpoint_path, lazy_classifier
from .dataset import repair_hint
from .models import HEADS
from .reencode import common_format
from .transform import ModelInput, model_input

LABEL_NAMES = {v: k for k, v in mf.LABELS.items()}  # 0 -> "real", 1 -> "generated"
THRESHOLD = 0.5


def probabilities(out: torch.Tensor, head: str) -> torch.Tensor:
    """P(generated) from the model's outputs: ``sigmoid(out[:, 1])`` for the paper's 2-output head,
    ``sigmoid(out[:, 0])`` for a single logit."""
    if isinstance(out, (tuple, list)):
        out = out[0]
    if head == "paper":
        if out.ndim != 2 or out.shape[1] != 2:
            raise EvaluateError(f"the 'paper' head gives 2 outputs per image; this model gives shape "
                                f"{tuple(out.shape)}: check train_head (--set train_head=logit?)")
        return torch.sigmoid(out[:, 1].float())
    if head == "logit":
        if out.ndim == 2 and out.shape[1] == 1:
            out = out[:, 0]
        if out.ndim != 1:
            raise EvaluateError(f"the 'logit' head gives 1 output per image; this model gives shape "
                                f"{tuple(out.shape)}: check train_head (--set train_head=paper?)")
        return torch.sigmoid(out.float())
    raise EvaluateError(f"unknown head {head!r}; valid: {', '.join(HEADS)}")


def _reader(to_input: ModelInput, reformat, min_side: int, max_pixels: int) -> Callable:
    """``path -> (model input, None)``, or ``(None, reason)`` for a file that cannot be read."""
    def read(path):
        try:
            img = load_rgb(path, min_side=min_side, max_pixels=max_pixels)
            return to_input(reformat(img) if reformat is not None else img), None
        except BadImage as exc:
            return None, str(exc)
    return read


def forward_batch(model, inputs: list[torch.Tensor], head: str, device: torch.device) -> np.ndarray:
    """P(generated) of one batch, with bf16 autocast on CUDA."""
    x = torch.stack(inputs).to(device, non_blocking=True)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda"
                else torch.autocast("cpu", enabled=False))
    with autocast:
        out = model(x)
    return probabilities(out, head).cpu().numpy()


def predict_images(model: torch.nn.Module, paths: Iterable, img_size: int, head: str, device=None,
                   batch_size: int = 16, *, reformat: Callable[[Image.Image], Image.Image] | None = None,
                   skipped: dict | None = None, min_side: int = 32, max_pixels: int = 64_000_000,
                   progress: bool = False) -> np.ndarray:
    """P(generated) for each file of ``paths``, in order; NaN for a file that cannot be read.

    A bad file is skipped, its reason put in ``skipped[path]`` when a dict is given. ``reformat``
    (PIL -> PIL, e.g. a re-encoding) runs before the model's input transform at ``img_size``.
    Batches run in eval mode under ``torch.inference_mode``; files are decoded in threads, the next
    batch while the model runs on this one (on a GPU, decoding in turn with the model left it idle
    two thirds of the time: ``python -m helpers bench predict``).
    """
    if head not in HEADS:
        raise EvaluateError(f"unknown head {head!r}; valid: {', '.join(HEADS)}")
    if batch_size < 1:
        raise EvaluateError(f"batch_size must be at least 1, got {batch_size}")
    paths, device = list(paths), default_device(device)
    model = model.to(device).eval()
    read = _reader(model_input(model, img_size), reformat, min_side, max_pixels)
    probs = np.full(len(paths), np.nan)
    starts = range(0, len(paths), batch_size)
    threads = max(1, min(os.cpu_count() or 1, 16, 2 * batch_size))
    with ThreadPoolExecutor(max_workers=threads) as pool, torch.inference_mode():
        # the next batch decodes in the threads while the model runs on this one
        pending = [pool.submit(read, p) for p in paths[:batch_size]]
        for start in tqdm(starts, desc="predict", unit="batch", disable=not progress):
            chunk, loaded = paths[start:start + batch_size], [f.result() for f in pending]
            pending = [pool.submit(read, p) for p in paths[start + batch_size:start + 2 * batch_size]]
            if skipped is not None:
                skipped.update({chunk[i]: reason for i, (_, reason) in enumerate(loaded) if reason})
            good = [i for i, (x, _) in enumerate(loaded) if x is not None]
            if good:
                probs[[start + i for i in good]] = forward_batch(model, [loaded[i][0] for i in good], head, device)
    return probs


def expand_paths(paths: Iterable[str]) -> list[Path]:
    """Files as given, folders as their files (not subfolders, no hidden files), in order."""
    out = []
    for text in paths:
        p = Path(text).expanduser()
        # a missing file is reported by load_rgb with its reason
        out += list_files(p) if p.is_dir() else [p]
    return out


def predict_paths(profile, checkpoint, paths: Iterable[str], *, as_is: bool = False, device=None,
                  batch_size: int = 16, model: str = backbones.DEFAULT) -> pd.DataFrame:
    """One row per file: ``path``, ``p_generated``, ``predicted`` (label name) and ``reason`` (why a
    file could not be scored; empty otherwise)."""
    checkpoint = checkpoint_path(profile, checkpoint, model)
    profile = backbones.for_model(profile, model)
    files = expand_paths(paths)
    if not files:
        raise EvaluateError("no files to score: the folders given are empty")
    skipped: dict = {}
    classifier = lazy_classifier(profile, checkpoint)()
    started = time.perf_counter()
    probs = predict_images(classifier, files, profile.train_img_size, profile.train_head, device, batch_size,
                           reformat=None if as_is else (lambda img: common_format(img, profile)),
                           skipped=skipped, min_side=profile.min_side, max_pixels=profile.max_pixels)
    scored = int((~np.isnan(probs)).sum())
    seconds = time.perf_counter() - started
    print(f"scored {scored} images in {seconds:.1f} s: {scored / max(seconds, 1e-9):.1f} images/s on "
          f"{default_device(device)}", file=sys.stderr)
    return pd.DataFrame({
        "path": [str(f) for f in files],
        "p_generated": probs,
        "predicted": [("" if np.isnan(p) else LABEL_NAMES[int(p >= THRESHOLD)]) for p in probs],
        "reason": [_with_repair(f, skipped.get(f, "")) for f in files],
    })


def _with_repair(path: Path, reason: str) -> str:
    """A study image's reason, with the command that re-makes it."""
    hint = repair_hint(path) if reason else None
    return f"{reason}; {hint}" if hint else reason
