"""Chapters 4-5: a torch Dataset over a profile's manifest, which training and evaluation read.

A prepared image damaged on disk after its step (overwritten, cut short) is reported as
:class:`DamagedImage`, naming the file and the command that re-makes it, instead of a decoder's
traceback from inside a DataLoader worker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pandas as pd
import torch
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TF

from ..data import manifest as mf
from ..data.images import BadImage, check_header, find_damaged, load_rgb
from ..core.paths import data_root, inside

STEP_OF_LABEL = {"real": "data", "generated": "generate"}


class DamagedImage(ValueError):
    """A prepared image that no longer decodes; the message names it and the repair.

    It takes one string, so that a DataLoader worker can send it back: the loader re-raises it as
    ``DamagedImage(text with the worker's traceback)``, and :func:`damaged_message` takes the
    message back out of that text.
    """


def repair_hint(path) -> str | None:
    """The command that re-makes a prepared image, read from where it lies
    (``<data root>/<profile>/images/<label>/<split>/<file>``); None for any other file."""
    try:
        parts = Path(path).resolve().relative_to(data_root()).parts
    except ValueError:
        return None
    if len(parts) != 5 or parts[1] != "images" or parts[2] not in STEP_OF_LABEL:
        return None
    profile, label, name = parts[0], parts[2], parts[4]
    if name.startswith("aug_"):
        extra = " --both-classes" if label == "real" else ""
        return f"`python -m helpers augment --profile {profile}{extra}` re-makes it"
    return f"`python -m helpers {STEP_OF_LABEL[label]} --profile {profile}` re-makes it"


def damaged_error(path, reason: str) -> DamagedImage:
    hint = repair_hint(path) or "replace the file, or run the step that made it again"
    try:
        shown = Path(path).resolve().relative_to(data_root()).as_posix() + " (in the data root)"
    except ValueError:
        shown = str(path)
    return DamagedImage(f"the prepared image {shown} is damaged ({reason}): {hint}")


def damaged_message(exc: BaseException) -> str:
    """The message of a :class:`DamagedImage`, also when a DataLoader re-raised it from a worker."""
    return str(exc).rsplit(f"{DamagedImage.__name__}: ", 1)[-1].strip()


def check_files(paths) -> None:
    """Raise :class:`DamagedImage` for the first of ``paths`` that is missing or not an image.

    Reads only the files' headers (fast, before an epoch starts); a file cut short is found when
    it is decoded, and reported the same way.
    """
    bad = list(find_damaged(paths, check_header).items())
    if bad:
        more = f"; {len(bad) - 1} more are damaged too, e.g. {damaged_error(*bad[1])}" if len(bad) > 1 else ""
        raise DamagedImage(f"{damaged_error(*bad[0])}{more}")


class ManifestDataset(Dataset):
    """Images of one split: ``(image, label)`` with label 0 = real, 1 = generated.

    ``transform`` takes a PIL image; without one the image becomes a float tensor in [0, 1].
    """

    def __init__(self, frame: pd.DataFrame | str, split: str | None = None,
                 transform: Callable | None = None):
        if isinstance(frame, str):
            frame = mf.load(frame)
        if split is not None:
            if split not in mf.SPLITS:
                raise ValueError(f"split must be one of {mf.SPLITS}, got {split!r}")
            frame = frame[frame["split"] == split]
        self.frame = frame.reset_index(drop=True)
        root = data_root()
        self.paths = [inside(root, p) for p in self.frame["path"]]
        self.labels = self.frame["label"].astype(int).tolist()
        self.transform = transform
        # Chapter 6's robust training (``train --robust-aug``): ``augment(img, epoch, index)`` runs
        # before ``transform``; the training sampler then yields ``(index, epoch)`` pairs
        # (:func:`helpers.classify.loaders.robust_training`)
        self.augment: Callable | None = None

    def __len__(self) -> int:
        return len(self.frame)

    def __getitem__(self, item):
        """``item``: an index, or ``(index, epoch)`` from the robust-training sampler."""
        index, epoch = item if isinstance(item, tuple) else (item, None)
        try:
            img = load_rgb(self.paths[index], min_side=1)
        except BadImage as exc:
            raise damaged_error(self.paths[index], str(exc)) from None
        if self.augment is not None and epoch is not None:
            img = self.augment(img, epoch, index)
        if self.transform is not None:
            x = self.transform(img)
        else:
            x = TF.to_dtype(TF.to_image(img), torch.float32, scale=True)
        return x, self.labels[index]
