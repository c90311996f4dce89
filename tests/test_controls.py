"""Chapter 4's training-time controls: COCO's JPEG quality read from the tables, the processing chains,
the controls step on smoke's data, and the null classifier: at chance on identically processed halves,
above chance when the halves are processed differently (so the check can fail)."""

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers import augment
from helpers.classify import controls, controls_data, train
from helpers.core.paths import data_root, inside
from helpers.core.profiles import get_profile
from helpers.core.stats import wilson_interval
from helpers.data import controls as ctl
from helpers.data import generate, real_data
from helpers.data import manifest as mf
from helpers.data.images import encode, load_rgb
from helpers.data.standins import shipped_photos

DATA = {"gen_train": 8, "gen_val": 4, "gen_test": 4}


def _jpeg(path, quality, subsampling="4:2:0", size=(64, 48)):
    arr = np.random.default_rng(quality).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(arr).save(path, format="JPEG", quality=quality, subsampling=subsampling)
    return path


@pytest.mark.parametrize("quality,subsampling", [(37, "4:2:0"), (75, "4:4:4"), (90, "4:2:0"), (95, "4:2:2")])
def test_the_jpeg_quality_is_read_from_the_quantization_tables(tmp_path, quality, subsampling):
    found = ctl.estimate_quality(_jpeg(tmp_path / "a.jpg", quality, subsampling))
    assert found == {"quality": quality, "exact": True, "subsampling": subsampling}


def test_a_set_s_median_quality_and_a_file_that_is_no_jpeg(tmp_path):
    files = [_jpeg(tmp_path / f"{q}.jpg", q) for q in (70, 80, 92)]
    png = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(png)
    assert ctl.estimate_quality(png)["quality"] is None
    summary = ctl.measure_jpeg(files + [png])
    assert (summary["quality_median"], summary["jpeg_files"], summary["standard_tables"]) == (80, 3, 3)
    with pytest.raises(ctl.ControlError, match="none of the 1 raw photographs is a JPEG"):
        ctl.measure_jpeg([png])


def test_rescale_keeps_the_centre_at_the_factor_or_says_the_factor_it_could_apply():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (768, 768, 3), dtype=np.uint8))
    out, factor = ctl.rescale(img, 0.8, 384)  # paper's generated image at the photographs' factor
    assert out.size == (384, 384) and factor == pytest.approx(0.8)
    small = img.resize((200, 150))
    assert ctl.rescale(small, 3.0, 384)[1] == pytest.approx(3.0)  # its centre 128 px, enlarged 3x
    out, factor = ctl.rescale(small, 2.0, 384)  # too small for 2x at 384 (needs 192 px): its own factor, said
    assert out.size == (384, 384) and factor == pytest.approx(384 / 150)


def test_the_null_halves_side_is_the_largest_the_generated_factor_allows():
    paper, smoke = get_profile("paper"), get_profile("smoke")
    assert ctl.null_side(640, 480, paper) == 240  # 480 x 0.5
    assert ctl.null_side(640, 480, get_profile("course")) == 360  # 480 x 0.75
    assert ctl.null_side(222, 248, smoke) == 384  # 222 x 3 >= 384


def test_a_jpeg_round_trip_keeps_the_size_and_changes_the_pixels():
    img = Image.fromarray(np.random.default_rng(1).integers(0, 256, (40, 56, 3), dtype=np.uint8))
    out = ctl.jpeg_round_trip(img, 50)
    assert out.size == img.size and np.abs(np.asarray(out, int) - np.asarray(img, int)).mean() > 1


# ---------------------------------------------------------------- the step on smoke's data

@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """Smoke's photographs, generated and augmented images, and the controls step run on them."""
    root = tmp_path_factory.mktemp("controls")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BOOK_DATA_ROOT", str(root / "data"))
        mp.setenv("BOOK_RESULTS_ROOT", str(root / "results"))
        mp.delenv("BOOK_PROFILE", raising=False)
        real_data.run(get_profile("smoke", DATA))
        generate.run(get_profile("smoke", dict(DATA, sd_steps=2)))
        augment.step.run(get_profile("smoke", DATA), both_classes=True)
        measured = controls_data.run(get_profile("smoke", DATA))
    return root, measured


@pytest.fixture
def in_made(made, monkeypatch):
    root, measured = made
    monkeypatch.setenv("BOOK_DATA_ROOT", str(root / "data"))
    monkeypatch.setenv("BOOK_RESULTS_ROOT", str(root / "results"))
    monkeypatch.delenv("BOOK_PROFILE", raising=False)
    return get_profile("smoke", DATA), measured


def test_the_step_measures_the_stand_ins_quality_and_factors(in_made):
    profile, measured = in_made
    assert measured["jpeg"]["quality_median"] == 90  # the stand-ins are saved at quality 90
    assert measured["jpeg"]["standard_tables"] == measured["jpeg"]["jpeg_files"]
    assert measured["factor"]["generated"] == pytest.approx(384 / 128)


def test_compression_matched_re_makes_every_generated_image_and_keeps_the_photographs(in_made):
    profile, measured = in_made
    _, study = controls_data.study_rows(profile)
    rows = ctl.load_rows(profile, "compression-matched")
    assert len(rows) == len(study) and sorted(rows.origin) == sorted(study.path)
    real, gen = rows[rows.label == 0], rows[rows.label == 1]
    assert (real.path == real.origin).all()
    assert gen.path.str.contains("/controls/compression-matched/").all()
    assert (gen.source == augment.SOURCE["generated"]).any()  # augmented ones re-made too
    # the first JPEG leaves its trace: the re-made image differs from the study's
    one = gen.iloc[0]
    a, b = (np.asarray(load_rgb(inside(data_root(), p)), int) for p in (one.path, one.origin))
    assert a.shape == b.shape and np.abs(a - b).mean() > 0.1


def test_scale_matched_brings_both_classes_to_one_factor(in_made):
    profile, measured = in_made
    rows = ctl.load_rows(profile, "scale-matched")
    common = max(measured["factor"]["real_median"], measured["factor"]["generated"])
    assert common == pytest.approx(3.0)  # smoke: the generated images are enlarged 3x, more than the photographs
    assert rows.factor.to_numpy() == pytest.approx(np.full(len(rows), common))
    assert rows[rows.label == 0].path.str.contains("/controls/scale-matched/").all()


def test_the_null_halves_are_balanced_and_half_a_is_a_photograph_as_stored(in_made):
    profile, _ = in_made
    rows = ctl.load_rows(profile, "null")
    counts = rows.groupby(["split", "label"]).size().unstack()
    assert (abs(counts[0] - counts[1]) <= 1).all()
    a = rows[rows.label == 0].iloc[0]  # smoke: half A at the common side is the data step's own chain
    same = np.asarray(load_rgb(inside(data_root(), a.path)), int) - np.asarray(load_rgb(inside(data_root(), a.origin)), int)
    assert np.abs(same).max() == 0
    assert rows[rows.label == 1].factor.to_numpy() == pytest.approx(np.full((rows.label == 1).sum(), 3.0))


def test_a_second_run_makes_nothing_again(in_made, capsys):
    profile, _ = in_made
    controls_data.run(profile)
    out = capsys.readouterr().out
    assert "(0 now)" in out and "now)" in out and all(f"({n} now)" not in out for n in range(1, 50))


def test_a_control_not_made_says_which_command_makes_it(data_root):
    with pytest.raises(ctl.ControlError, match="python -m helpers controls --profile smoke"):
        ctl.load_rows(get_profile("smoke"), "null")


# ---------------------------------------------------------------- the null classifier

def _crops(n: int, side: int, seed: int) -> list[Image.Image]:
    """``n`` distinct photographic crops of the packaged photographs."""
    rng, photos = np.random.default_rng(seed), list(shipped_photos().values())
    out = []
    for i in range(n):
        photo = photos[i % len(photos)]
        y, x = (int(rng.integers(0, s - side)) for s in photo.shape[:2])
        out.append(Image.fromarray(np.ascontiguousarray(photo[y:y + side, x:x + side, :3])))
    return out


def _null_rows(profile, half_b, counts=(120, 40, 200)) -> None:
    """rows.csv of the null control: photographic crops cut into seeded halves, A kept as it is,
    B through ``half_b`` (both then stored in the profile's format)."""
    rows, rng = [], np.random.default_rng(7)
    for split, n in zip(mf.SPLITS, counts):
        labels = rng.permutation(np.arange(n) % 2)
        for i, (img, label) in enumerate(zip(_crops(n, 48, mf.SPLITS.index(split)), labels)):
            path = ctl.controls_dir(profile) / "null" / "images" / split / f"{i:04d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(encode(half_b(img) if label else img, profile))
            rows.append(dict(path=path.relative_to(data_root()).as_posix(), label=int(label),
                             label_name=("real", "generated")[label], split=split, source="null"))
    pd.DataFrame(rows).to_csv(ctl.rows_path(profile, "null"), index=False)


def _null_accuracy(in_made, half_b) -> dict:
    profile = get_profile("smoke", DATA | {"train_img_size": 32, "train_epochs": 3, "train_patience": 3,
                                           "train_lr": 3e-3})
    _null_rows(profile, half_b)
    train.run(profile, variant="null")
    return controls.own_test(profile, "null")["metrics"]


def _darkened(img: Image.Image) -> Image.Image:
    """A difference of processing that a tiny model learns in a few epochs (a tone curve)."""
    return img.point(lambda v: v // 2)


@pytest.mark.slow
def test_the_null_classifier_sits_at_chance_when_both_halves_are_processed_alike(in_made, tmp_path, monkeypatch):
    monkeypatch.setenv("BOOK_RESULTS_ROOT", str(tmp_path / "results"))
    m = _null_accuracy(in_made, lambda img: img)
    # Identical processing: the predictions are independent of the test labels, so the correct count is
    # Binomial(n, 1/2). Its 99.9% Wilson interval holds 1/2 except once in about a thousand runs.
    low, high = wilson_interval(m["tp"] + m["tn"], m["n"], level=0.999)
    assert m["n"] == 200 and low <= 0.5 <= high, m


@pytest.mark.slow
def test_the_null_classifier_is_above_chance_when_half_b_is_processed_otherwise(in_made, tmp_path, monkeypatch):
    monkeypatch.setenv("BOOK_RESULTS_ROOT", str(tmp_path / "results"))
    m = _null_accuracy(in_made, _darkened)  # a difference of processing the same model can learn
    low, _ = wilson_interval(m["tp"] + m["tn"], m["n"], level=0.999)
    assert low > 0.5, m
