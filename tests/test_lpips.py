"""LPIPS (helpers.inpaint.lpips): the stand-in weights at the real addresses, LPIPS inside the hole,
and the message when the weights are missing.

Offline: a private torch-hub cache, sockets refused and the downloaders replaced by a failure. The
stand-in weights are random, so the values are pipeline checks; what is checked holds whatever the
weights: LPIPS of a fill equal to the original is exactly 0, a hole covering the whole image gives
pyiqa's whole-image LPIPS (the reference), and a change far outside the hole barely moves it.
"""

from __future__ import annotations

import socket
from urllib.error import URLError

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.core.profiles import get_profile
from helpers.inpaint import lpips, score_cli
from helpers.inpaint.quality import MissingWeights, QualityError


def _offline(*args, **kwargs):
    raise URLError("the tests are offline")


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """A private torch-hub cache, the network cut off, and pyiqa's own cache folder pointed
    elsewhere (as when pyiqa was imported before TORCH_HOME was set): nothing may be read there."""
    import pyiqa.utils.download_util as pyiqa_download

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(pyiqa_download, "DEFAULT_CACHE_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setattr(socket.socket, "connect", _offline)
    monkeypatch.setattr(torch.hub, "download_url_to_file", _offline)
    monkeypatch.setattr(pyiqa_download, "download_url_to_file", _offline)
    lpips._METRICS.clear()
    yield tmp_path
    lpips._METRICS.clear()


@pytest.fixture
def standin(offline):
    with pytest.warns(UserWarning, match="stand-in"):
        assert lpips.ensure_standin_lpips_weights() is True
        lpips.lpips_metric("cpu")  # warns once per build
    return offline


def _image(seed: int, side: int = 128) -> Image.Image:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side]
    base = 120 + 60 * np.sin(x / 6.0)[..., None] * np.cos(y / (4.0 + seed))[..., None] * np.array([1.0, 0.6, 0.3])
    return Image.fromarray(np.clip(base + rng.normal(0, 10, (side, side, 3)), 0, 255).astype(np.uint8))


def _changed(image: Image.Image, box: tuple[slice, slice], seed: int = 9) -> Image.Image:
    arr = np.asarray(image).copy()
    rng = np.random.default_rng(seed)
    arr[box] = rng.integers(0, 256, arr[box].shape, dtype=np.uint8)
    return Image.fromarray(arr)


def test_standins_sit_at_the_real_addresses_in_the_layouts_that_load(offline):
    from pyiqa.archs.lpips_arch import LPIPS, default_model_urls
    from torchvision.models import AlexNet_Weights, alexnet

    (_, alex_path, alex_url), (_, linear_path, linear_url) = lpips.lpips_weight_files()
    assert alex_url == AlexNet_Weights.IMAGENET1K_V1.url and linear_url == default_model_urls["0.1_alex"]
    assert alex_path == offline / "torch" / "hub" / "checkpoints" / "alexnet-owt-7be5be79.pth"
    assert linear_path == offline / "torch" / "hub" / "pyiqa" / "LPIPS_v0.1_alex-df73285e.pth"
    assert lpips.lpips_weights_status()["exists"] is False
    assert lpips.ensure_standin_lpips_weights(seed=3) is True
    assert lpips.lpips_weights_status()["standin"] is True  # its sha256 is not the one in its name
    alex = torch.load(alex_path, weights_only=True)
    reference = alexnet(weights=None).state_dict()
    assert {k: v.shape for k, v in alex.items()} == {k: v.shape for k, v in reference.items()}
    linear = torch.load(linear_path, weights_only=True)
    expected = LPIPS(pretrained=False).state_dict()  # reads the AlexNet file just written (offline)
    assert sorted(linear) == [f"lin{k}.model.1.weight" for k in range(5)]
    assert all(linear[k].shape == expected[k].shape and (linear[k] >= 0).all() for k in linear)
    assert not (offline / "elsewhere").exists()  # pyiqa's import-time folder is never used


def test_standins_are_seeded_and_never_replace_a_file(offline, tmp_path, monkeypatch):
    (_, alex_path, _), (_, linear_path, _) = lpips.lpips_weight_files()
    linear_path.parent.mkdir(parents=True)
    linear_path.write_bytes(b"a real file, say")
    lpips.ensure_standin_lpips_weights(seed=1)
    assert linear_path.read_bytes() == b"a real file, say" and alex_path.exists()
    first = torch.load(alex_path, weights_only=True)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "other"))
    lpips.ensure_standin_lpips_weights(seed=1)
    (_, again, _), (_, again_linear, _) = lpips.lpips_weight_files()
    assert again != alex_path
    second = torch.load(again, weights_only=True)
    assert all(torch.equal(first[k], second[k]) for k in first)
    assert torch.equal(torch.load(again_linear, weights_only=True)["lin0.model.1.weight"],
                       lpips._standin_linear(1)["lin0.model.1.weight"])


def test_a_fill_equal_to_the_original_scores_exactly_0_and_a_changed_one_more(standin):
    original = _image(0)
    hole = np.zeros((128, 128), dtype=bool)
    hole[40:80, 30:90] = True
    filled = _changed(original, (slice(40, 80), slice(30, 90)))
    empty = np.zeros_like(hole)
    values = lpips.lpips_in_holes([original, original, original], [original.copy(), filled, filled],
                                  [hole, hole, empty], device="cpu")
    assert values[0] == 0.0  # exactly, whatever the weights
    assert values[1] > 1e-4
    assert np.isnan(values[2])  # nothing to score


def test_the_hole_sees_the_fill_not_the_far_surroundings(standin):
    original = _image(1, side=256)
    hole = np.zeros((256, 256), dtype=bool)
    hole[8:40, 8:40] = True
    inside = lpips.lpips_in_holes([original], [_changed(original, (slice(8, 40), slice(8, 40)))], [hole], "cpu")[0]
    far = lpips.lpips_in_holes([original], [_changed(original, (slice(216, 248), slice(216, 248)))], [hole], "cpu")[0]
    assert inside > 20 * far


def test_a_hole_over_the_whole_image_is_pyiqas_whole_image_lpips(standin):
    """The map averaged over every pixel is (up to the resizing of the coarse layers' maps at the
    border) the mean that pyiqa's LPIPS returns, which the command prints."""
    original, other = _image(2), _image(5)
    whole = lpips.lpips_pairs([(other, original)], device="cpu")[0]
    assert whole > 0
    everywhere = lpips.lpips_in_holes([original], [other], [np.ones((128, 128), dtype=bool)], "cpu")[0]
    assert everywhere == pytest.approx(whole, rel=0.02)
    assert score_cli.compute("lpips", [(other, original)], "cpu")[0] == whole  # one implementation


def test_wrong_inputs_are_refused(standin):
    a = _image(0)
    with pytest.raises(QualityError, match="hole 0 is 64x64 but its image is 128x128"):
        lpips.lpips_in_holes([a], [a], [np.ones((64, 64), dtype=bool)], "cpu")
    with pytest.raises(QualityError, match="pixel by pixel"):
        lpips.lpips_pairs([(a, a.resize((64, 64)))], "cpu")


def test_offline_without_weights_the_message_names_both_files(offline):
    with pytest.raises(MissingWeights) as info:
        lpips.lpips_metric("cpu")
    message = str(info.value)
    for _, path, url in lpips.lpips_weight_files():
        assert str(path) in message and url in message
    assert "put it at the path shown" in message


def test_the_step_stops_before_filling_when_lpips_weights_are_missing(offline):
    """course and paper (not a rehearsal): the published weights, fetched; offline, a clear error."""
    from helpers.inpaint import step

    with pytest.raises(step.InpaintError, match="Chapter 3's scores cannot run: LPIPS needs") as info:
        step.use_score_weights(get_profile("course"), "cpu")
    assert "alexnet-owt-7be5be79.pth" in str(info.value) and "LPIPS_v0.1_alex-df73285e.pth" in str(info.value)
