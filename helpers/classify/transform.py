"""Chapters 4-5: the one way an image becomes the classifier's input, in training and evaluation alike.

A classifier judged on inputs made another way than the ones it learned from is judged on a
shift of its own making (another resampling filter, other statistics). So the training set, the
validation set, the test split, a user's folder and ``predict`` all go through
:class:`ModelInput`, built by :func:`model_input` from timm's data configuration of the very
model that sees the images (``timm.data.resolve_model_data_config``): its resampling filter
(bicubic for ConvNeXt and EfficientNet, bilinear for torchvision's VGG and ResNet weights) and
the mean and standard deviation its pretrained weights were trained with, at the profile's input
side (``train_img_size``; ``ablation_img_size`` for Table 3's other backbones).

There is no augmentation here: the training set is augmented once, on disk, by Chapter 2's
Algorithm 1. timm's ``crop_pct`` is not used either: the stored images are squares at the
study's side already (the data step), and the model sees the whole of each, as in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from .models import data_config


@dataclass(frozen=True)
class ModelInput:
    """PIL image -> a ``(3, size, size)`` float tensor: the shorter side resized to ``size``
    (anti-aliased, with ``interpolation``), the centre square kept, [0, 1], normalised.

    A stored image is a square already, so this is a plain resize; at ``size`` it is skipped. A
    class rather than a closure so that DataLoader workers can pickle it.
    """

    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    interpolation: str = "bicubic"

    def __call__(self, img: Image.Image) -> torch.Tensor:
        x = TF.to_image(img.convert("RGB"))
        if tuple(x.shape[-2:]) != (self.size, self.size):
            x = TF.resize(x, [self.size], interpolation=InterpolationMode(self.interpolation), antialias=True)
            x = TF.center_crop(x, [self.size, self.size])
        x = TF.to_dtype(x, torch.float32, scale=True)
        return TF.normalize(x, list(self.mean), list(self.std))


def model_input(model: torch.nn.Module, img_size: int) -> ModelInput:
    """The input transform of ``model`` (timm's data configuration) at the side ``img_size``."""
    cfg = data_config(model)
    return ModelInput(int(img_size), tuple(cfg["mean"]), tuple(cfg["std"]), cfg.get("interpolation") or "bicubic")
