"""The inpainting step end to end in smoke (offline, CPU): sets, shared holes, results, scores
(the hole's PSNR is checked against scikit-image's peak_signal_noise_ratio on the files written)."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

from helpers.data import generate
from helpers.inpaint import step as inpaint_step
from helpers.data import real_data
from helpers.book import ch3_inpaint as views
from helpers.core.profiles import get_profile

SMALL = {"inpaint_count": 3, "sd_steps": 2}
IDENTITY = ["model", "set", "index", "key", "original", "result", "mask", "hole_ratio"]


@pytest.fixture(scope="module")
def shared_root(tmp_path_factory):
    """Smoke data and generated images, made once for the module."""
    root = tmp_path_factory.mktemp("inpaint")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BOOK_DATA_ROOT", str(root / "data"))
        profile = get_profile("smoke", SMALL)
        real_data.run(profile)
        generate.run(profile)
    return root


@pytest.fixture
def study(shared_root, monkeypatch):
    monkeypatch.setenv("BOOK_DATA_ROOT", str(shared_root / "data"))
    monkeypatch.setenv("BOOK_RESULTS_ROOT", str(shared_root / "results"))
    monkeypatch.setenv("TORCH_HOME", str(shared_root / "torch-home"))
    return get_profile("smoke", SMALL)


@pytest.mark.slow
def test_every_set_gets_the_same_holes_and_is_scored(study):
    scores = inpaint_step.run(study, "telea")
    assert list(scores.set.unique()) == [inpaint_step.REAL, inpaint_step.OURS, inpaint_step.DALLE2,
                                         inpaint_step.IMAGEN]
    assert (scores.groupby("set").size() == 3).all()
    for i, part in scores.groupby("index"):
        assert part["mask"].nunique() == 1  # one hole per index, shared by every set
        assert part.hole_ratio.nunique() == 1
    row = scores.iloc[0]
    hole = np.asarray(Image.open(row["mask"])) > 127
    a, b = np.asarray(Image.open(row.original).convert("RGB")), np.asarray(Image.open(row.result))
    assert np.array_equal(a[~hole], b[~hole])
    assert list(scores.columns) == IDENTITY + list(inpaint_step.SCORE_COLUMNS)
    assert scores[list(inpaint_step.SCORE_COLUMNS)].notna().all().all()
    # the scores inside the hole see the fill only: recomputed here from the files on disk
    assert row.psnr_hole == pytest.approx(peak_signal_noise_ratio(a[hole], b[hole], data_range=255))
    assert np.isfinite(scores.psnr_hole).all() and (scores.ssim_hole < 1).all()
    assert (scores.psnr_hole < [peak_signal_noise_ratio(np.asarray(Image.open(o).convert("RGB")),
                                                        np.asarray(Image.open(r)), data_range=255)
                                for o, r in zip(scores.original, scores.result)]).all()
    fid = pd.read_csv(inpaint_step.out_dir(study, "telea") / "fid.csv")
    assert list(fid.columns) == ["model", "set", "images", "fid", "kid", "inception_weights"]
    assert len(fid) == 4 and set(fid.inception_weights) == {"random stand-in"} and fid.kid.notna().all()
    # the views read the results back
    assert len(views.table2(study, ["telea"])) == 4
    assert len(views.differences(study, ["telea"])) == 6
    # a rerun inpaints nothing again and reads the scores back
    before = {p: Image.open(p).tobytes() for p in scores.result}
    again = inpaint_step.run(study, "telea")
    assert all(Image.open(p).tobytes() == before[p] for p in again.result)
    pd.testing.assert_frame_equal(again, scores, check_dtype=False)
    # scores.csv of an older run, without the new columns: scored again, not reused
    folder = inpaint_step.out_dir(study, "telea")
    old = scores.drop(columns=["niqe_before", "psnr_hole", "ssim_hole", "sifid_hole"])
    old.rename(columns={"niqe_after": "niqe"}).to_csv(folder / "scores.csv", index=False)
    pd.testing.assert_frame_equal(inpaint_step.run(study, "telea"), scores, check_dtype=False)
    assert list(pd.read_csv(folder / "scores.csv").columns) == list(scores.columns)


def test_a_changed_hole_is_filled_again(tmp_path):
    hole = np.zeros((16, 16), dtype=bool)
    hole[2:6, 3:9] = True
    mask = tmp_path / "masks" / "0000.png"
    assert inpaint_step._write_mask(mask, hole) is False  # new
    assert inpaint_step._write_mask(mask, hole) is False  # the same hole: left alone
    assert inpaint_step._write_mask(mask, ~hole) is True  # another hole: its result is stale
    assert np.array_equal(np.asarray(Image.open(mask)) > 127, ~hole)


@pytest.mark.slow
@pytest.mark.parametrize("model", ["pconv", "deepfill_v2", "sd2_inpaint"])
def test_learned_models_run_through_the_same_step(study, model):
    profile = get_profile("smoke", dict(SMALL, inpaint_count=2, dalle2_dir="", imagen_dir=""))
    scores = inpaint_step.run(profile, model)
    assert len(scores) == 4 and scores[list(inpaint_step.SCORE_COLUMNS)].notna().all().all()


def test_user_folder_of_external_images(study, tmp_path, monkeypatch):
    folder = tmp_path / "dalle2"
    folder.mkdir()
    for i in range(4):
        Image.new("RGB", (500, 300), (i * 40, 90, 30)).save(folder / f"d{i}.png")
    (folder / "broken.jpg").write_bytes(b"not an image")
    profile = get_profile("smoke", dict(SMALL, dalle2_dir=str(folder), imagen_dir=""))
    sets = inpaint_step.image_sets(profile)
    assert list(sets) == [inpaint_step.REAL, inpaint_step.OURS, inpaint_step.DALLE2]
    assert [k for k, _ in sets[inpaint_step.DALLE2]] == ["d0", "d1", "d2"]
    assert Image.open(sets[inpaint_step.DALLE2][0][1]).size == (384, 384)


def test_missing_folder_and_object_masks_without_annotations_are_clear(study):
    with pytest.raises(inpaint_step.InpaintError, match="--set dalle2_dir=/path"):
        inpaint_step.image_sets(get_profile("smoke", dict(SMALL, dalle2_dir="/nonexistent")))
    sets = inpaint_step.image_sets(get_profile("smoke", dict(SMALL, dalle2_dir="", imagen_dir="")))
    with pytest.raises(inpaint_step.InpaintError, match="use --masks free_form"):
        inpaint_step.holes(study, sets, "objects")


@pytest.mark.slow
def test_offline_a_model_without_its_weights_is_skipped_and_the_chapter_says_so(study, monkeypatch, capsys):
    """(b) The published weights cannot be fetched: the step exits 0 with a marker, and every view
    of Chapter 3 works without that model and says how to add it."""
    from helpers.inpaint import weights as inpaint_weights
    from helpers.__main__ import main

    def offline(drive_id, output):
        raise ConnectionError("Failed to resolve 'drive.google.com'")

    monkeypatch.setattr(inpaint_weights, "download", offline)
    inpaint_step.run(study, "telea")
    sets = ["--set", "inpaint_count=3", "--set", "sd_steps=2", "--set", "pconv_checkpoint=published"]
    assert main(["inpaint", "--profile", "smoke", "--model", "pconv", *sets]) == 0
    out = capsys.readouterr().out
    assert "SKIPPED pconv: its published weights could not be fetched (ConnectionError" in out
    marker = inpaint_step.skipped_path(study, "pconv")
    assert "1SYjJ-Vlu2cpAlgBG5FiJueN9W4lf48w8" in marker.read_text()

    models = ["pconv", "telea"]
    assert views.ran(study, models) == ["telea"]
    note = views.skipped_text(study, models)
    assert "**Skipped: pconv**" in note and "--set pconv_checkpoint=PATH" in note
    assert "$TORCH_HOME/hub/checkpoints/pconv_naoto0804_places2_1000000.pth" in note
    assert set(views.table2(study, models).index.get_level_values("model")) == {"telea"}
    assert set(views.differences(study, models).index.get_level_values("model")) == {"telea"}
    for fig in (views.table2_plot(study, models), views.figure_grid(study, "pconv")):
        assert fig.axes
    texts = [t.get_text() for t in views.figure_grid(study, "pconv").axes[0].texts]
    assert any("pconv was skipped" in t for t in texts)

    # weights in place (here: random ones, asked for explicitly): the model runs, the marker goes
    again = get_profile("smoke", dict(SMALL, pconv_checkpoint="random"))
    assert len(inpaint_step.run(again, "pconv")) == 12 and not marker.exists()
    assert views.ran(study, models) == models
    assert views.skipped_text(study, models).startswith("All 2 inpainters")
