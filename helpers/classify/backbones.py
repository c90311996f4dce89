"""Chapter 5: the four backbones of the paper's Table 3, behind one switch: ``--model KEY``.

``convnext`` is Chapter 4's classifier (the profile's ``train_model``, ConvNeXt-XL in ``paper``);
``vgg16``, ``resnet50`` and ``efficientnet_b0`` are the ablation's, named in the profile's
``ablation_models`` (timm's ``vgg16.tv_in1k``, ``resnet50.tv_in1k``, ``efficientnet_b0.ra_in1k``;
tiny random stand-ins in ``smoke``) and trained at ``ablation_img_size``. Everything else (head,
loss, optimizer, batch, epochs, early stopping, data) is the profile's, the same for all four, so
that the comparison is about the backbone alone. Each model has its own run folder.
"""

from __future__ import annotations

import dataclasses

from ..core.profiles import ABLATION_KEYS, ablation_map

DEFAULT = "convnext"
KEYS = (DEFAULT, *ABLATION_KEYS)
# The names of Table 3's rows (helpers.core.paper.TABLE3), in the paper's order.
LABELS = {"vgg16": "VGG-16", "resnet50": "ResNet-50", "efficientnet_b0": "EfficientNet-B0",
          DEFAULT: "ConvNeXt-XL"}


def check_key(key: str) -> str:
    if key not in KEYS:
        raise ValueError(f"unknown model {key!r}; valid: {', '.join(KEYS)}")
    return key


def for_model(profile, key: str = DEFAULT):
    """The profile as the trainer and evaluator see it for backbone ``key``."""
    if check_key(key) == DEFAULT:
        return profile
    return dataclasses.replace(profile, train_model=ablation_map(profile.ablation_models)[key],
                               train_img_size=profile.ablation_img_size)


def run_name(key: str = DEFAULT, control: bool = False) -> str:
    """The run folder under ``results/<profile>/train/``: ``paper`` and ``control`` for Chapter 4's
    model (as before), ``vgg16``, ``vgg16-control``... for the others."""
    if check_key(key) == DEFAULT:
        return "control" if control else "paper"
    return f"{key}-control" if control else key


def models(profile) -> dict[str, str]:
    """``{key: model name}`` of the four backbones in this profile, Table 3's order."""
    names = ablation_map(profile.ablation_models) | {DEFAULT: profile.train_model}
    return {key: names[key] for key in LABELS}
