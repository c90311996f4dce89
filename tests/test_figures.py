"""helpers.book.figures: the one image grid. A cell whose image cannot be read says so inside the
figure (the rest of the grid still shows); an empty grid shows its note; the chapters' grids use it."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

from helpers.book import ch1_data, ch2_augment  # noqa: E402
from helpers.book.figures import Cell, chunks, image_grid  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def _shown(ax) -> np.ndarray | None:
    return ax.images[0].get_array() if ax.images else None


def test_an_unreadable_path_says_so_and_the_rest_shows(tmp_path):
    good = tmp_path / "good.png"
    Image.new("RGB", (8, 6), (200, 10, 10)).save(good)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg at all")
    fig = image_grid([[Cell(good, "good"), Cell(broken, "broken"), Cell(tmp_path / "missing.png", "gone")]])
    first, second, third = fig.axes
    assert _shown(first).shape == (6, 8, 3) and first.get_title() == "good"
    assert _shown(second) is None and second.get_title() == "broken"
    assert any(t.startswith("cannot show") for t in (x.get_text() for x in second.texts))
    assert any(t.startswith("cannot show") for t in (x.get_text() for x in third.texts))
    assert not first.texts


def test_an_empty_grid_shows_its_note():
    fig = image_grid([], note="no images yet")
    assert len(fig.axes) == 1 and _texts(fig) == ["no images yet"]
    fig = image_grid([[Cell(None), Cell(None)]], note="nothing to show")
    assert "nothing to show" in _texts(fig)


def test_the_note_stays_out_of_a_grid_with_images():
    fig = image_grid([[Cell(np.zeros((4, 4, 3), np.uint8))]], note="no images yet")
    assert "no images yet" not in _texts(fig)


def test_layout_titles_colours_labels_and_masks():
    mask = np.zeros((5, 5), bool)
    rows = [[Cell(np.zeros((5, 5, 3), np.uint8), "a", color="tab:red"), Cell(mask, "mask")],
            [Cell(Image.new("RGB", (5, 5)), "c")]]
    fig = image_grid(rows, row_labels=["first", "second"], title="T", size=(2.0, 1.5))
    axes = np.array(fig.axes).reshape(2, 2)
    assert [ax.get_title() for ax in axes.ravel()] == ["a", "mask", "c", ""]
    assert axes[0, 0].title.get_color() == "tab:red"
    assert axes[0, 1].images[0].get_cmap().name == "gray"  # one channel: grey
    assert [axes[r, 0].get_ylabel() for r in range(2)] == ["first", "second"]
    assert tuple(fig.get_size_inches()) == pytest.approx((4.0, 3.0)) and fig._suptitle.get_text() == "T"


def test_chunks():
    cells = [Cell(None, str(i)) for i in range(5)]
    assert [[c.title for c in row] for row in chunks(cells, 2)] == [["0", "1"], ["2", "3"], ["4"]]
    assert len(chunks(cells, 0)) == 5  # at least one a row


def test_the_chapters_grids_use_it(data_root):
    """Chapter 1's samples and Chapter 2's augmentations: a file gone from the data root shows as
    "cannot show" in its panel, not as a chapter that stops."""
    folder = data_root / "smoke"
    folder.mkdir(parents=True)
    Image.new("RGB", (10, 10), (0, 90, 0)).save(folder / "real.jpg")
    frame = pd.DataFrame({"path": ["smoke/real.jpg", "smoke/gone.jpg"], "label_name": ["real", "generated"],
                          "split": ["train", "train"], "source": ["coco", "sd2"],
                          "caption": ["a green square on a long caption that wraps", "gone"]})
    fig = ch1_data.sample_grid(frame, per_class=2)
    assert len(fig.axes) == 4 and fig.axes[0].get_title().startswith("real\na green square")
    assert any(t.startswith("cannot show") for t in (x.get_text() for x in fig.axes[2].texts))
    aug = pd.DataFrame({"path": ["smoke/gone.jpg"], "aug_source": ["smoke/real.jpg"], "source": ["augmented"],
                        "aug_ops": ["rotation+noise"]})
    fig = ch2_augment.augmented_grid(aug, n=3, source="augmented")
    assert [ax.get_title() for ax in fig.axes] == ["source", "rotation\nnoise"]
    assert "no images" in _texts(ch2_augment.augmented_grid(aug.iloc[:0], source="augmented"))[0]


def test_chapter3_rows_one_per_set_and_the_fill_that_is_gone(data_root):
    """Chapter 3's figure: original, masked, mask, fill per set; an unreadable fill says so."""
    from helpers.book import ch3_inpaint
    from helpers.core.profiles import get_profile
    from helpers.inpaint.step import out_dir

    profile = get_profile("smoke")
    folder = out_dir(profile, "telea")
    folder.mkdir(parents=True)
    Image.new("RGB", (8, 8), (10, 200, 10)).save(folder / "o.png")
    mask = np.zeros((8, 8), np.uint8)
    mask[2:5, 2:5] = 255
    Image.fromarray(mask).save(folder / "m.png")
    Image.new("RGB", (8, 8), (1, 2, 3)).save(folder / "r.png")
    rows = [{"set": s, "index": 0, "original": str(folder / "o.png"), "mask": str(folder / "m.png"),
             "result": str(folder / fill)} for s, fill in (("MS-COCO", "r.png"), ("Stable Diffusion", "gone.png"))]
    pd.DataFrame(rows).to_csv(folder / "scores.csv", index=False)
    pd.DataFrame([{"set": "MS-COCO", "fid": 1.0}]).to_csv(folder / "fid.csv", index=False)
    fig = ch3_inpaint.figure_grid(profile, "telea")
    axes = np.array(fig.axes).reshape(2, 4)
    assert [ax.get_title() for ax in axes[0]] == ["original", "masked", "mask (white = hole)", "telea"]
    assert [ax.get_title() for ax in axes[1]] == [""] * 4
    assert [axes[r, 0].get_ylabel() for r in range(2)] == ["MS-COCO", "Stable Diffusion"]
    masked = _shown(axes[0, 1])
    assert (masked[3, 3] == 255).all() and tuple(masked[0, 0]) == (10, 200, 10)  # the hole painted white
    assert tuple(_shown(axes[0, 3])[0, 0]) == (1, 2, 3)
    assert any(t.startswith("cannot show") for t in (x.get_text() for x in axes[1, 3].texts))
