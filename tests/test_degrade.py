"""Chapter 6's degradations against reference implementations, and robust training's per-sample augmentation.

Each degradation is checked on one textured image against an independent implementation (PIL,
torchvision, scipy); the blur + JPEG augmentation of ``train --robust-aug`` must give the same
image for the same (seed, epoch, index) in any process, and a robust run stopped in mid-epoch must
end with the weights of one never stopped.
"""

import io
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image, ImageFilter
from scipy import ndimage
from torchvision.transforms import InterpolationMode
from torchvision.transforms.v2 import functional as TF

from helpers.classify import degrade as dg
from helpers.classify import loop, train
from helpers.classify.dataset import ManifestDataset
from helpers.classify.loaders import ResumableSampler, robust_training
from helpers.core.profiles import get_profile
from helpers.data import manifest as mf


def _image(w=96, h=80, seed=0) -> Image.Image:
    """Smooth gradients plus fine texture: every degradation changes it visibly."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([x * 255 / w, y * 255 / h, (x + y) * 127 / (w + h) + 60], axis=-1)
    return Image.fromarray(np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8))


def _arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float64)


def _psnr(a: Image.Image, b: Image.Image) -> float:
    mse = np.mean((_arr(a) - _arr(b)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255 ** 2 / mse)


# ---------------------------------------------------------------- each degradation against a reference

@pytest.mark.parametrize("quality", dg.LEVELS["jpeg"])
def test_jpeg_is_pils_encoder_at_that_quality(quality):
    img = _image()
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality, subsampling="4:2:0")
    reference = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    out = dg.degrade(img, "jpeg", quality)
    assert out.size == img.size and np.array_equal(_arr(out), _arr(reference))


def test_lower_jpeg_quality_loses_more():
    stored = dg.jpeg(_image(), 95)  # as the study stores both classes: JPEG q95, 4:2:0
    psnr = [_psnr(stored, dg.jpeg(stored, q)) for q in dg.LEVELS["jpeg"]]
    assert psnr == sorted(psnr, reverse=True) and psnr[0] > 35 > 30 > psnr[-1]


@pytest.mark.parametrize("factor", [0.75, 0.5, 0.25])
def test_downscale_matches_torchvision_down_and_up(factor):
    img = _image()
    x = TF.to_image(img)
    side = round(min(img.size) * factor)
    small = TF.resize(x, [side], interpolation=InterpolationMode.BICUBIC, antialias=True)
    reference = TF.resize(small, [img.size[1], img.size[0]], interpolation=InterpolationMode.BICUBIC,
                          antialias=True)
    out = dg.degrade(img, "downscale", factor)
    assert out.size == img.size
    diff = np.abs(_arr(out) - reference.permute(1, 2, 0).numpy().astype(np.float64))
    assert diff.mean() < 3.0  # Lanczos down (ours) and bicubic down (torchvision's) differ by a little
    assert _psnr(img, out) < 30  # and the fine texture is really gone


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.0, 3.0])
def test_blur_is_a_gaussian_of_that_sigma(sigma):
    img = _image()
    x = _arr(img)
    reference = np.stack([ndimage.gaussian_filter(x[..., c], sigma, mode="mirror", truncate=3.0)
                          for c in range(3)], axis=-1)
    out = _arr(dg.degrade(img, "blur", sigma))
    assert np.abs(out - np.round(reference)).max() <= 1
    pil = _arr(img.filter(ImageFilter.GaussianBlur(sigma)))  # PIL's box-blur approximation, loosely
    assert np.abs(out - pil).mean() < 3.0


@pytest.mark.parametrize("sigma", [0.01, 0.02, 0.05, 0.1])
def test_noise_is_seeded_gaussian_on_the_unit_scale(sigma):
    gray = Image.new("RGB", (128, 128), (128, 128, 128))  # mid-grey: no clipping
    seed = dg.image_seed(gray, 7)
    expected = np.round(np.clip(_arr(gray) / 255 + np.random.default_rng(seed).normal(0, sigma, (128, 128, 3)),
                                0, 1) * 255)
    out = dg.degrade(gray, "noise", sigma, seed=7)
    assert np.array_equal(_arr(out), expected)
    residual = (_arr(out) - _arr(gray)) / 255
    assert abs(residual.std() - sigma) < 0.1 * sigma and abs(residual.mean()) < 0.002
    assert np.array_equal(_arr(dg.degrade(gray, "noise", sigma, seed=7)), _arr(out))  # the same on a rerun
    assert not np.array_equal(_arr(dg.degrade(gray, "noise", sigma, seed=8)), _arr(out))


def test_two_images_get_their_own_noise():
    a, b = _image(seed=1), _image(seed=2)
    na = _arr(dg.degrade(a, "noise", 0.05)) - _arr(a)
    nb = _arr(dg.degrade(b, "noise", 0.05)) - _arr(b)
    assert not np.allclose(na, nb)


@pytest.mark.parametrize("kind,level", [("downscale", 1.0), ("blur", 0.0), ("noise", 0.0)])
def test_the_first_level_leaves_the_image_as_it_is(kind, level):
    img = _image()
    assert dg.LEVELS[kind][0] == level
    assert np.array_equal(_arr(dg.degrade(img, kind, level)), _arr(img))


@pytest.mark.parametrize("kind,level,match", [("sharpen", 1, "unknown degradation"), ("jpeg", 0, "out of range"),
                                              ("jpeg", 75.5, "out of range"), ("downscale", 1.5, "out of range"),
                                              ("blur", -1, "out of range"), ("noise", -0.1, "out of range")])
def test_bad_degradations_are_refused_with_the_valid_ones(kind, level, match):
    with pytest.raises(ValueError, match=match):
        dg.degrade(_image(), kind, level)


# ---------------------------------------------------------------- robust training's augmentation

def test_the_augmentation_depends_on_seed_epoch_and_index_alone():
    img = _image()
    a, b = dg.RobustAugment(2024), pickle.loads(pickle.dumps(dg.RobustAugment(2024)))  # a worker's copy
    for epoch, index in [(1, 0), (1, 5), (3, 5)]:
        np.random.seed(epoch)  # the global generators play no part
        torch.manual_seed(index)
        assert np.array_equal(_arr(a(img, epoch, index)), _arr(b(img, epoch, index)))
    draws = [a.draws(e, i) for e in (1, 2) for i in range(300)]
    assert 0.4 < np.mean([s is not None for s, _ in draws]) < 0.6
    assert 0.4 < np.mean([q is not None for _, q in draws]) < 0.6
    sigmas = [s for s, _ in draws if s is not None]
    qualities = [q for _, q in draws if q is not None]
    assert 0 <= min(sigmas) and max(sigmas) <= 3 and 30 <= min(qualities) and max(qualities) <= 100
    assert a.draws(1, 5) != a.draws(2, 5) or a.draws(1, 6) != a.draws(2, 6)  # each epoch draws anew
    assert dg.RobustAugment(1).draws(1, 5) != a.draws(1, 5) or dg.RobustAugment(1).draws(1, 6) != a.draws(1, 6)


def test_the_sampler_hands_out_index_and_epoch_and_resumes_on_them():
    sampler = ResumableSampler(list(range(20)), num_replicas=1, rank=0, shuffle=True, seed=3)
    sampler.with_epoch = True
    sampler.set_epoch(4)
    whole = list(sampler)
    assert sorted(i for i, _ in whole) == list(range(20)) and {e for _, e in whole} == {4}
    sampler.skip = 6
    assert list(sampler) == whole[6:]


def _study(root, n=8):
    """A tiny manifest: n dark real and n bright generated images per split (test: 2 each)."""
    rows = []
    for label, lo, hi in (("real", 0, 110), ("generated", 140, 256)):
        for split, count in (("train", n), ("val", 4), ("test", 2)):
            for i in range(count):
                rel = f"smoke/images/{label}/{split}/{label}_{i}.jpg"
                (root / rel).parent.mkdir(parents=True, exist_ok=True)
                rng = np.random.default_rng(len(rows))
                Image.fromarray(rng.integers(lo, hi, (48, 48, 3), dtype=np.uint8)).save(root / rel, quality=95)
                rows.append({"path": rel, "label": mf.LABELS[label], "label_name": label, "split": split,
                             "source": "coco-train2017" if label == "real" else "sd2"})
    for label in ("real", "generated"):
        mf.write_part("smoke", label, pd.DataFrame([r for r in rows if r["label_name"] == label]))


def test_the_dataset_augments_only_what_the_sampler_pairs_with_an_epoch(data_root):
    _study(data_root, n=2)
    data = ManifestDataset("smoke", "train")
    plain = data[1][0]
    sampler = ResumableSampler(data, num_replicas=1, rank=0, shuffle=False)
    robust_training(type("Loader", (), {"dataset": data})(), sampler, dg.RobustAugment(5))
    epoch = next(e for e in range(1, 50) if dg.RobustAugment(5).draws(e, 1) != (None, None))
    augmented = data[(1, epoch)][0]
    assert torch.equal(augmented, data[(1, epoch)][0]) and not torch.equal(augmented, plain)
    assert torch.equal(data[1][0], plain)  # validation-style plain indices are left alone


class Stop(Exception):
    """A stand-in for a kill."""


def _weights(path):
    return torch.load(path, map_location="cpu", weights_only=True)["model"]


def test_a_robust_run_stopped_in_mid_epoch_ends_like_one_never_stopped(data_root, tmp_path, monkeypatch):
    _study(data_root)  # 16 training images, batches of 8: 2 optimizer steps an epoch
    profile = get_profile("smoke", {"train_epochs": 2, "train_patience": 5, "train_img_size": 32})
    seen = []
    real_call = dg.RobustAugment.__call__
    monkeypatch.setattr(dg.RobustAugment, "__call__",
                        lambda self, img, e, i: seen.append((e, i)) or real_call(self, img, e, i))
    monkeypatch.setenv("BOOK_RESULTS_ROOT", str(tmp_path / "straight"))
    straight = train.run(profile, robust=True)
    out_a = train.run_folder(profile, "robust")
    assert sorted(seen) == [(e, i) for e in (1, 2) for i in range(16)]  # every image, every epoch
    assert train.run_dir(profile).exists() is False
    monkeypatch.setenv("BOOK_RESULTS_ROOT", str(tmp_path / "stopped"))
    real_step, calls = loop.optimizer_step, []

    def step_then_stop(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:  # inside epoch 2's second step; saved after its first
            raise Stop
        return real_step(*args, **kwargs)

    monkeypatch.setattr(loop, "optimizer_step", step_then_stop)
    with pytest.raises(Stop):
        train.run(get_profile("smoke", {**profile.changed_settings(), "train_checkpoint_minutes": 1e-9}),
                  robust=True)
    monkeypatch.setattr(loop, "optimizer_step", real_step)
    resumed = train.run(profile, robust=True)
    out_b = train.run_folder(profile, "robust")
    cols = ["epoch", "train_loss", "val_loss", "val_acc"]
    pd.testing.assert_frame_equal(resumed[cols], straight[cols], check_exact=False, rtol=1e-9)
    a, b = _weights(out_a / "last.pt"), _weights(out_b / "last.pt")
    assert all(torch.allclose(a[k], b[k], rtol=1e-6, atol=1e-7) for k in a)
    with pytest.raises(train.TrainError, match="goes without --control"):
        train.run(profile, robust=True, control=True)
