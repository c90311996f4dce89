"""``python -m helpers score`` (helpers.inpaint.score_cli): a reader's own images, scored as Chapter 3 scores.

The references the printed values are checked against: scikit-image's ``skimage.metrics``
(``peak_signal_noise_ratio``, ``structural_similarity``, computed here in the test), the chapter's
own :func:`helpers.inpaint.niqe.niqe` and :func:`helpers.inpaint.fid.sifid_pairs` called directly,
and the identities PSNR = inf, SIFID = 0 and LPIPS = 0 for identical images.

Offline: a private torch-hub cache, sockets refused and the downloaders replaced by a failure, so
that LPIPS and SIFID must either find their files or say which are missing.
"""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from helpers.__main__ import main
from helpers.inpaint import inception, lpips, niqe, score_cli


def _offline(*args, **kwargs):
    raise URLError("the tests are offline")


@pytest.fixture
def offline(data_root, tmp_path, monkeypatch):
    """A private torch-hub cache and data root, with the network cut off."""
    import pyiqa.utils.download_util as pyiqa_download

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(pyiqa_download, "DEFAULT_CACHE_DIR", str(tmp_path / "torch" / "hub" / "pyiqa"))
    monkeypatch.setattr(socket.socket, "connect", _offline)
    monkeypatch.setattr(torch.hub, "download_url_to_file", _offline)
    monkeypatch.setattr(pyiqa_download, "download_url_to_file", _offline)
    inception._INCEPTIONS.clear()
    niqe._NIQE_METRICS.clear()
    lpips._METRICS.clear()
    yield tmp_path
    inception._INCEPTIONS.clear()
    niqe._NIQE_METRICS.clear()
    lpips._METRICS.clear()


def _textured(seed: int, side: int = 192) -> np.ndarray:
    """A smooth, textured RGB image with noise (SSIM and NIQE mean little on pure noise)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:side, 0:side]
    base = 120 + 60 * np.sin(x / (5.0 + seed))[..., None] * np.cos(y / 7.0)[..., None] * np.array([1.0, 0.7, 0.4])
    return np.clip(base + rng.normal(0, 8, (side, side, 3)), 0, 255).astype(np.uint8)


@pytest.fixture
def images(tmp_path) -> dict[str, Path]:
    """original, two different fills of it, an exact copy, and a smaller image, as PNG files."""
    original = _textured(0)
    rng = np.random.default_rng(5)
    arrays = {"original": original, "copy": original.copy(),
              "noisy": np.clip(original + rng.normal(0, 12, original.shape), 0, 255).astype(np.uint8),
              "other": _textured(3), "small": _textured(1, side=96)}
    paths = {}
    for name, arr in arrays.items():
        paths[name] = tmp_path / f"{name}.png"
        Image.fromarray(arr).save(paths[name])
    return paths


def _printed(capsys) -> tuple[dict[str, float], str]:
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    return {Path(f).name: float(v) for f, v in (line.split("\t") for line in lines[1:])}, err


def _rgb(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_psnr_and_ssim_are_skimages(images, capsys):
    files = [images["noisy"], images["other"], images["copy"]]
    refs = [images["original"]] * 3
    assert main(["score", "psnr", *map(str, files), "--reference", *map(str, refs)]) == 0
    psnr, err = _printed(capsys)
    original = _rgb(images["original"])
    for f in files[:2]:
        assert psnr[f.name] == pytest.approx(peak_signal_noise_ratio(original, _rgb(f), data_range=255), rel=1e-6)
    assert psnr["copy.png"] == float("inf")  # identical images
    assert psnr["noisy.png"] > psnr["other.png"]

    assert main(["score", "ssim", *map(str, files), "--reference", *map(str, refs)]) == 0
    ssim, _ = _printed(capsys)
    for f in files[:2]:
        expected = structural_similarity(original, _rgb(f), data_range=255, channel_axis=2)
        assert ssim[f.name] == pytest.approx(expected, rel=1e-6)
    assert ssim["copy.png"] == pytest.approx(1.0)
    assert 0 < ssim["other.png"] < ssim["noisy.png"] < 1


def test_niqe_is_the_chapters_niqe(offline, images, capsys):
    files = [images["original"], images["noisy"], images["other"]]
    assert main(["score", "niqe", *map(str, files)]) == 0
    printed, _ = _printed(capsys)
    expected = niqe.niqe([Image.open(f).convert("RGB") for f in files], device="cpu")
    assert [printed[f.name] for f in files] == pytest.approx(expected, rel=1e-6)
    assert len(set(printed.values())) == 3


@pytest.mark.parametrize("argv, words", [
    (["psnr", "A", "B", "--reference", "A"], "2 FILE(s) but 1 --reference"),
    (["ssim", "A"], "--reference"),
    (["niqe", "A", "--reference", "B"], "takes no reference"),
])
def test_wrong_arguments_exit_2_with_a_message(images, capsys, argv, words):
    names = {"A": str(images["original"]), "B": str(images["noisy"])}
    assert main(["score", *[names.get(a, a) for a in argv]]) == 2
    out, err = capsys.readouterr()
    assert words in err and out == ""


def test_another_size_and_bad_files_are_reported_and_the_rest_scored(images, tmp_path, capsys):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    files = [images["small"], images["noisy"], tmp_path / "missing.png", broken]
    code = main(["score", "psnr", *map(str, files), "--reference", *[str(images["original"])] * 4])
    printed, err = _printed(capsys)
    assert code == 1 and list(printed) == ["noisy.png"]
    assert f"{images['small']}: is 96x96 but its reference {images['original']} is 192x192" in err
    assert f"{tmp_path / 'missing.png'}: cannot read" in err
    assert f"{broken}: not an image file" in err
    assert "3 of 4 file(s) not scored" in err and "Traceback" not in err


def test_niqe_reports_an_image_too_small_for_it(offline, images, capsys):
    assert main(["score", "niqe", str(images["small"]), str(images["original"])]) == 1
    printed, err = _printed(capsys)
    assert list(printed) == ["original.png"]
    assert f"{images['small']}: 96x96 is too small for NIQE" in err


@pytest.mark.slow
def test_sifid_is_the_chapters_sifid(offline, images, capsys):
    from helpers.inpaint import fid

    assert inception.ensure_standin_inception_weights() is True  # random weights: the numbers still must agree
    files = [images["noisy"], images["copy"], images["other"]]
    with pytest.warns(UserWarning, match="stand-in"):
        assert main(["score", "sifid", *map(str, files), "--reference", *[str(images["original"])] * 3]) == 0
    printed, _ = _printed(capsys)
    original = Image.open(images["original"]).convert("RGB")
    expected = fid.sifid_pairs([(original, Image.open(f).convert("RGB")) for f in files])
    assert [printed[f.name] for f in files] == pytest.approx(expected, rel=1e-6, abs=1e-9)
    assert printed["copy.png"] == pytest.approx(0.0, abs=1e-6) and printed["other.png"] > 0


@pytest.mark.slow
def test_sifid_and_lpips_offline_name_the_missing_files(offline, images, capsys):
    args = [str(images["noisy"]), "--reference", str(images["original"])]
    assert main(["score", "lpips", *args]) == 1
    out, err = capsys.readouterr()
    files = lpips.lpips_weight_files()
    assert out == "" and "Traceback" not in err
    for name, path, url in files:
        assert str(path) in err and url in err
        assert str(path).startswith(str(offline / "torch"))
    assert "alexnet-owt-7be5be79.pth" in err and "LPIPS_v0.1_alex-df73285e.pth" in err

    assert main(["score", "sifid", *args]) == 1
    _, err = capsys.readouterr()
    assert str(inception.inception_weights_path()) in err and "pt_inception-2015-12-05" in err


@pytest.mark.slow
def test_lpips_runs_on_files_in_place_and_is_0_for_identical_images(offline, images, capsys):
    """Random weights of LPIPS's layout at the paths pyiqa and torchvision read: the numbers are
    pipeline checks, but LPIPS of an image with itself is 0 whatever the weights."""
    from pyiqa.archs.lpips_arch import LPIPS
    from torchvision.models import alexnet

    (_, alex_path, _), (_, linear_path, _) = lpips.lpips_weight_files()
    alex_path.parent.mkdir(parents=True)
    torch.save(alexnet(weights=None).state_dict(), alex_path)
    linear_path.parent.mkdir(parents=True)  # LPIPS() reads AlexNet's file; its linear weights >= 0, as trained ones
    torch.save({k: v.abs() for k, v in LPIPS(pretrained=False).state_dict().items()}, linear_path)
    files = [images["copy"], images["noisy"]]
    assert main(["score", "lpips", *map(str, files), "--reference", *[str(images["original"])] * 2,
                 "--device", "cpu"]) == 0
    printed, _ = _printed(capsys)
    assert printed["copy.png"] == pytest.approx(0.0, abs=1e-6)
    assert printed["noisy.png"] > 1e-6
