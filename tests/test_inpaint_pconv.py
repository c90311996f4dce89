"""Partial-convolution inpainting: the layer's arithmetic, the U-Net's layout, its checkpoints
(naoto0804/pytorch-inpainting-with-partial-conv layout) and the inpainter wrapper."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from helpers.core.checkpoints import CheckpointError, load_into, load_state
from helpers.inpaint.pconv import WHAT, PartialConv2d, PConvInpainter, PConvUNet, load_checkpoint, make

SIDE = 128  # the smallest side that survives 7 halvings


def _close(a, b, tol=1e-5):
    """allclose with the largest difference in the message (torch.testing imports sympy: slow)."""
    assert a.shape == b.shape, (a.shape, b.shape)
    assert torch.allclose(a, b, rtol=tol, atol=tol), f"max |a - b| = {(a - b).abs().max():.3g}"


def _layer(rescale="window", bias=True, seed=0):
    torch.manual_seed(seed)
    conv = PartialConv2d(3, 4, 3, stride=1, padding=1, bias=bias, rescale=rescale)
    if bias:
        with torch.no_grad():
            conv.input_conv.bias.copy_(torch.randn(4))
    return conv


def _example(seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(2, 3, 7, 8, generator=g)
    mask = (torch.rand(2, 3, 7, 8, generator=g) > 0.4).float()
    mask[:, :, 1:6, 2:7] = 0  # a hole wider than the kernel: some windows see no valid pixel
    mask[0, 1, 0, 0] = 1  # channels differ: the count runs over channels too
    return x, mask


def test_partial_conv_is_the_papers_formula_computed_by_hand():
    conv = _layer()
    x, mask = _example()
    out, new_mask = conv(x, mask)
    w, b = conv.input_conv.weight, conv.input_conv.bias
    xp, mp = F.pad(x * mask, (1, 1, 1, 1)), F.pad(mask, (1, 1, 1, 1))
    expected, expected_mask = torch.zeros_like(out), torch.zeros_like(out)
    for n in range(2):
        for i in range(7):
            for j in range(8):
                win_x, win_m = xp[n, :, i:i + 3, j:j + 3], mp[n, :, i:i + 3, j:j + 3]
                count = win_m.sum()  # valid values in the 3 x 3 x 3 window; sum(1) = 27
                if count > 0:
                    expected[n, :, i, j] = (w * win_x).sum(dim=(1, 2, 3)) * (27 / count) + b
                    expected_mask[n, :, i, j] = 1
    assert (expected_mask == 0).any() and (expected_mask == 1).any()
    _close(out, expected)
    assert torch.equal(new_mask, expected_mask)
    assert (out[expected_mask == 0] == 0).all()  # no valid pixel: 0, bias not added


def test_partial_conv_equals_rescaled_plain_convolutions_with_stride():
    torch.manual_seed(0)
    conv = PartialConv2d(3, 5, 5, stride=2, padding=2, bias=True)
    with torch.no_grad():
        conv.input_conv.bias.normal_()
    x, mask = _example(2)
    mask[..., :5, :5] = 0  # the window of output (1, 1) holds no valid pixel
    out, new_mask = conv(x, mask)
    w, b = conv.input_conv.weight, conv.input_conv.bias
    raw = F.conv2d(x * mask, w, None, 2, 2)
    count = F.conv2d(mask, torch.ones_like(w), None, 2, 2)
    valid = count > 0
    expected = torch.where(valid, raw * 75 / count.clamp(min=1) + b.view(1, -1, 1, 1), 0.0)
    _close(out, expected)
    assert torch.equal(new_mask, valid.float()) and not valid.all()


def test_the_public_parametrisation_is_the_paper_with_sum1_folded_into_the_weights():
    x, mask = _example(3)
    count_layer = _layer("count")
    out, m = count_layer(x, mask)
    # naoto0804: (conv(X*M) + b - b) / sum(M) + b where sum(M) > 0, else 0
    w, b = count_layer.input_conv.weight, count_layer.input_conv.bias
    biased = F.conv2d(x * mask, w, b, 1, 1)
    summ = F.conv2d(mask, torch.ones_like(w), None, 1, 1)
    public = torch.where(summ > 0, (biased - b.view(1, -1, 1, 1)) / summ.clamp(min=1)
                         + b.view(1, -1, 1, 1), 0.0)
    _close(out, public)
    paper = _layer("window")
    with torch.no_grad():
        paper.input_conv.weight.copy_(w / 27)
        paper.input_conv.bias.copy_(b)
    out2, m2 = paper(x, mask)
    _close(out, out2)
    assert torch.equal(m, m2)


def test_all_valid_mask_is_a_plain_convolution_and_mask_update_spreads_validity():
    conv = _layer("window")
    x = torch.randn(1, 3, 6, 6)
    out, m = conv(x, torch.ones_like(x))
    w, b = conv.input_conv.weight, conv.input_conv.bias
    inner = F.conv2d(x, w, b, 1, 1)[..., 1:-1, 1:-1]  # away from the zero padding
    _close(out[..., 1:-1, 1:-1], inner)
    mask = torch.zeros(1, 3, 6, 6)
    mask[0, 0, 2, 2] = 1  # one valid value in one channel: its 3x3 neighbourhood becomes valid
    _, m = conv(x, mask)
    expected = torch.zeros(1, 4, 6, 6)
    expected[..., 1:4, 1:4] = 1
    assert torch.equal(m, expected)


def _expected_keys(layer_size=7):
    """The state-dict keys of naoto0804's net.py, written out from its structure."""
    keys = set()
    for part in ("enc", "dec"):
        for i in range(1, layer_size + 1):
            p = f"{part}_{i}"
            keys |= {f"{p}.conv.input_conv.weight", f"{p}.conv.mask_conv.weight"}
            if i > 1:
                keys |= {f"{p}.bn.{k}" for k in
                         ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")}
    keys.add("dec_1.conv.input_conv.bias")
    return keys


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    model = PConvUNet()
    _perturb_batchnorms(model)
    return model.eval()


def _perturb_batchnorms(model):
    """Non-trivial BN statistics and affine parameters, so that a wrong load would show."""
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, torch.nn.BatchNorm2d):
                mod.running_mean.normal_(0, 0.1)
                mod.running_var.uniform_(0.5, 1.5)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.normal_(0, 0.1)


def _picture():
    """A SIDE x SIDE image and its hole (True = missing)."""
    image = Image.fromarray(np.random.default_rng(1).integers(0, 256, (SIDE, SIDE, 3), np.uint8))
    hole = np.zeros((SIDE, SIDE), bool)
    hole[30:90, 40:100] = True
    return image, hole


def _inputs():
    """``_picture()`` as the public code feeds it: normalised, times the mask (1 = valid)."""
    image, hole = _picture()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    x = (torch.tensor(np.asarray(image)).permute(2, 0, 1) / 255 - mean) / std
    mask = torch.from_numpy(~hole).float().expand(3, SIDE, SIDE)
    return (x * mask)[None], mask[None].contiguous()


@pytest.fixture(scope="module")
def reference(unet):
    """The source model's output on ``_inputs()``."""
    with torch.inference_mode():
        return unet(*_inputs())


@pytest.fixture(scope="module")
def saved(unet, tmp_path_factory):
    """A checkpoint as the public train.py writes it: {'model': state dict, 'n_iter': ...}."""
    path = tmp_path_factory.mktemp("ckpt") / "pconv.pth"
    torch.save({"model": unet.state_dict(), "n_iter": 0}, path)
    return path


def test_unet_layout_and_shapes_match_the_public_network(unet, reference):
    sd = unet.state_dict()
    assert set(sd) == _expected_keys()
    shapes = {"enc_1": (64, 3, 7), "enc_2": (128, 64, 5), "enc_3": (256, 128, 5),
              "enc_4": (512, 256, 3), "enc_5": (512, 512, 3), "enc_7": (512, 512, 3),
              "dec_7": (512, 1024, 3), "dec_5": (512, 1024, 3), "dec_4": (256, 768, 3),
              "dec_3": (128, 384, 3), "dec_2": (64, 192, 3), "dec_1": (3, 67, 3)}
    for name, (o, i, k) in shapes.items():
        assert tuple(sd[f"{name}.conv.input_conv.weight"].shape) == (o, i, k, k)
        assert tuple(sd[f"{name}.conv.mask_conv.weight"].shape) == (o, i, k, k)
    strides = {f"enc_{i}": 2 for i in range(1, 8)} | {f"dec_{i}": 1 for i in range(1, 8)}
    for name, stride in strides.items():
        assert getattr(unet, name).conv.input_conv.stride == (stride, stride)
    for i in range(1, 8):
        assert isinstance(getattr(unet, f"enc_{i}").activation, torch.nn.ReLU)
        if i > 1:
            assert getattr(unet, f"dec_{i}").activation.negative_slope == 0.2
    assert not hasattr(unet.dec_1, "activation") and not hasattr(unet.enc_1, "bn")
    out, out_mask = reference
    assert out.shape == out_mask.shape == (1, 3, SIDE, SIDE)
    assert torch.isfinite(out).all() and (out_mask == 1).all()  # a hole this size gets filled
    assert set(_expected_keys(4)) == set(PConvUNet(layer_size=4).state_dict())
    with pytest.raises(ValueError, match="multiples of 128"):
        unet(torch.zeros(1, 3, 96, 96), torch.ones(1, 3, 96, 96))


def test_public_layout_checkpoint_round_trips(unet, saved, reference):
    state = load_state(saved, "model")
    fresh = load_into(PConvUNet(init_weights=False), state, WHAT).eval()
    own = fresh.state_dict()
    for key, value in unet.state_dict().items():
        assert torch.equal(own[key], value), key
    with torch.inference_mode():
        out, out_mask = fresh(*_inputs())
    assert torch.equal(out, reference[0]) and torch.equal(out_mask, reference[1])


@pytest.fixture(scope="module")
def small():
    """A U-Net with 4 levels: the same layer kinds, quick to save in the error cases."""
    torch.manual_seed(1)
    model = PConvUNet(layer_size=4)
    _perturb_batchnorms(model)
    return model


def _save(tmp_path, obj, name="bad.pth"):
    path = tmp_path / name
    torch.save(obj, path)
    return path


@pytest.mark.parametrize("change, message", [
    (lambda sd: sd.pop("enc_3.conv.input_conv.weight"),
     "missing keys (1): enc_3.conv.input_conv.weight"),
    (lambda sd: sd.__setitem__("enc_1.conv.input_conv.bias", torch.zeros(64)),
     "unexpected keys (1): enc_1.conv.input_conv.bias"),
    (lambda sd: sd.__setitem__("dec_1.conv.input_conv.bias", torch.zeros(4)),
     "dec_1.conv.input_conv.bias: checkpoint (4,), model (3,)"),
])
def test_wrong_checkpoints_are_refused_with_the_reason(small, tmp_path, change, message):
    sd = dict(small.state_dict())
    change(sd)
    path = _save(tmp_path, {"model": sd, "n_iter": 0})
    with pytest.raises(CheckpointError) as err:
        load_into(PConvUNet(layer_size=4), load_state(path, "model"), WHAT)
    assert message in str(err.value) and "naoto0804 layout" in str(err.value)
    with pytest.raises(CheckpointError, match="does not fit"):
        load_checkpoint(PConvUNet(layer_size=4, init_weights=False), path)


def test_weights_not_under_model_are_refused(small, tmp_path):
    path = _save(tmp_path, small.state_dict())  # a bare state dict, not {'model': ...}
    with pytest.raises(CheckpointError, match="under 'model'"):
        load_state(path, "model")
    with pytest.raises(CheckpointError, match="under 'model'"):
        load_checkpoint(PConvUNet(layer_size=4), path)
    with pytest.raises(CheckpointError, match="does not exist"):
        PConvInpainter(checkpoint=tmp_path / "nothing.pth")


def test_mask_conv_weights_that_are_not_ones_are_refused(small, tmp_path):
    sd = dict(small.state_dict())
    sd["enc_2.conv.mask_conv.weight"] = sd["enc_2.conv.mask_conv.weight"] * 2
    path = _save(tmp_path, {"model": sd})
    with pytest.raises(CheckpointError, match="enc_2.conv.mask_conv.weight is not all ones"):
        load_checkpoint(PConvUNet(layer_size=4), path)


def test_checkpoints_of_pytorch_0_4_0_without_num_batches_tracked_load(small, tmp_path):
    sd = {k: v for k, v in small.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = _save(tmp_path, {"model": sd})
    model = load_checkpoint(PConvUNet(layer_size=4, init_weights=False), path)
    for key, value in sd.items():
        assert torch.equal(model.state_dict()[key], value), key


def test_the_published_files_legacy_format_with_its_adam_state_loads_weights_only(small, tmp_path):
    """The public checkpoint was written by PyTorch 0.4 (the pre-zip format) with the optimizer's
    state beside the weights; torch.load(weights_only=True) must read both."""
    model = PConvUNet(layer_size=4)
    model.load_state_dict(small.state_dict())
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=2e-4)
    sum(p.sum() for p in model.parameters() if p.requires_grad).backward()
    optimizer.step()  # exp_avg / exp_avg_sq tensors in the state, as after training
    path = tmp_path / "1000000.pth"
    torch.save({"n_iter": 1000000, "model": small.state_dict(), "optimizer": optimizer.state_dict()},
               path, _use_new_zipfile_serialization=False)
    loaded = load_checkpoint(PConvUNet(layer_size=4, init_weights=False), path)
    assert torch.equal(loaded.state_dict()["dec_2.bn.running_var"], small.state_dict()["dec_2.bn.running_var"])


@pytest.fixture(scope="module")
def loaded(saved):
    return PConvInpainter(checkpoint=saved, side=SIDE)


def test_inpainter_feeds_the_network_the_normalised_masked_image(loaded, reference):
    """At the model's own size the fill is the network's output on the public preprocessing."""
    image, hole = _picture()
    assert loaded.name == "pconv"
    out = np.asarray(loaded(image, hole))
    assert np.array_equal(out[~hole], np.asarray(image)[~hole])
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    y = ((reference[0][0] * std + mean).clamp(0, 1).permute(1, 2, 0).numpy() * 255).round()
    assert np.abs(out[hole].astype(float) - y[hole]).max() <= 1


def test_random_weights_inpainter_keeps_every_pixel_outside_the_hole():
    """The smoke profile's inpainter (no checkpoint) on an image of another size and shape."""
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (100, 150, 3), dtype=np.uint8))
    hole = np.zeros((100, 150), bool)
    hole[20:60, 30:90] = True
    hole[80:83, 5:140] = True  # a thin stroke
    inpainter = PConvInpainter(side=SIDE)
    out = inpainter(image, hole)
    assert out.size == image.size and out.mode == "RGB"
    a, b = np.asarray(image), np.asarray(out)
    assert np.array_equal(a[~hole], b[~hole])
    assert not np.array_equal(a[hole], b[hole])
    with pytest.raises(ValueError, match="boolean"):
        inpainter(image, hole.astype(np.uint8))
    with pytest.raises(ValueError, match="boolean"):
        inpainter(image, hole[:-1])


def test_make_builds_the_default_inpainter():
    inpainter = make()
    assert isinstance(inpainter, PConvInpainter) and inpainter.name == "pconv"
    assert inpainter.side == 256 and inpainter.device == torch.device("cpu")
    assert not inpainter.model.training
