"""DeepFill v2 (helpers.inpaint.deepfill and .deepfill_layers): layers, layouts, checkpoints, the
inpainter. CPU, offline."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from helpers.core.checkpoints import CheckpointError
from helpers.inpaint.deepfill import (DeepFillInpainter, Generator, GeneratorTF, load_generator, make,
                                      upgrade_state)
from helpers.inpaint.deepfill_layers import ContextualAttention, GConv


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One CPU thread: these networks are small here, and threads only contend on a busy machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _inputs(h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(1, 3, h, w, generator=g) * 2 - 1
    mask = torch.zeros(1, 1, h, w)
    mask[..., h // 4: h // 2 + 8, w // 4: w // 2 + 8] = 1
    masked = image * (1 - mask)
    ones = torch.ones_like(mask)
    return torch.cat([masked, ones, ones * mask], dim=1), mask


def _randomised(model, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {k: (v if k.endswith("fuse_weight") else torch.randn(v.shape, generator=g) * 0.05)
            for k, v in model.state_dict().items()}


# ----------------------------------------------------------------------------- gated convolution

def test_gated_conv_shapes():
    x = torch.randn(2, 4, 16, 24)
    assert GConv(4, 6, 3)(x).shape == (2, 6, 16, 24)
    assert GConv(4, 6, 3, stride=2)(x).shape == (2, 6, 8, 12)
    assert GConv(4, 6, 3, rate=4)(x).shape == (2, 6, 16, 24)
    assert GConv(4, 6, 5, tf_same=True)(x).shape == (2, 6, 16, 24)
    assert GConv(4, 6, 3, stride=2, tf_same=True)(x).shape == (2, 6, 8, 12)
    # one convolution of twice the channels: features and gates
    assert GConv(4, 6, 3).conv.weight.shape == (12, 4, 3, 3)
    # the to-RGB layer is a plain convolution of 3 channels
    rgb = GConv(4, 3, 3, activation=None, gated_default=False)
    assert rgb.conv.weight.shape == (3, 4, 3, 3)
    assert torch.equal(rgb(x), rgb.conv(x))


def test_gate_is_a_sigmoid_bounded_by_the_elu_part():
    layer = GConv(4, 5, 3)
    with torch.no_grad():
        layer.conv.weight.zero_()
        layer.conv.bias[:5] = 2.0   # features
        layer.conv.bias[5:] = 0.0   # gates: sigmoid(0) = 0.5
    out = layer(torch.randn(1, 4, 8, 8))
    assert torch.allclose(out, torch.full_like(out, 2.0 * 0.5))

    layer = GConv(4, 5, 3)
    x = torch.randn(1, 4, 8, 8) * 3
    raw = layer.conv(x)
    elu = F.elu(raw[:, :5])
    out = layer(x)
    assert torch.all(out.abs() <= elu.abs() + 1e-6)
    ratio = out[elu.abs() > 1e-3] / elu[elu.abs() > 1e-3]
    assert torch.all((ratio > 0) & (ratio < 1))
    assert torch.allclose(out, elu * torch.sigmoid(raw[:, 5:]))
    relu_layer = GConv(4, 5, 3, activation=torch.nn.ReLU())
    assert torch.all(relu_layer(x) >= 0)


# ----------------------------------------------------------------------------- layouts

def test_state_dict_layout_matches_the_public_files():
    pt, tf = Generator().state_dict(), GeneratorTF().state_dict()
    expect_pt = {
        "stage1.conv1.conv.weight": (48, 5, 5, 5),
        "stage1.down_block1.conv1_downsample.conv.weight": (96, 24, 3, 3),
        "stage1.conv_bn5.conv.weight": (192, 96, 3, 3),
        "stage1.up_block2.conv1_upsample.conv.conv.weight": (48, 48, 3, 3),
        "stage1.up_block2.conv2.conv.weight": (24, 24, 3, 3),
        "stage1.conv_to_rgb.conv.weight": (3, 12, 3, 3),
        "stage2.conv_down_block1.conv1_downsample.conv.weight": (48, 24, 3, 3),
        "stage2.ca_down_block2.conv1_downsample.conv.weight": (192, 48, 3, 3),
        "stage2.ca_conv_bn1.conv.weight": (192, 96, 3, 3),
        "stage2.contextual_attention.fuse_weight": (1, 1, 3, 3),
        "stage2.conv_bn6.conv.weight": (192, 192, 3, 3),
        "stage2.conv_to_rgb.conv.bias": (3,),
    }
    expect_tf = {
        "conv1.conv.weight": (48, 5, 5, 5),
        "conv10_atrous.conv.weight": (192, 96, 3, 3),
        "conv13_upsample.conv.conv.weight": (96, 96, 3, 3),
        "conv16.conv.weight": (24, 24, 3, 3),
        "conv17.conv.weight": (3, 12, 3, 3),
        "xconv2_downsample.conv.weight": (48, 24, 3, 3),
        "pmconv4_downsample.conv.weight": (192, 48, 3, 3),
        "pmconv6.conv.weight": (192, 96, 3, 3),
        "allconv11.conv.weight": (192, 192, 3, 3),
        "allconv17.conv.bias": (3,),
    }
    for state, expect in ((pt, expect_pt), (tf, expect_tf)):
        for key, shape in expect.items():
            assert tuple(state[key].shape) == shape, key
    assert len(pt) == 85 and len(tf) == 84
    # the same network under two namings: 4.05 M parameters each (DeepFill v2's size)
    count = lambda s: sum(v.numel() for k, v in s.items() if not k.endswith("fuse_weight"))
    assert count(pt) == count(tf) == 4_052_478
    dil = Generator().stage1
    assert [getattr(dil, f"conv_bn{i}").conv.dilation[0] for i in range(1, 8)] == [1, 2, 4, 8, 16, 1, 1]


@pytest.mark.parametrize("h,w", [(64, 64), (48, 80)])
def test_generator_shapes(h, w):
    x, mask = _inputs(h, w)
    with torch.inference_mode():
        coarse, fine = Generator().eval()(x, mask)
    assert coarse.shape == fine.shape == (1, 3, h, w)
    assert coarse.abs().max() <= 1 and fine.abs().max() <= 1  # tanh outputs


def test_tf_layout_generator_shapes_and_side_check():
    x, mask = _inputs(48, 64)
    with torch.inference_mode():
        coarse, fine = GeneratorTF().eval()(x, mask)
    assert coarse.shape == fine.shape == (1, 3, 48, 64)
    with pytest.raises(ValueError, match="multiples of 8"):
        Generator()(torch.zeros(1, 5, 60, 64), torch.zeros(1, 1, 60, 64))


# ----------------------------------------------------------------------------- contextual attention

def test_contextual_attention_shape_and_background_only():
    # features at 1/4 of a 64x64 image; the hole covers image pixels 24..39 (aligned to 8)
    ca = ContextualAttention(ksize=3, stride=1, rate=2, fuse=True)
    assert list(ca.parameters()) == []  # no learned weights
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 24:40, 24:40] = 1
    b = torch.ones(1, 8, 16, 16)
    b[..., 6:10, 6:10] = 100.0  # content inside the hole, at feature resolution
    y, attention = ca(b, b, mask, return_attention=True)
    assert y.shape == b.shape
    assert attention.shape == (1, 64, 8, 8)  # 8x8 background patches for 8x8 positions

    m = F.unfold(F.pad(F.interpolate(mask, scale_factor=1 / 8), [1] * 4), 3).mean(1)[0]
    unusable = m > 0
    assert unusable.any() and (~unusable).any()
    assert torch.all(attention[0, unusable] == 0)
    assert torch.allclose(attention[0].sum(0), torch.ones(8, 8), atol=1e-5)
    # the hole's own content is never copied: every output is a mixture of background values (1)
    # and the zero padding at the borders
    assert y.max() <= 1 + 1e-5
    assert y[..., 6:10, 6:10].min() > 0.5

    ca_tf = ContextualAttention(fuse=False, tf_compat=True, persistent_fuse_weight=False)
    assert "fuse_weight" not in ca_tf.state_dict()
    assert ca_tf(b, b, mask).shape == b.shape


# ----------------------------------------------------------------------------- checkpoints

def test_checkpoint_in_public_layout_loads_and_gives_identical_outputs(tmp_path):
    gen = Generator().eval()
    gen.load_state_dict(_randomised(gen))
    path = tmp_path / "states_pt_places2.pth"
    torch.save({"G": gen.state_dict(), "D": {}}, path)

    inpainter = DeepFillInpainter(checkpoint=path)
    assert isinstance(inpainter.model, Generator) and not inpainter.model.training
    x, mask = _inputs(32, 48)
    with torch.inference_mode():
        expected = gen(x, mask)
        got = inpainter.model(x, mask)
    assert torch.equal(expected[0], got[0]) and torch.equal(expected[1], got[1])

    # the converted official weights' layout (networks_tf.py) is recognised by its names
    tf = GeneratorTF()
    tf_state = _randomised(tf, seed=2)
    torch.save({"G": tf_state, "D": {}}, tmp_path / "states_tf_places2.pth")
    loaded = load_generator(tmp_path / "states_tf_places2.pth")
    assert isinstance(loaded, GeneratorTF)
    assert all(torch.equal(loaded.state_dict()[k], v) for k, v in tf_state.items())

    # the repository's older networks.py naming (b1_/b2_, no fuse_weight) is renamed on load
    old = {k.replace("stage2.conv_", "stage2.b1_").replace("stage2.ca_", "stage2.b2_"): v
           for k, v in gen.state_dict().items() if not k.endswith("fuse_weight")}
    assert any(k.startswith("stage2.b1_") for k in old)
    torch.save({"G": old}, tmp_path / "old.pth")
    again = load_generator(tmp_path / "old.pth")
    assert all(torch.equal(again.state_dict()[k], v) for k, v in gen.state_dict().items())
    assert upgrade_state(tf_state) is tf_state


def _save(tmp_path, name, obj):
    path = tmp_path / name
    torch.save(obj, path)
    return path


def test_wrong_checkpoints_are_refused_with_the_reason(tmp_path):
    good = Generator().state_dict()

    missing = {k: v for k, v in good.items() if k != "stage2.ca_conv_bn4.conv.weight"}
    with pytest.raises(CheckpointError, match=r"missing keys \(1\): stage2.ca_conv_bn4.conv.weight"):
        make(_save(tmp_path, "missing.pth", {"G": missing}))

    extra = dict(good, **{"stage2.extra.weight": torch.zeros(3)})
    with pytest.raises(CheckpointError, match=r"unexpected keys \(1\): stage2.extra.weight"):
        make(_save(tmp_path, "extra.pth", {"G": extra}))

    shaped = dict(good, **{"stage1.conv1.conv.weight": torch.zeros(48, 4, 5, 5)})
    with pytest.raises(CheckpointError, match=r"stage1.conv1.conv.weight: checkpoint \(48, 4, 5, 5\), "
                                              r"model \(48, 5, 5, 5\)"):
        make(_save(tmp_path, "shape.pth", {"G": shaped}))

    with pytest.raises(CheckpointError, match="under 'G'"):
        make(_save(tmp_path, "noG.pth", {"state_dict": good}))

    with pytest.raises(CheckpointError, match="DeepFill v2 generator"):
        make(_save(tmp_path, "other.pth", {"G": {"encoder.weight": torch.zeros(2)}}))


# ----------------------------------------------------------------------------- the inpainter

@pytest.fixture(scope="module")
def smoke():
    return make()  # random weights: the offline smoke profile


def _picture(h, w, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


def test_inpainter_keeps_size_and_every_pixel_outside_the_hole(smoke):
    assert smoke.name == "deepfill_v2"
    image = _picture(70, 90)
    hole = np.zeros((70, 90), bool)
    hole[20:45, 30:70] = True
    out = smoke(image, hole)
    assert out.size == image.size == (90, 70) and out.mode == "RGB"
    a, b = np.asarray(image), np.asarray(out)
    assert np.array_equal(a[~hole], b[~hole])
    assert not np.array_equal(a[hole], b[hole])

    # what was inside the hole never reaches the network
    other = a.copy()
    other[hole] = 255 - other[hole]
    assert np.array_equal(np.asarray(smoke(Image.fromarray(other), hole)), b)


def test_inpainter_shrinks_large_images_and_restores_the_size():
    inpainter = DeepFillInpainter(checkpoint=None, max_side=40)
    image = _picture(60, 100, seed=3)
    hole = np.zeros((60, 100), bool)
    hole[10:30, 40:43] = True  # thin: must survive the shrinking
    assert inpainter.working_size(100, 60) == (40, 24)
    x, mask, (w, h) = inpainter.prepare(image, hole)
    assert (w, h) == (40, 24) and x.shape == (1, 5, 24, 40) and mask.sum() > 0
    out = inpainter(image, hole)
    assert out.size == image.size
    assert np.array_equal(np.asarray(out)[~hole], np.asarray(image)[~hole])


def test_inpainter_input_checks(smoke):
    image = _picture(16, 24)
    assert np.array_equal(np.asarray(smoke(image, np.zeros((16, 24), bool))), np.asarray(image))
    with pytest.raises(ValueError, match="boolean"):
        smoke(image, np.zeros((16, 24), np.uint8))
    with pytest.raises(ValueError, match="boolean"):
        smoke(image, np.zeros((24, 16), bool))


def test_score_fusion_sums_along_diagonals_in_both_axes():
    ca = ContextualAttention(fuse=True)
    bh, bw, fh, fw = 3, 4, 3, 4
    s = torch.randn(bh * bw, fh * fw, dtype=torch.float64)

    def diagonal_sum(m):
        out = torch.zeros_like(m)
        for d in (-1, 0, 1):
            for i in range(m.shape[0]):
                for j in range(m.shape[1]):
                    if 0 <= i + d < m.shape[0] and 0 <= j + d < m.shape[1]:
                        out[i, j] += m[i + d, j + d]
        return out

    # row-major flattening (y, x), then the same in column-major flattening (x, y)
    first = diagonal_sum(s).view(bh, bw, fh, fw)
    second = diagonal_sum(first.permute(1, 0, 3, 2).reshape(bw * bh, fw * fh))
    expected = second.view(bw, bh, fw, fh).permute(1, 0, 3, 2).reshape(1, bh * bw, fh, fw)
    ca = ca.double()
    assert torch.allclose(ca._fuse(s.view(1, bh * bw, fh, fw), bh, bw, fh, fw), expected)
