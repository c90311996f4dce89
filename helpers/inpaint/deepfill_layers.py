"""Chapter 3: the layers of DeepFill v2 -- gated convolutions and contextual attention.

A gated convolution (Yu et al., ICCV 2019) is one convolution with twice the output channels,
split into features (through ELU, or ReLU where the public models use it) and gates (through a
sigmoid), multiplied: the network learns, pixel by pixel, how much of each feature passes, which is
what lets it treat a free-form hole differently from the known pixels around it.

*Contextual attention* fills the hole with a soft mixture of feature patches copied from the known
part of the image. Settings (both public layouts): 3x3 matching patches (``ksize=3``), stride 1,
``rate=2`` (match on features down-sampled by 2, paste 4x4 patches of the full-resolution features
with stride 2 and average the overlaps), ``softmax_scale=10``, ``fuse_k=3``, no learned weights.
A background patch is usable only if its 3x3 window of the mask (down-sampled by 8) has no hole.

Both layers pad either like PyTorch (symmetric) or like TensorFlow ("SAME", asymmetric for the
stride-2 layers, and align-corners nearest down-sampling inside the attention), since the
converted TensorFlow weights give their published fills only with TensorFlow's padding. The
generators that stack these layers are in :mod:`helpers.inpaint.deepfill`.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

GRID = 8  # image sides must be multiples of this (two stride-2 layers, then the attention halves)


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


def gconv(cin, cout, k, stride=1, rate=1, relu=False, rgb=False, tf=False) -> GConv:
    """A :class:`GConv` as the public files write it: ELU (``relu``: ReLU), ``rgb``: the plain
    to-RGB convolution, ``tf``: TensorFlow "SAME" padding."""
    act = nn.ReLU() if relu else None
    return GConv(cin, cout, k, stride, rate, activation=act, gated_default=not rgb, tf_same=tf)


class GDeConv(nn.Module):
    """Nearest-neighbour up-sampling by 2, then a 3x3 gated convolution (state under ``conv``)."""

    def __init__(self, cnum_in: int, cnum_out: int, tf_same: bool = False):
        super().__init__()
        self.conv = gconv(cnum_in, cnum_out, 3, tf=tf_same)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class GDownsamplingBlock(nn.Module):
    """``conv1_downsample`` (3x3, stride 2) to ``cnum_hidden``, then ``conv2`` (3x3) to ``cnum_out``."""

    def __init__(self, cnum_in: int, cnum_out: int, cnum_hidden: int | None = None):
        super().__init__()
        hidden = cnum_out if cnum_hidden is None else cnum_hidden
        self.conv1_downsample = gconv(cnum_in, hidden, 3, stride=2)
        self.conv2 = gconv(hidden, cnum_out, 3)

    def forward(self, x):
        return self.conv2(self.conv1_downsample(x))


class GUpsamplingBlock(nn.Module):
    """``conv1_upsample`` (``GDeConv``) to ``cnum_hidden``, then ``conv2`` (3x3) to ``cnum_out``."""

    def __init__(self, cnum_in: int, cnum_out: int, cnum_hidden: int | None = None):
        super().__init__()
        hidden = cnum_out if cnum_hidden is None else cnum_hidden
        self.conv1_upsample = GDeConv(cnum_in, hidden)
        self.conv2 = gconv(hidden, cnum_out, 3)

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

    def _usable(self, mask: torch.Tensor | None, b: torch.Tensor, bh: int, bw: int) -> torch.Tensor:
        """[N, L]: 1 for the background patches whose window of the (down-sampled) mask has no hole."""
        if mask is None:
            mask = torch.zeros(b.shape[0], 1, bh, bw, device=b.device, dtype=b.dtype)
        else:
            mask = self._down(mask.to(b.dtype), (2 ** self.n_down) * self.rate)
        if mask.shape[-2:] != (bh, bw):
            raise ValueError(f"mask of size {tuple(mask.shape[-2:])} does not match features "
                             f"{(bh, bw)}; image sides must be multiples of {GRID}")
        if mask.shape[0] != b.shape[0]:
            mask = mask[:1].expand(b.shape[0], -1, -1, -1)
        return (self._patches(mask, self.ksize, self.stride).flatten(2).mean(2) == 0).to(b.dtype)

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
        usable = self._usable(mask, b, bh, bw)                             # [N, L]

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
