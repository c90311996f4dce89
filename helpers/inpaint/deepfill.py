"""Chapter 3: DeepFill v2, free-form inpainting with gated convolutions (Yu et al., ICCV 2019).

The network is the paper's two-stage generator: a coarse encoder-decoder of gated convolutions
(dilated ones in the middle), then a refinement network with two branches, one of plain gated
convolutions and one with *contextual attention*, which fills the hole with a soft mixture of
feature patches copied from the known part of the image (both layers, and TensorFlow's padding,
are in :mod:`helpers.inpaint.deepfill_layers`). The last layer of each stage is a plain
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
``download_files.py`` lists and checked by :mod:`helpers.inpaint.weights`.

``DeepFillInpainter`` picks the class from the checkpoint's key names (``stage1.*`` means
``networks.py``, as the repository's own ``test.py`` does), then ``load_into`` loads strictly.

Conventions (both layouts): cnum = 48, input of 5 channels ``[x * (1 - mask), ones, ones * mask]``
with the image in [-1, 1] and **mask 1 = hole**; ``forward(x, mask)`` returns ``(coarse, fine)``,
both ``tanh``-bounded in [-1, 1], of the input's size; height and width must be multiples of 8
(two stride-2 layers, then the attention halves once more).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from PIL import Image

from ..core.checkpoints import load_into, load_state
from .deepfill_layers import GRID, ContextualAttention, GDeConv, GDownsamplingBlock, GUpsamplingBlock, gconv
from .interface import check_inputs, composite

CNUM_IN, CNUM = 5, 48


# --------------------------------------------------------------------------- generators (networks.py)

def _check_sides(x: torch.Tensor) -> None:
    h, w = x.shape[-2:]
    if h % GRID or w % GRID:
        raise ValueError(f"DeepFill v2 needs height and width that are multiples of {GRID}; got {h}x{w}")


class CoarseGenerator(nn.Module):
    """Stage 1: gated encoder-decoder, dilated middle (rates 2, 4, 8, 16), tanh output."""

    def __init__(self, cnum_in: int = CNUM_IN, cnum: int = CNUM):
        super().__init__()
        self.conv1 = gconv(cnum_in, cnum // 2, 5)
        self.down_block1 = GDownsamplingBlock(cnum // 2, cnum)
        self.down_block2 = GDownsamplingBlock(cnum, 2 * cnum)
        for i, rate in enumerate((1, 2, 4, 8, 16, 1, 1), start=1):
            setattr(self, f"conv_bn{i}", gconv(2 * cnum, 2 * cnum, 3, rate=rate))
        self.up_block1 = GUpsamplingBlock(2 * cnum, cnum)
        self.up_block2 = GUpsamplingBlock(cnum, cnum // 4, cnum_hidden=cnum // 2)
        self.conv_to_rgb = gconv(cnum // 4, 3, 3, rgb=True)
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
        self.conv_conv1 = gconv(3, cnum // 2, 5)
        self.conv_down_block1 = GDownsamplingBlock(cnum // 2, cnum, cnum_hidden=cnum // 2)
        self.conv_down_block2 = GDownsamplingBlock(cnum, 2 * cnum, cnum_hidden=cnum)
        for i, rate in enumerate((1, 2, 4, 8, 16), start=1):
            setattr(self, f"conv_conv_bn{i}", gconv(2 * cnum, 2 * cnum, 3, rate=rate))

        self.ca_conv1 = gconv(3, cnum // 2, 5)
        self.ca_down_block1 = GDownsamplingBlock(cnum // 2, cnum, cnum_hidden=cnum // 2)
        self.ca_down_block2 = GDownsamplingBlock(cnum, 2 * cnum)
        self.ca_conv_bn1 = gconv(2 * cnum, 2 * cnum, 3, relu=True)
        self.contextual_attention = ContextualAttention(ksize=3, stride=1, rate=2, fuse_k=3,
                                                        softmax_scale=10.0, n_down=2, fuse=fuse)
        self.ca_conv_bn4 = gconv(2 * cnum, 2 * cnum, 3)
        self.ca_conv_bn5 = gconv(2 * cnum, 2 * cnum, 3)

        self.conv_bn6 = gconv(4 * cnum, 2 * cnum, 3)
        self.conv_bn7 = gconv(2 * cnum, 2 * cnum, 3)
        self.up_block1 = GUpsamplingBlock(2 * cnum, cnum)
        self.up_block2 = GUpsamplingBlock(cnum, cnum // 4, cnum_hidden=cnum // 2)
        self.conv_to_rgb = gconv(cnum // 4, 3, 3, rgb=True)
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
            return gconv(cin, cout, k, stride, rate, tf=True, **kw)

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
    :mod:`helpers.inpaint.weights`, or ``states_pt_places2.pth``); ``None`` builds the
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


__all__ = ["CoarseGenerator", "FineGenerator", "Generator", "GeneratorTF", "upgrade_state",
           "generator_for", "load_generator", "DeepFillInpainter", "make"]
