import numpy as np
import pytest
from PIL import Image

from helpers.inpaint.step import InpaintError, build
from helpers.inpaint.interface import Classical, composite
from helpers.inpaint.masks import free_form
from helpers.core.profiles import get_profile


def _image(w=96, h=64):
    x = np.linspace(0, 255, w)[None, :, None] * np.ones((h, 1, 3))
    return Image.fromarray(x.astype(np.uint8))


@pytest.mark.parametrize("method", ["telea", "navier_stokes", "biharmonic"])
def test_classical_fill_only_the_hole(method):
    img = _image()
    hole = free_form(64, 96, 0.1, seed=1)
    out = Classical(method)(img, hole)
    a, b = np.asarray(out), np.asarray(img)
    assert out.size == img.size
    assert np.array_equal(a[~hole], b[~hole])
    # a smooth ramp is continued smoothly into the hole
    assert np.abs(a[hole].astype(int) - b[hole].astype(int)).mean() < 20


def test_wrong_mask_is_refused():
    with pytest.raises(ValueError, match="boolean array of shape"):
        Classical("telea")(_image(), np.zeros((10, 10)))


def test_composite_keeps_the_outside():
    a, b = _image(), Image.new("RGB", (96, 64), (255, 0, 0))
    hole = np.zeros((64, 96), bool)
    hole[5:10, 5:10] = True
    out = np.asarray(composite(a, b, hole))
    assert (out[hole] == (255, 0, 0)).all() and np.array_equal(out[~hole], np.asarray(a)[~hole])


def test_unknown_model():
    with pytest.raises(InpaintError, match="unknown inpainting model 'lama'"):
        build("lama", get_profile(), "cpu")
