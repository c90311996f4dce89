"""Chapters 4-5: a trained classifier, from the checkpoint its training run wrote (or a user's).

``evaluate`` and ``predict`` score images with the best epoch of a run of Chapter 4
(``results/<profile>/train/paper/best.pt``) or of another backbone of Table 3 (``--model``,
Chapter 5), or with a checkpoint given by path or URL. A checkpoint that does not fit the
profile's model is refused with the keys and shapes that differ, never loaded loosely.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlparse

import torch

from . import backbones
from ..core.checkpoints import load_into, load_state
from ..core.paths import results_root
from .models import build_model


class EvaluateError(RuntimeError):
    """Evaluation cannot run; the message names the file or setting and what to do."""


def default_checkpoint(profile, model: str = backbones.DEFAULT) -> Path:
    """``results/<profile>/train/<run>/best.pt``: the trainer's best epoch of the paper's recipe
    (run ``paper``), or of another backbone of Table 3 (run ``vgg16``...)."""
    return results_root(profile.name) / "train" / backbones.run_name(model) / "best.pt"


def is_url(source) -> bool:
    return urlparse(str(source)).scheme in ("http", "https")


def checkpoint_path(profile, checkpoint, model: str = backbones.DEFAULT) -> Path | str:
    """The checkpoint to use (default: the model's run's best), checked to exist; a URL as it is."""
    if checkpoint is None:
        checkpoint = default_checkpoint(profile, model)
    if is_url(checkpoint):
        return str(checkpoint)
    path = Path(checkpoint).expanduser().resolve()
    if not path.is_file():
        flag = "" if model == backbones.DEFAULT else f" --model {model}"
        raise EvaluateError(
            f"checkpoint {path} does not exist: train first (`python -m helpers train --profile "
            f"{profile.name}{flag}`) or give the file with --checkpoint PATH")
    return path


def load_classifier(profile, checkpoint) -> torch.nn.Module:
    """The profile's classifier with the trained weights of ``checkpoint`` (strictly), in eval mode.

    The checkpoint is a dict holding the state dict under ``"model"``, read with
    ``weights_only=True``; a file that does not fit the profile's model is refused with the keys
    and shapes that differ.
    """
    model = build_model(profile, pretrained="none")
    state = load_state(checkpoint, "model")
    load_into(model, state, f"the classifier {profile.train_model!r} with the {profile.train_head!r} "
                            f"head (train_head) from {checkpoint}; a checkpoint of another backbone "
                            f"needs --model ({', '.join(backbones.KEYS)})")
    return model.eval()


def lazy_classifier(profile, checkpoint) -> Callable[[], torch.nn.Module]:
    """A function that loads the classifier on its first call only: a rerun that finds its
    results on disk needs no model, and the shortcut check's conditions share one."""
    held: list = []

    def get() -> torch.nn.Module:
        if not held:
            held.append(load_classifier(profile, checkpoint))
        return held[0]
    return get
