"""Chapter 4's residual spectra: the residual removes flat content, a periodic trace shows as a peak at
its frequency, the radial profile averages rings correctly, and the classes are kept apart."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers.data import spectra


def _image(arr) -> Image.Image:
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).convert("RGB")


def _noise(seed: int, side: int = 64, period: int | None = None) -> Image.Image:
    """Grey noise, with a faint grid of period ``period`` pixels added (a generator's trace)."""
    rng = np.random.default_rng(seed)
    arr = 128 + rng.normal(0, 12, (side, side))
    if period:
        yy, xx = np.mgrid[:side, :side]
        arr += 40 * ((xx % period == 0) | (yy % period == 0))
    return _image(arr)


def test_the_residual_of_a_flat_or_smooth_image_is_zero():
    assert np.abs(spectra.residual(_image(np.full((32, 32), 90)))).max() == 0
    ramp = np.tile(np.arange(32) * 4, (32, 1))  # a linear ramp: the median filter keeps it inside
    assert np.abs(spectra.residual(_image(ramp))[1:-1, 1:-1]).max() < 1e-12


def test_the_radial_profile_runs_to_nyquist_and_averages_rings():
    freq, radial = spectra.radial_profile(np.full((64, 64), 3.0))
    assert freq[0] == 0 and freq[-1] == pytest.approx(0.5) and len(freq) == 33
    assert radial == pytest.approx(np.full(33, 3.0))
    fy, fx = np.meshgrid(np.fft.fftshift(np.fft.fftfreq(64)), np.fft.fftshift(np.fft.fftfreq(64)), indexing="ij")
    freq, radial = spectra.radial_profile(np.hypot(fy, fx))  # the value is the frequency itself
    assert radial[5:] == pytest.approx(freq[5:], rel=0.05)


def _at(spectrum: np.ndarray, fy: float, fx: float) -> float:
    """The value of a centred spectrum at the frequency (fy, fx), in cycles per pixel."""
    h, w = spectrum.shape
    return float(spectrum[h // 2 + round(fy * h), w // 2 + round(fx * w)])


def test_a_periodic_trace_shows_as_a_peak_at_its_frequency():
    grid = spectra.mean_spectrum_of([_noise(s, period=8) for s in range(4)])
    plain = spectra.mean_spectrum_of([_noise(s) for s in range(4)])
    assert _at(grid, 0, 0.125) - _at(plain, 0, 0.125) > 1.0  # lines every 8 px: a peak at 1/8 cycle
    assert _at(grid, 0.125, 0) - _at(plain, 0.125, 0) > 1.0
    assert abs(_at(grid, 0.19, 0.19) - _at(plain, 0.19, 0.19)) < 1.0  # elsewhere: the noise floor
    freq, radial = spectra.radial_profile(grid)
    ring = int(np.argmin(np.abs(freq - 0.125)))
    assert radial[ring] > spectra.radial_profile(plain)[1][ring]  # the ring holding the peaks rises too


def test_class_spectra_keep_the_classes_apart(tmp_path, monkeypatch):
    monkeypatch.setenv("BOOK_DATA_ROOT", str(tmp_path))
    rows = []
    for i in range(6):
        label = i % 2
        path = tmp_path / f"{i}.png"
        _noise(i, period=4 if label else None).save(path)
        rows.append({"path": path.name, "label": label})
    out = spectra.class_spectra(pd.DataFrame(rows), n=2, seed=0)
    assert sorted(out) == [0, 1] and out[0]["n"] == out[1]["n"] == 2
    assert _at(out[1]["spectrum"], 0, 0.25) - _at(out[0]["spectrum"], 0, 0.25) > 2.0
    assert spectra.class_spectra(pd.DataFrame(rows[:1]), n=2, seed=0).keys() == {0}


def test_images_of_different_sizes_are_cropped_not_resized():
    small, large = _noise(0, side=40), _noise(1, side=64)
    assert spectra.mean_spectrum_of([small, large]).shape == (40, 40)
    with pytest.raises(ValueError, match="no images"):
        spectra.mean_spectrum([])
