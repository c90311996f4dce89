"""DeepFill v2: free-form inpainting with gated convolutions (Yu et al., ICCV 2019).

The network is the paper's two-stage generator: a coarse encoder-decoder of gated convolutions
(dilated ones in the middle), then a refinement network with two branches, one of plain gated
convolutions and one with *contextual attention*, which fills the hole with a soft mixture of
feature patches copied from the known part of the image. A gated convolution is one convolution
with twice the output channels, split into features (through ELU, or ReLU where the public models
use it) and gates (through a sigmoid), multiplied. The last layer of each stage is a plain
convolution to RGB followed by ``tanh``.

Which public layout this matches
--------------------------------
Module names, channel counts and kernel sizes follow the PyTorch port in the GitHub repository
``nipponjo/deepfillv2-pytorch`` (read at commit d17548c), so that its checkpoints load strictly
(each is a dict with the generator's state under ``"G"``). The repository has two generator files
and two kinds of checkpoint, and this module reproduces both:

- ``Generator`` = its ``model/networks.py``: ``stage1`` (``CoarseGenerator``: ``conv1``,
  ``down_block1/2`` of ``GDownsamplingBlock``, ``conv_bn1..7`` with dilations 1,2,4,8,16,1,1,
  ``up_block1/2`` of ``GUpsamplingBlock``, ``conv_to_rgb``) and ``stage2`` (``FineGenerator``:
  branch ``conv_*``, attention branch ``ca_*`` with ``contextual_attention``, then ``conv_bn6/7``,
  ``up_block1/2``, ``conv_to_rgb``). Symmetric PyTorch padding, ``F.interpolate`` nearest
  down-sampling inside the attention, fused attention scores, and one persistent buffer
  ``stage2.contextual_attention.fuse_weight`` (a 3x3 identity) that is part of the state dict.
  Weights: ``states_pt_places2.pth`` -- per the repository's README these are the official weights
  *fine-tuned* for a while on Places2 in this padding setting, not the converted originals.
  Checkpoints of the repository's older revision of this file (branch prefixes ``b1_``/``b2_``
  instead of ``conv_``/``ca_``, no ``fuse_weight``) are renamed on load; see ``upgrade_state``.
- ``GeneratorTF`` = its ``model/networks_tf.py``: one flat module with the original TensorFlow
  names (``conv1`` ... ``conv17``, ``xconv1`` ... ``xconv10_atrous``, ``pmconv1`` ... ``pmconv10``,
  ``allconv11`` ... ``allconv17``), TensorFlow "SAME" padding (asymmetric for the stride-2 layers)
  and TensorFlow's align-corners nearest down-sampling inside the attention. Weights:
  ``states_tf_places2.pth`` -- **the conversion of the official TensorFlow Places2 weights**
  (JiahuiYu/generative_inpainting v2.0.0). As in that file, its attention does not fuse scores
  (``fuse=False``; the original TensorFlow layer fuses by default -- pass ``fuse=True`` for that).

The book uses ``states_tf_places2.pth``, fetched on first use from the Drive id the repository's
``download_files.py`` lists and checked by :mod:`helpers.inpaint_weights`.

``DeepFillInpainter`` picks the class from the checkpoint's key names (``stage1.*`` means
``networks.py``, as the repository's own ``test.py`` does), then ``load_into`` loads strictly.

Conventions (both layouts): cnum = 48, input of 5 channels ``[x * (1 - mask), ones, ones * mask]``
with the image in [-1, 1] and **mask 1 = hole**; ``forward(x, mask)`` returns ``(coarse, fine)``,
both ``tanh``-bounded in [-1, 1], of the input's size; height and width must be multiples of 8
(two stride-2 layers, then the attention halves once more).

Contextual attention settings (both layouts): 3x3 matching patches (``ksize=3``), stride 1,
``rate=2`` (match on features down-sampled by 2, paste 4x4 patches of the full-resolution features
with stride 2 and average the overlaps), ``softmax_scale=10``, ``fuse_k=3``, no learned weights.
A background patch is usable only if its 3x3 window of the mask (down-sampled by 8) has no hole.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

from .checkpoints import load_into, load_state
from .inpainters import check_inputs, composite

GRID = 8  # image sides must be multiples of this
CNUM_IN, CNUM = 5, 48


# --------------------------------------------------------------------------- padding helpers

def _tf_same_pad(x: torch.Tensor, ksize: int, stride: int, dilation: int) -> torch.Tensor:
    """Zero padding as TensorFlow's "SAME": output = ceil(input / stride); the odd pixel goes last."""
    span = (ksize - 1) * dilation + 1
    pads = []
    for size in (x.shape[-1], x.shape[-2]):  # F.pad wants (left, right, top, bottom)
        out = -(-size // stride)
        total = max((out - 1) * stride + span - size, 0)
        pads += [total // 2, total - total // 2]
    return F.pad(x, pads)


def _tf_nearest_down(x: torch.Tensor, factor: int) -> torch.Tensor:
    """TensorFlow's nearest-neighbour resize with ``align_corners=True`` to size // factor."""
    h, w = x.shape[-2:]
    oh, ow = max(h // factor, 1), max(w // factor, 1)
    rows = torch.linspace(0, h - 1, oh, device=x.device).add(0.5).floor().long()
    cols = torch.linspace(0, w - 1, ow, device=x.device).add(0.5).floor().long()
    return x.index_select(-2, rows).index_select(-1, cols)


def _torch_nearest_down(x: torch.Tensor, factor: int) -> torch.Tensor:
    return F.interpolate(x, scale_factor=1.0 / factor, mode="nearest", recompute_scale_factor=False)


# --------------------------------------------------------------------------- gated convolution

class GConv(nn.Module):
    """Gated convolution: ``ELU(features) * sigmoid(gates)`` from one conv of 2 x ``cnum_out``.

    State: ``conv.weight`` (``2*cnum_out, cnum_in, k, k``) and ``conv.bias``. ``activation``
    defaults to ELU; ``activation=None, gated_default=False`` (the to-RGB layers) gives a plain
    convolution of ``cnum_out`` channels, and, as in the public files, a layer of exactly 3
    outputs is never gated. ``tf_same=True`` pads like
    TensorFlow ("SAME", computed from the input size); otherwise ``dilation * (k - 1) // 2`` on
    every side.
    """

    def __init__(self, cnum_in: int, cnum_out: int, ksize: int, stride: int = 1, rate: int = 1,
                 activation: nn.Module | None = None, gated_default: bool = True, tf_same: bool = False):
        super().__init__()
        if activation is None and gated_default:
            activation = nn.ELU()
        self.activation = activation
        self.cnum_out = cnum_out
        self.gated = activation is not None and cnum_out != 3
        self.ksize, self.stride, self.rate, self.tf_same = ksize, stride, rate, tf_same
        self.conv = nn.Conv2d(cnum_in, 2 * cnum_out if self.gated else cnum_out, ksize, stride,
                              padding=0 if tf_same else rate * (ksize - 1) // 2, dilation=rate)
        # the public ports' initialisation: Kaiming uniform (fan-out), zero bias
        if activation is not None:
            nn.init.kaiming_uniform_(self.conv.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.tf_same:
            x = _tf_same_pad(x, self.ksize, self.stride, self.rate)
        x = self.conv(x)
        if not self.gated:
            return x
        features, gates = x.split(self.cnum_out, dim=1)
        return self.activation(features) * torch.sigmoid(gates)


GatedConv2d = GConv  # the paper's name for the layer


def _gconv(cin, cout, k, stride=1, rate=1, relu=False, rgb=False, tf=False) -> GConv:
    act = nn.ReLU() if relu else None
    return GConv(cin, cout, k, stride, rate, activation=act, gated_default=not rgb, tf_same=tf)


class GDeConv(nn.Module):
    """Nearest-neighbour up-sampling by 2, then a 3x3 gated convolution (state under ``conv``)."""

    def __init__(self, cnum_in: int, cnum_out: int, tf_same: bool = False):
        super().__init__()
        self.conv = _gconv(cnum_in, cnum_out, 3, tf=tf_same)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class GDownsamplingBlock(nn.Module):
    """``conv1_downsample`` (3x3, stride 2) to ``cnum_hidden``, then ``conv2`` (3x3) to ``cnum_out``."""

    def __init__(self, cnum_in: int, cnum_out: int, cnum_hidden: int | None = None):
        super().__init__()
        hidden = cnum_out if cnum_hidden is None else cnum_hidden
        self.conv1_downsample = _gconv(cnum_in, hidden, 3, stride=2)
        self.conv2 = _gconv(hidden, cnum_out, 3)

    def forward(self, x):
        return self.conv2(self.conv1_downsample(x))


class GUpsamplingBlock(nn.Module):
    """``conv1_upsample`` (``GDeConv``) to ``cnum_hidden``, then ``conv2`` (3x3) to ``cnum_out``."""

    def __init__(self, cnum_in: int, cnum_out: int, cnum_hidden: int | None = None):
        super().__init__()
        hidden = cnum_out if cnum_hidden is None else cnum_hidden
        self.conv1_upsample = GDeConv(cnum_in, hidden)
        self.conv2 = _gconv(hidden, cnum_out, 3)

    def forward(self, x):
        return self.conv2(self.conv1_upsample(x))


# --------------------------------------------------------------------------- contextual attention

class ContextualAttention(nn.Module):
    """Fill foreground features with a softmax mixture of background patches (no learned weights).

    For every position of ``f`` (down-sampled by ``rate``), cosine-like scores against every 3x3
    patch of ``b`` (down-sampled likewise; the patch, not ``f``, is normalised), optionally fused so
    that neighbouring matches reinforce each other, masked so that patches touching the hole get
    zero weight, ``softmax(scale * score)`` over patches; the output pastes the corresponding
    ``2*rate`` x ``2*rate`` patches of the full-resolution ``b`` with a transposed convolution
    (stride ``rate``) and averages the overlaps. ``mask`` is at image resolution (1 = hole);
    ``n_down`` says how many times the features were halved relative to it.

    ``tf_compat`` selects TensorFlow's align-corners nearest down-sampling and "SAME" padding
    (``networks_tf.py``); ``persistent_fuse_weight`` keeps the identity fusion kernel in the state
    dict as ``fuse_weight`` (``networks.py`` stores it there). Only ``stride=1``, ``rate=2`` (the
    published setting) are implemented.
    """

    def __init__(self, ksize: int = 3, stride: int = 1, rate: int = 2, fuse_k: int = 3,
                 softmax_scale: float = 10.0, n_down: int = 2, fuse: bool = True,
                 tf_compat: bool = False, persistent_fuse_weight: bool = True):
        super().__init__()
        if stride != 1 or rate != 2:
            raise ValueError("ContextualAttention implements stride=1, rate=2 (DeepFill v2's setting)")
        self.ksize, self.stride, self.rate, self.fuse_k = ksize, stride, rate, fuse_k
        self.softmax_scale, self.n_down, self.fuse, self.tf_compat = softmax_scale, n_down, fuse, tf_compat
        self.register_buffer("fuse_weight", torch.eye(fuse_k).view(1, 1, fuse_k, fuse_k),
                             persistent=persistent_fuse_weight)

    def _pad(self, x, k, stride):
        if self.tf_compat:
            return _tf_same_pad(x, k, stride, 1)
        return F.pad(x, [(k - 1) // 2] * 4)

    def _down(self, x, factor):
        return _tf_nearest_down(x, factor) if self.tf_compat else _torch_nearest_down(x, factor)

    def _patches(self, x, k, stride):
        """``[N, L, C, k, k]``: every k x k patch of ``x`` (padded), in row-major order."""
        n, c = x.shape[:2]
        cols = F.unfold(self._pad(x, k, stride), kernel_size=k, stride=stride)
        return cols.view(n, c, k, k, -1).permute(0, 4, 1, 2, 3)

    def _fuse(self, score, bh, bw, fh, fw):
        """Sum scores along diagonals: background and foreground moving together, in both axes."""
        k = self.fuse_k
        weight = self.fuse_weight.to(score.dtype)
        s = F.conv2d(score.reshape(1, 1, bh * bw, fh * fw), weight, padding=(k - 1) // 2)
        s = s.view(bh, bw, fh, fw).permute(1, 0, 3, 2).reshape(1, 1, bw * bh, fw * fh)
        s = F.conv2d(s, weight, padding=(k - 1) // 2)
        return s.view(bw, bh, fw, fh).permute(1, 0, 3, 2).reshape(1, bh * bw, fh, fw)

    def forward(self, f: torch.Tensor, b: torch.Tensor, mask: torch.Tensor | None = None,
                return_attention: bool = False):
        out_shape = f.shape
        raw = self._patches(b, 2 * self.rate, self.rate * self.stride)  # [N, L, C, 4, 4]
        f_small, b_small = self._down(f, self.rate), self._down(b, self.rate)
        fh, fw = f_small.shape[-2:]
        bh, bw = b_small.shape[-2:]
        if raw.shape[1] != bh * bw:
            raise ValueError(f"feature sides {tuple(b.shape[-2:])} must be even for contextual attention")
        patches = self._patches(b_small, self.ksize, self.stride)        # [N, L, C, 3, 3]
        if mask is None:
            mask = torch.zeros(b.shape[0], 1, bh, bw, device=b.device, dtype=b.dtype)
        else:
            mask = self._down(mask.to(b.dtype), (2 ** self.n_down) * self.rate)
        if mask.shape[-2:] != (bh, bw):
            raise ValueError(f"mask of size {tuple(mask.shape[-2:])} does not match features "
                             f"{(bh, bw)}; image sides must be multiples of {GRID}")
        if mask.shape[0] != b.shape[0]:
            mask = mask[:1].expand(b.shape[0], -1, -1, -1)
        usable = (self._patches(mask, self.ksize, self.stride).flatten(2).mean(2) == 0)  # [N, L]
        usable = usable.to(b.dtype)

        outputs, attentions = [], []
        for i in range(f.shape[0]):
            w = patches[i]
            w = w / w.pow(2).sum(dim=(1, 2, 3), keepdim=True).sqrt().clamp_min(1e-4)
            score = F.conv2d(self._pad(f_small[i:i + 1], self.ksize, 1), w)  # [1, L, fh, fw]
            if self.fuse:
                score = self._fuse(score, bh, bw, fh, fw)
            valid = usable[i].view(1, -1, 1, 1)
            attention = F.softmax(score * valid * self.softmax_scale, dim=1) * valid
            pasted = F.conv_transpose2d(attention, raw[i], stride=self.rate, padding=1) / 4.0
            outputs.append(pasted)
            attentions.append(attention)
        y = torch.cat(outputs).reshape(out_shape)
        return (y, torch.cat(attentions)) if return_attention else y


# --------------------------------------------------------------------------- generators (networks.py)

def _check_sides(x: torch.Tensor) -> None:
    h, w = x.shape[-2:]
    if h % GRID or w % GRID:
        raise ValueError(f"DeepFill v2 needs height and width that are multiples of {GRID}; got {h}x{w}")


class CoarseGenerator(nn.Module):
    """Stage 1: gated encoder-decoder, dilated middle (rates 2, 4, 8, 16), tanh output."""

    def __init__(self, cnum_in: int = CNUM_IN, cnum: int = CNUM):
        super().__init__()
        self.conv1 = _gconv(cnum_in, cnum // 2, 5)
        self.down_block1 = GDownsamplingBlock(cnum // 2, cnum)
        self.down_block2 = GDownsamplingBlock(cnum, 2 * cnum)
        for i, rate in enumerate((1, 2, 4, 8, 16, 1, 1), start=1):
            setattr(self, f"conv_bn{i}", _gconv(2 * cnum, 2 * cnum, 3, rate=rate))
        self.up_block1 = GUpsamplingBlock(2 * cnum, cnum)
        self.up_block2 = GUpsamplingBlock(cnum, cnum // 4, cnum_hidden=cnum // 2)
        self.conv_to_rgb = _gconv(cnum // 4, 3, 3, rgb=True)
        self.tanh = nn.Tanh()

    def forward(self, x):
        x = self.down_block2(self.down_block1(self.conv1(x)))
        for i in range(1, 8):
            x = getattr(self, f"conv_bn{i}")(x)
        x = self.up_block2(self.up_block1(x))
        return self.tanh(self.conv_to_rgb(x))


class FineGenerator(nn.Module):
    """Stage 2: a dilated gated branch (``conv_*``) and a contextual-attention branch (``ca_*``)."""

    def __init__(self, cnum: int = CNUM, fuse: bool = True):
        super().__init__()
        self.conv_conv1 = _gconv(3, cnum // 2, 5)
        self.conv_down_block1 = GDownsamplingBlock(cnum // 2, cnum, cnum_hidden=cnum // 2)
        self.conv_down_block2 = GDownsamplingBlock(cnum, 2 * cnum, cnum_hidden=cnum)
        for i, rate in enumerate((1, 2, 4, 8, 16), start=1):
            setattr(self, f"conv_conv_bn{i}", _gconv(2 * cnum, 2 * cnum, 3, rate=rate))

        self.ca_conv1 = _gconv(3, cnum // 2, 5)
        self.ca_down_block1 = GDownsamplingBlock(cnum // 2, cnum, cnum_hidden=cnum // 2)
        self.ca_down_block2 = GDownsamplingBlock(cnum, 2 * cnum)
        self.ca_conv_bn1 = _gconv(2 * cnum, 2 * cnum, 3, relu=True)
        self.contextual_attention = ContextualAttention(ksize=3, stride=1, rate=2, fuse_k=3,
                                                        softmax_scale=10.0, n_down=2, fuse=fuse)
        self.ca_conv_bn4 = _gconv(2 * cnum, 2 * cnum, 3)
        self.ca_conv_bn5 = _gconv(2 * cnum, 2 * cnum, 3)

        self.conv_bn6 = _gconv(4 * cnum, 2 * cnum, 3)
        self.conv_bn7 = _gconv(2 * cnum, 2 * cnum, 3)
        self.up_block1 = GUpsamplingBlock(2 * cnum, cnum)
        self.up_block2 = GUpsamplingBlock(cnum, cnum // 4, cnum_hidden=cnum // 2)
        self.conv_to_rgb = _gconv(cnum // 4, 3, 3, rgb=True)
        self.tanh = nn.Tanh()

    def forward(self, x, mask):
        h = self.conv_down_block2(self.conv_down_block1(self.conv_conv1(x)))
        for i in range(1, 6):
            h = getattr(self, f"conv_conv_bn{i}")(h)
        a = self.ca_conv_bn1(self.ca_down_block2(self.ca_down_block1(self.ca_conv1(x))))
        a = self.contextual_attention(a, a, mask)
        a = self.ca_conv_bn5(self.ca_conv_bn4(a))
        y = self.conv_bn7(self.conv_bn6(torch.cat([h, a], dim=1)))
        y = self.up_block2(self.up_block1(y))
        return self.tanh(self.conv_to_rgb(y))


class Generator(nn.Module):
    """DeepFill v2 generator in the layout of nipponjo/deepfillv2-pytorch ``model/networks.py``.

    ``forward(x, mask)``: ``x`` is ``[N, 5, H, W]`` = ``[image * (1 - mask), ones, ones * mask]``
    with the image in [-1, 1], ``mask`` is ``[N, 1, H, W]`` with 1 = hole; returns
    ``(coarse, fine)``, each ``[N, 3, H, W]`` in [-1, 1]. The refinement stage sees the coarse
    result pasted into the hole of the input image.
    """

    layout = "networks.py"

    def __init__(self, cnum_in: int = CNUM_IN, cnum: int = CNUM, fuse: bool = True):
        super().__init__()
        self.stage1 = CoarseGenerator(cnum_in, cnum)
        self.stage2 = FineGenerator(cnum, fuse=fuse)

    def forward(self, x, mask):
        _check_sides(x)
        coarse = self.stage1(x)
        pasted = coarse * mask + x[:, :3] * (1.0 - mask)
        return coarse, self.stage2(pasted, mask)


# --------------------------------------------------------------------------- generator (networks_tf.py)

class GeneratorTF(nn.Module):
    """DeepFill v2 generator in the layout of nipponjo/deepfillv2-pytorch ``model/networks_tf.py``.

    The names of the original TensorFlow graph, TensorFlow "SAME" padding; this is the layout of
    ``states_tf_places2.pth``, the converted official Places2 weights. Same call as ``Generator``.
    """

    layout = "networks_tf.py"

    def __init__(self, cnum_in: int = CNUM_IN, cnum: int = CNUM, fuse: bool = False):
        super().__init__()
        c = cnum

        def g(cin, cout, k, stride=1, rate=1, **kw):
            return _gconv(cin, cout, k, stride, rate, tf=True, **kw)

        # stage 1
        self.conv1 = g(cnum_in, c // 2, 5)
        self.conv2_downsample = g(c // 2, c, 3, 2)
        self.conv3 = g(c, c, 3)
        self.conv4_downsample = g(c, 2 * c, 3, 2)
        self.conv5 = g(2 * c, 2 * c, 3)
        self.conv6 = g(2 * c, 2 * c, 3)
        self.conv7_atrous = g(2 * c, 2 * c, 3, rate=2)
        self.conv8_atrous = g(2 * c, 2 * c, 3, rate=4)
        self.conv9_atrous = g(2 * c, 2 * c, 3, rate=8)
        self.conv10_atrous = g(2 * c, 2 * c, 3, rate=16)
        self.conv11 = g(2 * c, 2 * c, 3)
        self.conv12 = g(2 * c, 2 * c, 3)
        self.conv13_upsample = GDeConv(2 * c, c, tf_same=True)
        self.conv14 = g(c, c, 3)
        self.conv15_upsample = GDeConv(c, c // 2, tf_same=True)
        self.conv16 = g(c // 2, c // 4, 3)
        self.conv17 = g(c // 4, 3, 3, rgb=True)
        self.tanh = nn.Tanh()
        # stage 2, dilated branch
        self.xconv1 = g(3, c // 2, 5)
        self.xconv2_downsample = g(c // 2, c // 2, 3, 2)
        self.xconv3 = g(c // 2, c, 3)
        self.xconv4_downsample = g(c, c, 3, 2)
        self.xconv5 = g(c, 2 * c, 3)
        self.xconv6 = g(2 * c, 2 * c, 3)
        self.xconv7_atrous = g(2 * c, 2 * c, 3, rate=2)
        self.xconv8_atrous = g(2 * c, 2 * c, 3, rate=4)
        self.xconv9_atrous = g(2 * c, 2 * c, 3, rate=8)
        self.xconv10_atrous = g(2 * c, 2 * c, 3, rate=16)
        # stage 2, attention branch
        self.pmconv1 = g(3, c // 2, 5)
        self.pmconv2_downsample = g(c // 2, c // 2, 3, 2)
        self.pmconv3 = g(c // 2, c, 3)
        self.pmconv4_downsample = g(c, 2 * c, 3, 2)
        self.pmconv5 = g(2 * c, 2 * c, 3)
        self.pmconv6 = g(2 * c, 2 * c, 3, relu=True)
        self.contextual_attention = ContextualAttention(ksize=3, stride=1, rate=2, fuse_k=3,
                                                        softmax_scale=10.0, n_down=2, fuse=fuse,
                                                        tf_compat=True, persistent_fuse_weight=False)
        self.pmconv9 = g(2 * c, 2 * c, 3)
        self.pmconv10 = g(2 * c, 2 * c, 3)
        # stage 2, merged
        self.allconv11 = g(4 * c, 2 * c, 3)
        self.allconv12 = g(2 * c, 2 * c, 3)
        self.allconv13_upsample = GDeConv(2 * c, c, tf_same=True)
        self.allconv14 = g(c, c, 3)
        self.allconv15_upsample = GDeConv(c, c // 2, tf_same=True)
        self.allconv16 = g(c // 2, c // 4, 3)
        self.allconv17 = g(c // 4, 3, 3, rgb=True)

    def _run(self, x, names):
        for name in names:
            x = getattr(self, name)(x)
        return x

    def forward(self, x, mask):
        _check_sides(x)
        coarse = self._run(x, ["conv1", "conv2_downsample", "conv3", "conv4_downsample", "conv5",
                               "conv6", "conv7_atrous", "conv8_atrous", "conv9_atrous",
                               "conv10_atrous", "conv11", "conv12", "conv13_upsample", "conv14",
                               "conv15_upsample", "conv16", "conv17", "tanh"])
        xnow = coarse * mask + x[:, :3] * (1.0 - mask)
        hallu = self._run(xnow, ["xconv1", "xconv2_downsample", "xconv3", "xconv4_downsample",
                                 "xconv5", "xconv6", "xconv7_atrous", "xconv8_atrous",
                                 "xconv9_atrous", "xconv10_atrous"])
        pm = self._run(xnow, ["pmconv1", "pmconv2_downsample", "pmconv3", "pmconv4_downsample",
                              "pmconv5", "pmconv6"])
        pm = self._run(self.contextual_attention(pm, pm, mask), ["pmconv9", "pmconv10"])
        fine = self._run(torch.cat([hallu, pm], dim=1),
                         ["allconv11", "allconv12", "allconv13_upsample", "allconv14",
                          "allconv15_upsample", "allconv16", "allconv17", "tanh"])
        return coarse, fine


# --------------------------------------------------------------------------- checkpoints

_FUSE_KEY = "stage2.contextual_attention.fuse_weight"


def upgrade_state(state: dict) -> dict:
    """Bring a ``networks.py`` state of the repository's older revision to the current names.

    The older ``FineGenerator`` called its branches ``b1_*`` / ``b2_*`` (now ``conv_*`` / ``ca_*``)
    and kept the attention's identity kernel out of the state dict. Other states pass unchanged.
    """
    if not any(k.startswith("stage1.") for k in state):
        return state
    renamed = {}
    for key, value in state.items():
        for old, new in (("stage2.b1_", "stage2.conv_"), ("stage2.b2_", "stage2.ca_")):
            if key.startswith(old):
                key = new + key[len(old):]
        renamed[key] = value
    if _FUSE_KEY not in renamed:
        renamed[_FUSE_KEY] = torch.eye(3).view(1, 1, 3, 3)
    return renamed


def generator_for(state: dict, **kwargs) -> nn.Module:
    """The generator class whose layout the state's names follow (``stage1.*``: ``networks.py``)."""
    if any(k.startswith(("stage1.", "stage2.")) for k in state):
        return Generator(**kwargs)
    if any(k.startswith(("conv1.", "xconv1.", "pmconv1.", "allconv11.")) for k in state):
        return GeneratorTF(**kwargs)
    return Generator(**kwargs)  # neither: load_into will list what does not fit


def load_generator(checkpoint: str | Path, device="cpu") -> nn.Module:
    state = upgrade_state(load_state(checkpoint, "G"))
    model = generator_for(state)
    what = f"the DeepFill v2 generator (nipponjo layout, model/{model.layout})"
    return load_into(model, state, what).to(device).eval()


# --------------------------------------------------------------------------- the inpainter

class DeepFillInpainter:
    """DeepFill v2 behind the book's interface: ``inpainter(image, hole) -> image``.

    ``checkpoint``: path or URL of a nipponjo/deepfillv2-pytorch checkpoint (``states_tf_places2.pth``
    for the converted official weights, which the inpaint step fetches and checks through
    :mod:`helpers.inpaint_weights`, or ``states_pt_places2.pth``); ``None`` builds the
    ``networks.py`` generator with fixed random weights (seed 0) -- the offline "smoke" profile,
    which checks the plumbing only: its fills are noise, not inpainting.

    Preprocessing: the hole is greyed out first, so nothing inside it reaches the network; the image
    is shrunk (Lanczos) if its longer side exceeds ``max_side``, the hole shrunk conservatively (a
    small pixel touching the hole is hole); then both are **padded** at the bottom and right, by
    repeating the edge pixels, up to multiples of 8 (padding, not cropping, so no pixel of the hole
    is lost; the padding counts as known). Image to [-1, 1], mask 1 = hole, network in eval mode
    under ``torch.inference_mode``; the fine output is taken in the hole, mapped back to [0, 255],
    the padding cut off, the result resized (bicubic) to the original size, and ``composite`` puts
    every pixel outside the hole back exactly as it was.
    """

    name = "deepfill_v2"

    def __init__(self, checkpoint: str | Path | None = None, device="cpu", max_side: int = 512):
        if max_side < GRID:
            raise ValueError(f"max_side must be at least {GRID}; got {max_side}")
        self.device = torch.device(device)
        self.max_side = int(max_side)
        self.checkpoint = checkpoint
        if checkpoint is None:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)
                model = Generator()
            self.model = model.to(self.device).eval()
        else:
            self.model = load_generator(checkpoint, self.device)

    def working_size(self, width: int, height: int) -> tuple[int, int]:
        """The (width, height) the network runs at, before padding to multiples of 8."""
        scale = min(1.0, self.max_side / max(width, height))
        return max(1, round(width * scale)), max(1, round(height * scale))

    def prepare(self, image: Image.Image, hole: np.ndarray):
        """Network input ``x`` [1, 5, H8, W8], ``mask`` [1, 1, H8, W8] and the unpadded (w, h)."""
        rgb = np.asarray(image.convert("RGB")).copy()
        rgb[hole] = 127  # the hole's content never reaches the network
        w, h = self.working_size(image.width, image.height)
        small_hole = hole
        if (w, h) != image.size:
            rgb = np.asarray(Image.fromarray(rgb).resize((w, h), Image.Resampling.LANCZOS))
            grey = Image.fromarray(hole.astype(np.uint8) * 255)
            small_hole = np.asarray(grey.resize((w, h), Image.Resampling.BOX)) > 0
        ph, pw = (-h) % GRID, (-w) % GRID
        rgb = np.pad(rgb, ((0, ph), (0, pw), (0, 0)), mode="edge")
        small_hole = np.pad(small_hole, ((0, ph), (0, pw)), mode="constant", constant_values=False)

        img = torch.from_numpy(rgb).permute(2, 0, 1).float().div(127.5).sub(1.0)[None]
        mask = torch.from_numpy(small_hole.astype(np.float32))[None, None]
        img, mask = img.to(self.device), mask.to(self.device)
        masked = img * (1.0 - mask)
        ones = torch.ones_like(mask)
        return torch.cat([masked, ones, ones * mask], dim=1), mask, (w, h)

    def __call__(self, image: Image.Image, hole: np.ndarray) -> Image.Image:
        check_inputs(image, hole)
        if not hole.any():
            return image.convert("RGB").copy()
        x, mask, (w, h) = self.prepare(image, hole)
        with torch.inference_mode():
            _, fine = self.model(x, mask)
            done = x[:, :3] * (1.0 - mask) + fine * mask
            out = done[0, :, :h, :w].add(1.0).mul(127.5).round().clamp(0, 255)
            out = out.to(torch.uint8).permute(1, 2, 0).cpu().numpy()
        return composite(image, Image.fromarray(out), hole)


def make(checkpoint: str | Path | None = None, device="cpu") -> DeepFillInpainter:
    return DeepFillInpainter(checkpoint=checkpoint, device=device)


__all__ = ["GConv", "GatedConv2d", "GDeConv", "GDownsamplingBlock", "GUpsamplingBlock",
           "ContextualAttention", "CoarseGenerator", "FineGenerator", "Generator", "GeneratorTF",
           "upgrade_state", "generator_for", "load_generator", "DeepFillInpainter", "make"]
