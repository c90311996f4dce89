"""Chapters 4-5: the classifier, a timm ConvNeXt with a two-output head, and its loss.

The paper fine-tunes ConvNeXt-XL (``convnext_xlarge.fb_in22k_ft_in1k_384``) with "global average
pooling and one dense layer with two outputs", a sigmoid and binary cross-entropy. timm's ConvNeXt
head is exactly that plus the LayerNorm the published weights were trained with: global average
pool -> LayerNorm -> one Linear (``head.fc``). We keep timm's head as it is, so the pretrained
LayerNorm is used, and only the Linear is new (``num_classes=2``).

Two heads (``profile.train_head``):

- ``paper``: two outputs, sigmoid on each, binary cross-entropy against the one-hot target
  (output 0 = "real", output 1 = "generated"), as the paper describes;
- ``logit``: one output, ``BCEWithLogits`` against the label: the usual way to train a binary
  classifier, kept as a comparison.

Weights (``profile.train_pretrained``): ``timm`` (the published ones, through timm and the Hugging
Face cache), ``none`` (random), or a path to a local weights file in timm's format, loaded through
timm's own loading path (``pretrained_cfg_overlay=dict(file=...)``), which drops the 1000-class
classifier and starts a new one for our outputs.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from huggingface_hub.constants import HF_HUB_CACHE
from torch import nn

from ..core.checkpoints import CheckpointError

TINY = "tiny-convnext"
# Smoke's stand-ins: timm's code of each architecture at toy size and with random weights, so every
# code path of the real models runs on any CPU. ConvNeXt: ConvNeXt-atto's registration with one
# block per stage and narrow stages (0.23 M parameters); ResNet: ResNet-50's bottleneck blocks, one
# per stage, narrow (0.14 M); EfficientNet: EfficientNet-B0 itself, unchanged (4.0 M; its kwargs
# cannot be narrowed through timm's public API); VGG: VGG-16's conv layout, narrow, with a small
# hidden layer (0.57 M).
STANDINS = {
    TINY: ("convnext_atto", dict(depths=(1, 1, 1, 1), dims=(16, 32, 64, 128))),
    "tiny-resnet": ("resnet50", dict(layers=(1, 1, 1, 1), channels=(8, 16, 32, 64), stem_width=8)),
    "tiny-efficientnet": ("efficientnet_b0", {}),
    "tiny-vgg": ("vgg", dict(cfg=[16, "M", 32, "M", 64, "M", 64, 64, "M", 64, 64, "M"], mlp_ratio=1 / 64)),
}
HEADS = {"paper": 2, "logit": 1}  # outputs of the Linear


def num_outputs(head: str) -> int:
    if head not in HEADS:
        raise ValueError(f"train_head must be one of {', '.join(HEADS)}; got {head!r}")
    return HEADS[head]


def _standin(name: str, num_classes: int) -> nn.Module:
    import timm

    base, kwargs = STANDINS[name]
    if base == "vgg":  # timm registers VGG only with its fixed layouts: the class itself
        from timm.models.vgg import VGG

        return VGG(num_classes=num_classes, **kwargs)
    return timm.create_model(base, pretrained=False, num_classes=num_classes, **kwargs)


def build_model(profile, pretrained: str | None = None) -> nn.Module:
    """The profile's timm model with the head's number of outputs and the asked-for weights.

    ``pretrained`` overrides ``profile.train_pretrained``: ``"timm"``, ``"none"`` or a file path.
    """
    import timm

    source = profile.train_pretrained if pretrained is None else str(pretrained)
    name, num_classes = profile.train_model, num_outputs(profile.train_head)
    kwargs = {"num_classes": num_classes}
    if name in STANDINS:
        if source == "none":
            return _standin(name, num_classes)
        base, extra = STANDINS[name]
        if source == "timm" or base == "vgg":
            raise CheckpointError(f"{name!r} is a random stand-in with no published weights: use "
                                  f"--set train_pretrained=none, or a timm model name")
        # a weights file of the stand-in's own shape, through timm's loading path (tests use this)
        return _from_file(base, kwargs | extra, Path(source).expanduser())
    if not timm.is_model(name):
        raise CheckpointError(f"timm has no model {name!r}; give a timm name (e.g. "
                              f"convnext_xlarge.fb_in22k_ft_in1k_384) or one of the stand-ins "
                              f"{', '.join(STANDINS)}")
    if source == "none":
        return timm.create_model(name, pretrained=False, **kwargs)
    if source == "timm":
        return _from_hub(name, kwargs)
    return _from_file(name, kwargs, Path(source).expanduser())


def _from_hub(name: str, kwargs: dict) -> nn.Module:
    """The published weights through timm: downloaded once into the Hugging Face cache."""
    import timm

    try:
        return timm.create_model(name, pretrained=True, **kwargs)
    except Exception as exc:  # offline: LocalEntryNotFoundError, socket errors, HTTP errors
        hub_id = _hub_id(name)
        raise CheckpointError(
            f"could not load the published weights of {name} ({type(exc).__name__}: {str(exc)[:300]}).\n"
            f"With internet access timm downloads them once from the Hugging Face hub ({hub_id}) into "
            f"the cache {HF_HUB_CACHE} (moved with $HF_HOME or $HF_HUB_CACHE). Offline, run "
            f"`huggingface-cli download {hub_id}` on a connected machine and copy its cache folder "
            f"here, or download its model.safetensors and pass it with "
            f"--set train_pretrained=/path/to/model.safetensors") from None


def _hub_id(name: str) -> str:
    import timm

    try:
        cfg = timm.models.get_pretrained_cfg(name, allow_unregistered=True)
    except RuntimeError:  # a tag timm does not know
        cfg = None
    return getattr(cfg, "hf_hub_id", None) or f"timm/{name}"


def _from_file(name: str, kwargs: dict, path: Path) -> nn.Module:
    """Weights from a local file in timm's format (safetensors, or a .pth/.bin state dict)."""
    import timm

    if not path.is_file():
        raise CheckpointError(f"train_pretrained={str(path)!r} is neither 'timm', 'none' nor an existing "
                              f"file; give the path of a weights file in timm's format "
                              f"(e.g. the hub's model.safetensors)")
    try:
        # timm's own path: its loader (torch.load with weights_only=True, or safetensors), its
        # checkpoint filter, and the classifier dropped because our number of outputs differs.
        return timm.create_model(name, pretrained=True, pretrained_cfg_overlay=dict(file=str(path)),
                                 **kwargs)
    except Exception as exc:
        raise CheckpointError(f"{path} cannot be loaded as {name} weights in timm's format "
                              f"({type(exc).__name__}: {str(exc)[:400]}). Give the weights file of "
                              f"this very architecture, e.g. the hub's model.safetensors") from None


def data_config(model: nn.Module) -> dict:
    """timm's preprocessing of the model: the resampling filter, and the mean and std its published
    weights were trained with (:mod:`helpers.classify.transform` builds the input from it)."""
    import timm

    return timm.data.resolve_model_data_config(model)


def loss_and_prob(logits: torch.Tensor, labels: torch.Tensor, head: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image loss and P(generated), both of shape ``[batch]``, computed in float32.

    ``paper``: binary cross-entropy on the sigmoid of both outputs against the one-hot target,
    averaged over the two outputs (Keras' ``binary_crossentropy`` on a two-unit sigmoid layer, which
    the paper's description matches). The two sigmoids are trained independently, so they need not
    sum to one; we read P(generated) from the "generated" output, ``sigmoid(out[:, 1])``, the
    output trained to say "generated". (A softmax over both would be a different model.)

    ``logit``: ``BCEWithLogits`` against the label; P(generated) = ``sigmoid(logit)``.
    A prediction is "generated" when P(generated) > 0.5, for both heads.
    """
    logits = logits.float()
    labels = labels.to(logits.device)
    if head == "paper":
        target = F.one_hot(labels.long(), num_classes=2).float()
        # with logits: the numerically safe form of BCE(sigmoid(x), t), same value and gradient
        loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none").mean(dim=1)
        return loss, torch.sigmoid(logits[:, 1])
    if head == "logit":
        logit = logits.reshape(-1)
        loss = F.binary_cross_entropy_with_logits(logit, labels.float(), reduction="none")
        return loss, torch.sigmoid(logit)
    raise ValueError(f"train_head must be one of {', '.join(HEADS)}; got {head!r}")


def count_flops(model: nn.Module, img_size: int, device: torch.device | str = "cpu") -> int:
    """Floating-point operations of one forward pass on one image (a multiply-add counts 2).

    Counted by PyTorch's own ``FlopCounterMode`` (no fvcore). A training step costs about three
    times this per image (forward, and a backward twice as expensive), the usual basis of MFU.
    """
    from torch.utils.flop_counter import FlopCounterMode  # lazily: it loads triton (0.2 s)

    was_training = model.training
    model.eval()
    x = torch.zeros(1, 3, img_size, img_size, device=device)
    counter = FlopCounterMode(display=False)
    try:
        with torch.no_grad(), counter:
            model(x)
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())
