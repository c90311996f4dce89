"""The inpainting step end to end in smoke (offline, CPU): sets, shared holes, results, scores
(the hole's PSNR is checked against scikit-image's peak_signal_noise_ratio on the files written,
its LPIPS against helpers.inpaint.lpips on them); object holes from COCO instance annotations
written here for the stand-in photographs, with the free-form fallback and the matched holes."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio

from helpers.core.paths import coco_dir
from helpers.data import generate
from helpers.inpaint import lpips
from helpers.inpaint import step as inpaint_step
from helpers.data import real_data
from helpers.book import ch3_inpaint as views
from helpers.core.profiles import get_profile

SMALL = {"inpaint_count": 3, "sd_steps": 2}
IDENTITY = ["model", "set", "index", "key", "original", "result", "mask", "hole_ratio", "hole_kind"]


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
    assert list(inpaint_step.SCORE_COLUMNS) == ["niqe_before", "niqe_after", "psnr_hole", "ssim_hole", "lpips_hole",
                                                "sifid", "sifid_hole"]
    assert scores[list(inpaint_step.SCORE_COLUMNS)].notna().all().all()
    assert set(scores.hole_kind) == {"free_form"}  # smoke's setting: its stand-ins have no object annotations
    # the scores inside the hole see the fill only: recomputed here from the files on disk
    assert row.psnr_hole == pytest.approx(peak_signal_noise_ratio(a[hole], b[hole], data_range=255))
    assert np.isfinite(scores.psnr_hole).all() and (scores.ssim_hole < 1).all()
    assert row.lpips_hole == pytest.approx(lpips.lpips_in_holes([Image.fromarray(a)], [Image.fromarray(b)], [hole])[0])
    assert (scores.lpips_hole > 0).all()  # telea's fills differ from the originals (stand-in weights: a check)
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
    old = scores.drop(columns=["niqe_before", "psnr_hole", "ssim_hole", "lpips_hole", "sifid_hole", "hole_kind"])
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


def _instances(study, objects: dict[int, list[float]]) -> None:
    """COCO instance annotations for the stand-in test photographs: ``objects[index]`` is the
    polygon (in the original's pixels) of real photograph ``index``'s one object."""
    folder = coco_dir(study) / "annotations"
    images = json.loads((folder / "captions_val2017.json").read_text())["images"]
    keys = [key for key, _ in inpaint_step.image_sets(study)[inpaint_step.REAL]]
    anns = [{"id": 1000 + i, "image_id": int(keys[i]), "iscrowd": 0, "category_id": 1, "segmentation": [poly]}
            for i, poly in objects.items()]
    (folder / "instances_val2017.json").write_text(json.dumps({"images": images, "annotations": anns}))


def _box(study, index: int, share: float) -> list[float]:
    """A square around the centre of real photograph ``index`` whose area is ``share`` of its crop."""
    key = [k for k, _ in inpaint_step.image_sets(study)[inpaint_step.REAL]][index]
    images = json.loads((coco_dir(study) / "annotations" / "captions_val2017.json").read_text())["images"]
    entry = next(im for im in images if im["id"] == int(key))
    w, h = entry["width"], entry["height"]
    half = (share * min(w, h) ** 2) ** 0.5 / 2
    cx, cy = w / 2, h / 2
    return [cx - half, cy - half, cx + half, cy - half, cx + half, cy + half, cx - half, cy + half]


def test_object_holes_fall_back_clearly_and_generated_sets_get_them_moved(study, capsys):
    """Photograph 0 has an object of 10% of its crop, 1 none, 2 a speck of 0.5%: 0 gets the object's
    hole, 1 and 2 the free-form holes (said in the output); the generated sets get the same holes
    moved (same area and shape). Without any usable object, object removal is refused."""
    sets = inpaint_step.image_sets(get_profile("smoke", dict(SMALL, dalle2_dir="", imagen_dir="")))
    path = coco_dir(study) / "annotations" / "instances_val2017.json"
    try:
        _instances(study, {0: _box(study, 0, 0.10), 2: _box(study, 2, 0.005)})
        holes, kinds = inpaint_step.holes(study, sets, "objects")
        assert kinds[inpaint_step.REAL] == ["object", "free_form", "free_form"]
        assert kinds[inpaint_step.OURS] == ["object_matched", "free_form_matched", "free_form_matched"]
        assert "holes: 1 of 3 indices have an annotated object" in capsys.readouterr().out
        real, ours = holes[inpaint_step.REAL], holes[inpaint_step.OURS]
        assert 0.10 <= real[0].mean() <= 0.14  # the object, dilated a few pixels
        assert np.array_equal(real[1], inpaint_step._free_form(study, 1))
        assert [h.sum() for h in ours] == [h.sum() for h in real] and not np.array_equal(ours[0], real[0])
        _instances(study, {2: _box(study, 2, 0.005)})
        with pytest.raises(inpaint_step.InpaintError, match="none of the 3 test photographs has an annotated object"):
            inpaint_step.holes(study, sets, "objects")
    finally:
        path.unlink(missing_ok=True)


@pytest.mark.slow
def test_the_profiles_hole_kind_is_the_default_and_object_holes_run_end_to_end(study):
    profile = get_profile("smoke", dict(SMALL, dalle2_dir="", imagen_dir="", inpaint_models="telea",
                                        inpaint_masks="objects"))
    with pytest.raises(inpaint_step.InpaintError, match="use --masks free_form"):
        inpaint_step.run(profile, "telea")  # the profile's setting, with no annotations: refused
    path = coco_dir(study) / "annotations" / "instances_val2017.json"
    try:
        _instances(study, {0: _box(study, 0, 0.10), 1: _box(study, 1, 0.2)})
        scores = inpaint_step.run(profile, "telea")
    finally:
        path.unlink(missing_ok=True)
    assert list(scores.hole_kind) == ["object", "object", "free_form", "object_matched", "object_matched",
                                      "free_form_matched"]
    ours = scores[scores.set == inpaint_step.OURS]
    assert all(m.endswith("_matched.png") for m in ours["mask"])
    assert np.allclose(ours.hole_ratio.to_numpy(), scores[scores.set == inpaint_step.REAL].hole_ratio.to_numpy())
    assert scores[list(inpaint_step.SCORE_COLUMNS)].notna().all().all()
