"""Chapter 5: the four backbones of the paper's Table 3, behind one switch: ``--model KEY``.

``convnext`` is Chapter 4's classifier (the profile's ``train_model``, ConvNeXt-XL in ``paper``);
``vgg16``, ``resnet50`` and ``efficientnet_b0`` are the ablation's, named in the profile's
``ablation_models`` (timm's ``vgg16.tv_in1k``, ``resnet50.tv_in1k``, ``efficientnet_b0.ra_in1k``;
tiny random stand-ins in ``smoke``). All four are trained at the profile's ``train_img_size``, so
that one input size and one transform serve every row of Table 3. Everything else (head, loss,
optimizer, batch, epochs, early stopping, data) is the profile's, the same for all four, so that
the comparison is about the backbone alone.

Three more switches make Chapter 5's grid and seeds (``--img-size``, ``--lr``, ``--seed``): a run
with the profile's own values keeps its plain folder (``paper``, ``vgg16``...), one with others
has them in its name (``vgg16-224px-lr3e-5-seed2025``), so no two experiments share a folder.
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


def for_model(profile, key: str = DEFAULT, *, img_size: int | None = None, lr: float | None = None,
              seed: int | None = None):
    """The profile as the trainer and evaluator see it for backbone ``key`` (and, when given, the
    run's own input side, learning rate and seed)."""
    changes = own_settings(profile, img_size, lr, seed)
    if check_key(key) != DEFAULT:
        changes["train_model"] = ablation_map(profile.ablation_models)[key]
    return dataclasses.replace(profile, **changes) if changes else profile


def own_settings(profile, img_size: int | None = None, lr: float | None = None,
                 seed: int | None = None) -> dict:
    """The profile's fields a run sets to other values than the profile's own (``train_img_size``,
    ``train_lr``, ``seed``); a value equal to the profile's is left out: the same run."""
    wanted = {"train_img_size": img_size, "train_lr": lr, "seed": seed}
    for field, value in wanted.items():
        if value is not None and (value <= 0 if field != "seed" else value < 0):
            raise ValueError(f"{field} must be positive, got {value!r}")
    return {k: v for k, v in wanted.items() if v is not None and v != getattr(profile, k)}


def lr_text(lr: float) -> str:
    """A learning rate as a folder name and a command line take it: ``1e-4``, ``2.5e-4``."""
    mantissa, exponent = f"{float(lr):.6e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def run_suffix(profile, img_size: int | None = None, lr: float | None = None, seed: int | None = None) -> str:
    """``-224px-lr3e-5-seed2025``: the settings a run changes, in its folder's name ("" for none)."""
    own, parts = own_settings(profile, img_size, lr, seed), []
    if "train_img_size" in own:
        parts.append(f"-{own['train_img_size']}px")
    if "train_lr" in own:
        parts.append(f"-lr{lr_text(own['train_lr'])}")
    if "seed" in own:
        parts.append(f"-seed{own['seed']}")
    return "".join(parts)


def trial_args(profile, key: str = DEFAULT, img_size: int | None = None, lr: float | None = None,
               seed: int | None = None) -> tuple[str, ...]:
    """The arguments of ``train`` and ``evaluate`` for this run: ``--model`` and the changed settings."""
    own = own_settings(profile, img_size, lr, seed)
    flags = (("train_img_size", "--img-size", str), ("train_lr", "--lr", lr_text), ("seed", "--seed", str))
    return ("--model", check_key(key), *(x for field, flag, text in flags if field in own
                                          for x in (flag, text(own[field]))))


def run_name(key: str = DEFAULT, control: bool = False, suffix: str = "") -> str:
    """The run folder under ``results/<profile>/train/``: ``paper`` and ``control`` for Chapter 4's
    model (as before), ``vgg16``, ``vgg16-control``... for the others, then ``suffix``
    (:func:`run_suffix`)."""
    if check_key(key) == DEFAULT:
        return ("control" if control else "paper") + suffix
    return (f"{key}-control" if control else key) + suffix


def models(profile) -> dict[str, str]:
    """``{key: model name}`` of the four backbones in this profile, Table 3's order."""
    names = ablation_map(profile.ablation_models) | {DEFAULT: profile.train_model}
    return {key: names[key] for key in LABELS}
