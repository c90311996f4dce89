"""Chapter 3: partial-convolution inpainting (Liu et al., ECCV 2018, "Image Inpainting for Irregular
Holes Using Partial Convolutions"), in the layout of the public PyTorch re-implementation
``naoto0804/pytorch-inpainting-with-partial-conv`` (file ``net.py``: ``PartialConv``, ``PCBActiv``,
``PConvUNet``) so that its published checkpoint loads strictly.

The layout matched, key by key (``layer_size=7``, ``input_channels=3``):

- ``enc_1`` .. ``enc_7`` and ``dec_1`` .. ``dec_7``, each a ``PCBActiv`` holding ``conv`` (a partial
  convolution with the submodules ``input_conv`` and ``mask_conv``, both ``nn.Conv2d``), an optional
  ``bn`` (``nn.BatchNorm2d``) and an activation without parameters;
- encoder: ``enc_1`` 3->64 7x7 stride 2 pad 3 without BN, ``enc_2`` 64->128 5x5/2 pad 2,
  ``enc_3`` 128->256 5x5/2 pad 2, ``enc_4`` .. ``enc_7`` ->512 3x3/2 pad 1; all ReLU;
- decoder: nearest 2x upsampling of features and mask, concatenation with the encoder output of the
  same size (the input image for ``dec_1``), then a 3x3/1 pad 1 partial convolution;
  ``dec_5`` .. ``dec_7`` 1024->512, ``dec_4`` 768->256, ``dec_3`` 384->128, ``dec_2`` 192->64,
  all with BN and LeakyReLU(0.2); ``dec_1`` 67->3 without BN or activation;
- ``input_conv`` has a bias only in ``dec_1`` (``conv_bias=True`` there, ``False`` elsewhere);
  ``mask_conv`` never has a bias, and its weight (all ones, not trained) is a registered parameter
  of the full ``(out, in, k, k)`` shape, so it is in the state dict and in the checkpoint.

The checkpoint is a dict with the state dict under ``'model'`` (and ``'n_iter'``, ``'optimizer'``).
The one its README links to (Google Drive) is fetched on first use and checked by
:mod:`helpers.inpaint.weights`.
The model sees the image normalised with ImageNet's mean and std, multiplied by the mask, and the
mask itself repeated over the 3 channels, **1 = valid pixel, 0 = hole**. The repository trains and
tests at 256 x 256 (``--image_size`` defaults to 256 in ``train.py`` and ``test.py``); any side that
is a multiple of 2**layer_size = 128 works.

On the rescaling. The paper's partial convolution is

    x' = W^T (X * M) * sum(1) / sum(M) + b   where sum(M) > 0, else 0;   m' = [sum(M) > 0]

with sums over the whole window (all input channels times k x k). The naoto0804 code computes
``W^T (X * M) / sum(M) + b``: its bias handling is the paper's (the bias is added after the
rescaling, and holes with no valid pixel give 0), but the constant factor sum(1) is not applied, so
its trained weights are the paper's weights multiplied by sum(1). Both are the same operator; only
the parametrisation of W differs. ``PartialConv2d`` computes the paper's formula by default
(``rescale="window"``); ``PConvUNet`` uses ``rescale="count"`` (divide by sum(M) only) so that the
public weights give the outputs they were trained to give. sum(M) is always counted with a fixed
all-ones kernel; ``mask_conv.weight`` is kept only so that the state-dict keys match, and a loaded
checkpoint whose ``mask_conv`` weights are not all ones is refused.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from ..core.checkpoints import CheckpointError, load_into, load_state
from .interface import check_inputs, composite

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DEFAULT_SIDE = 256  # the repository's --image_size default in train.py and test.py
WHAT = "the partial-convolution U-Net (naoto0804 layout)"


class _Conv2d(nn.Conv2d):
    """``nn.Conv2d`` without the default initialisation (the caller initialises or loads)."""

    def reset_parameters(self) -> None:
        pass


class PartialConv2d(nn.Module):
    """A convolution over the valid pixels of each window, renormalised by the share of them.

    ``forward(x, mask) -> (out, new_mask)``; ``mask`` has the shape of ``x`` (1 = valid, 0 = hole).
    ``rescale="window"`` is the paper's ``sum(1) / sum(M)``; ``rescale="count"`` is ``1 / sum(M)``
    (the naoto0804 parametrisation: the same operator with W multiplied by sum(1)).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, dilation: int = 1, groups: int = 1, bias: bool = True,
                 rescale: str = "window", init_weights: bool = True):
        super().__init__()
        if rescale not in ("window", "count"):
            raise ValueError(f"rescale must be 'window' (the paper) or 'count' (naoto0804); "
                             f"got {rescale!r}")
        self.rescale = rescale
        args = (in_channels, out_channels, kernel_size, stride, padding, dilation, groups)
        # No default draw that would be overwritten at once (the U-Net has 33 M weights).
        self.input_conv = _Conv2d(*args, bias=bias)
        # Present for the checkpoint layout only: all ones, never trained, never read in forward.
        self.mask_conv = _Conv2d(*args, bias=False)
        if init_weights:  # as net.py: Kaiming normal (fan in), zero bias
            nn.init.kaiming_normal_(self.input_conv.weight, a=0, mode="fan_in")
            if self.input_conv.bias is not None:
                nn.init.zeros_(self.input_conv.bias)
        nn.init.ones_(self.mask_conv.weight)
        self.mask_conv.weight.requires_grad_(False)
        k = self.input_conv.kernel_size
        self.window = (in_channels // groups) * k[0] * k[1]  # sum(1)

    def valid_count(self, mask: torch.Tensor) -> torch.Tensor:
        """sum(M) over each window, one value per output channel: shape (N, out, h, w)."""
        c = self.input_conv
        n, _, h, w = mask.shape
        per_group = mask.reshape(n, c.groups, -1, h, w).sum(dim=2)
        ones = mask.new_ones(c.groups, 1, *c.kernel_size)
        count = F.conv2d(per_group, ones, None, c.stride, c.padding, c.dilation, c.groups)
        return count.repeat_interleave(c.out_channels // c.groups, dim=1)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.input_conv
        raw = F.conv2d(x * mask, c.weight, None, c.stride, c.padding, c.dilation, c.groups)
        with torch.no_grad():
            count = self.valid_count(mask.to(raw.dtype))
            valid = count > 0
            scale = (self.window if self.rescale == "window" else 1.0) / count.clamp(min=1.0)
            scale = scale.masked_fill(~valid, 0.0)
        out = raw * scale
        if c.bias is not None:
            out = out + c.bias.view(1, -1, 1, 1) * valid
        return out, valid.to(raw.dtype)


class PCBActiv(nn.Module):
    """Partial convolution, then BatchNorm (optional), then ReLU / LeakyReLU(0.2) / nothing."""

    KERNELS = {"down-7": (7, 2, 3), "down-5": (5, 2, 2), "down-3": (3, 2, 1), "none-3": (3, 1, 1)}

    def __init__(self, in_ch: int, out_ch: int, bn: bool = True, sample: str = "none-3",
                 activ: str | None = "relu", conv_bias: bool = False, rescale: str = "count",
                 init_weights: bool = True):
        super().__init__()
        k, s, p = self.KERNELS[sample]
        self.conv = PartialConv2d(in_ch, out_ch, k, s, p, bias=conv_bias, rescale=rescale,
                                  init_weights=init_weights)
        if bn:
            self.bn = nn.BatchNorm2d(out_ch)
        if activ == "relu":
            self.activation = nn.ReLU()
        elif activ == "leaky":
            self.activation = nn.LeakyReLU(negative_slope=0.2)
        elif activ is not None:
            raise ValueError(f"unknown activation {activ!r}")

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, h_mask = self.conv(x, mask)
        if hasattr(self, "bn"):
            h = self.bn(h)
        if hasattr(self, "activation"):
            h = self.activation(h)
        return h, h_mask


class PConvUNet(nn.Module):
    """The U-Net of partial convolutions; ``forward(image, mask) -> (output, output_mask)``.

    Inputs are (N, input_channels, S, S) with S a multiple of 2**layer_size; ``mask`` has the
    image's shape, 1 = valid. ``rescale="count"`` matches the public checkpoints (see the module
    docstring); ``freeze_enc_bn`` keeps the encoder's BatchNorms in eval mode in ``train()``.
    ``init_weights=False`` leaves the convolution weights uninitialised, for a model whose every
    tensor is about to be loaded from a checkpoint (it saves drawing 30 M random numbers).
    """

    def __init__(self, layer_size: int = 7, input_channels: int = 3, rescale: str = "count",
                 init_weights: bool = True):
        super().__init__()
        if layer_size < 4:
            raise ValueError("layer_size must be at least 4 (enc_1 .. enc_4 are fixed)")
        self.freeze_enc_bn = False
        self.layer_size = layer_size
        self.input_channels = input_channels
        kw = dict(rescale=rescale, init_weights=init_weights)
        self.enc_1 = PCBActiv(input_channels, 64, bn=False, sample="down-7", **kw)
        self.enc_2 = PCBActiv(64, 128, sample="down-5", **kw)
        self.enc_3 = PCBActiv(128, 256, sample="down-5", **kw)
        self.enc_4 = PCBActiv(256, 512, sample="down-3", **kw)
        for i in range(5, layer_size + 1):
            setattr(self, f"enc_{i}", PCBActiv(512, 512, sample="down-3", **kw))
        for i in range(5, layer_size + 1):
            setattr(self, f"dec_{i}", PCBActiv(512 + 512, 512, activ="leaky", **kw))
        self.dec_4 = PCBActiv(512 + 256, 256, activ="leaky", **kw)
        self.dec_3 = PCBActiv(256 + 128, 128, activ="leaky", **kw)
        self.dec_2 = PCBActiv(128 + 64, 64, activ="leaky", **kw)
        self.dec_1 = PCBActiv(64 + input_channels, input_channels, bn=False, activ=None,
                              conv_bias=True, **kw)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        step = 2 ** self.layer_size
        if x.shape[-2] % step or x.shape[-1] % step:
            raise ValueError(f"height and width must be multiples of {step}; got {tuple(x.shape)}")
        feats, masks = [x], [mask]
        for i in range(1, self.layer_size + 1):
            h, m = getattr(self, f"enc_{i}")(feats[-1], masks[-1])
            feats.append(h)
            masks.append(m)
        h, m = feats[-1], masks[-1]
        for i in range(self.layer_size, 0, -1):
            h = F.interpolate(h, scale_factor=2, mode="nearest")
            m = F.interpolate(m, scale_factor=2, mode="nearest")
            h = torch.cat([h, feats[i - 1]], dim=1)
            m = torch.cat([m, masks[i - 1]], dim=1)
            h, m = getattr(self, f"dec_{i}")(h, m)
        return h, m

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_enc_bn:
            for name, module in self.named_modules():
                if isinstance(module, nn.BatchNorm2d) and name.startswith("enc"):
                    module.eval()
        return self


def load_checkpoint(model: PConvUNet, source: str | Path) -> PConvUNet:
    """Loads a naoto0804 checkpoint (weights under ``'model'``) strictly into ``model``.

    Checkpoints written by PyTorch 0.4.0 have no BatchNorm ``num_batches_tracked`` (unused in
    eval); those alone are filled in with 0. Every other difference is a ``CheckpointError``.
    """
    state = dict(load_state(source, "model"))
    for key in model.state_dict():
        if key.endswith(".num_batches_tracked") and key not in state \
                and key.replace("num_batches_tracked", "running_mean") in state:
            state[key] = torch.tensor(0, dtype=torch.long)
    load_into(model, state, WHAT)
    for name, p in model.named_parameters():
        if name.endswith("mask_conv.weight") and not bool((p == 1).all()):
            raise CheckpointError(f"this checkpoint does not fit {WHAT}: {name} is not all ones "
                                  f"(in the naoto0804 layout the mask convolution only counts "
                                  f"valid pixels)")
    return model


class PConvInpainter:
    """``inpainter(image, hole) -> image`` with the partial-convolution U-Net.

    ``checkpoint``: a path or URL of a naoto0804 checkpoint (weights under ``'model'``; the inpaint
    step passes the published one, see :mod:`helpers.inpaint.weights`), or None for random weights
    (seeded, so reproducible): that is what the offline ``smoke`` profile runs; its fills are
    noise, never findings. The image is resized to ``side`` x ``side``
    (the hole with nearest neighbour), normalised with ImageNet's mean and std, multiplied by the
    mask (1 = valid, repeated over the 3 channels), filled, un-normalised, resized back, and pasted
    into the hole only, so every pixel outside the hole is the input's.
    """

    name = "pconv"

    def __init__(self, checkpoint: str | Path | None = None, device: str | torch.device = "cpu",
                 side: int = DEFAULT_SIDE, seed: int = 0):
        if side <= 0 or side % 2 ** 7:
            raise ValueError(f"side must be a positive multiple of 128; got {side}")
        self.side, self.device = side, torch.device(device)
        if checkpoint is not None:  # every tensor comes from the checkpoint (loaded strictly)
            model = load_checkpoint(PConvUNet(init_weights=False), checkpoint)
        else:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(seed)
                model = PConvUNet()
        self.model = model.to(self.device).eval()
        self.mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(3, 1, 1)

    def __call__(self, image: Image.Image, hole: np.ndarray) -> Image.Image:
        check_inputs(image, hole)
        rgb = image.convert("RGB")
        s = self.side
        small = np.asarray(rgb.resize((s, s), Image.Resampling.BILINEAR), dtype=np.float32) / 255
        small_hole = np.asarray(Image.fromarray(hole.astype(np.uint8) * 255)
                                .resize((s, s), Image.Resampling.NEAREST)) > 127
        x = (torch.from_numpy(small).permute(2, 0, 1) - self.mean) / self.std
        mask = torch.from_numpy(~small_hole).float().expand(3, s, s)
        with torch.inference_mode():
            out, _ = self.model((x * mask)[None].to(self.device), mask[None].to(self.device))
        out = (out[0].float().cpu() * self.std + self.mean).clamp(0, 1)
        arr = (out.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        filled = Image.fromarray(arr).resize(rgb.size, Image.Resampling.BICUBIC)
        return composite(rgb, filled, hole)


def make(checkpoint: str | Path | None = None,
         device: str | torch.device = "cpu") -> PConvInpainter:
    """The inpainter at the repository's 256 x 256; ``checkpoint=None``: random weights (smoke)."""
    return PConvInpainter(checkpoint=checkpoint, device=device)
