"""The one model-input transform: training and evaluation feed a model the same tensor for the same
file, made with the model's own timm data configuration (its resampling filter, mean and std)."""

import pickle

import numpy as np
import pandas as pd
import pytest
import timm
import torch
from PIL import Image
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from helpers.classify.loaders import build_loaders
from helpers.classify.models import build_model
from helpers.classify.prediction import predict_images
from helpers.classify.transform import ModelInput, model_input
from helpers.core.distributed import World
from helpers.core.profiles import get_profile

# smoke's own stand-in (bicubic), another bicubic one, and torchvision's ResNet-50 weights (bilinear)
MODELS = ["tiny-convnext", "tiny-efficientnet", "resnet50.tv_in1k"]


def _noise(w, h, seed=0):
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def _by_hand(img: Image.Image, side: int, interpolation: str, cfg: dict) -> torch.Tensor:
    x = TF.resize(TF.to_image(img), [side], interpolation=InterpolationMode(interpolation), antialias=True)
    x = TF.center_crop(x, [side, side])
    return TF.normalize(TF.to_dtype(x, torch.float32, scale=True), list(cfg["mean"]), list(cfg["std"]))


def _training_input(profile, model, rel: str) -> torch.Tensor:
    """What the training loader of a one-process run gives for the file ``rel``."""
    rows = pd.DataFrame({"path": [rel], "label": [1]})
    world = World(rank=0, size=1, local_rank=0, device=torch.device("cpu"))
    train_loader, val_loader, _ = build_loaders(profile, world, model, rows, rows)
    assert train_loader.dataset.transform == val_loader.dataset.transform
    x, _ = next(iter(train_loader))
    return x[0]


def _evaluation_input(profile, model, file) -> torch.Tensor:
    """What evaluation and ``predict`` put into the model for ``file``."""
    seen = []
    handle = model.register_forward_pre_hook(lambda module, args: seen.append(args[0].detach().clone()))
    try:
        probs = predict_images(model, [file], profile.train_img_size, profile.train_head, "cpu")
    finally:
        handle.remove()
    assert len(seen) == 1 and not np.isnan(probs[0])
    return seen[0][0]


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.parametrize("size", [(384, 384), (300, 200)])  # as stored; a file given as it is
def test_training_and_evaluation_feed_the_model_the_same_tensor(data_root, name, size):
    profile = get_profile("smoke", {"train_model": name})
    model = build_model(profile, pretrained="none")
    rel = "smoke/images/generated/test/x.jpg"
    (data_root / rel).parent.mkdir(parents=True)
    _noise(*size).save(data_root / rel, quality=95)
    train_x = _training_input(profile, model, rel)
    eval_x = _evaluation_input(profile, model, data_root / rel)
    assert train_x.shape == (3, profile.train_img_size, profile.train_img_size)
    assert torch.equal(train_x, eval_x)
    # made with the model's own filter and statistics, not a fixed one
    cfg = timm.data.resolve_model_data_config(model)
    with Image.open(data_root / rel) as img:
        img = img.convert("RGB")
        assert torch.equal(eval_x, _by_hand(img, profile.train_img_size, cfg["interpolation"], cfg))
        other = "bilinear" if cfg["interpolation"] != "bilinear" else "bicubic"
        assert not torch.allclose(eval_x, _by_hand(img, profile.train_img_size, other, cfg), atol=1e-3)


def test_the_transform_follows_the_models_configuration():
    smoke = build_model(get_profile("smoke"), pretrained="none")
    bicubic = model_input(smoke, 64)
    assert bicubic.interpolation == "bicubic" and bicubic.size == 64
    resnet = build_model(get_profile("smoke", {"train_model": "resnet50.tv_in1k"}), pretrained="none")
    bilinear = model_input(resnet, 32)
    assert bilinear.interpolation == "bilinear"
    assert bilinear.mean == tuple(timm.data.resolve_model_data_config(resnet)["mean"])
    assert pickle.loads(pickle.dumps(bicubic)) == bicubic  # DataLoader workers receive it pickled


def test_an_image_at_the_input_side_is_only_normalised():
    t = ModelInput(48, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    img = _noise(48, 48)
    expected = (TF.to_dtype(TF.to_image(img), torch.float32, scale=True) - 0.5) / 0.25
    assert torch.allclose(t(img), expected, atol=1e-6)
    white = t(Image.new("RGB", (120, 60), (255, 255, 255)))
    assert white.shape == (3, 48, 48) and torch.allclose(white, torch.full_like(white, 2.0))
