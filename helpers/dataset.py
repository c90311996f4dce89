"""A torch Dataset over a profile's manifest."""

from __future__ import annotations

from typing import Callable

import pandas as pd
import torch
from torch.utils.data import Dataset
from torchvision.transforms.v2 import functional as TF

from . import manifest as mf
from .images import load_rgb
from .paths import data_root, inside


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

    def __len__(self) -> int:
        return len(self.frame)

    def __getitem__(self, index: int):
        img = load_rgb(self.paths[index], min_side=1)
        if self.transform is not None:
            x = self.transform(img)
        else:
            x = TF.to_dtype(TF.to_image(img), torch.float32, scale=True)
        return x, self.labels[index]
