"""Chapter 2's augmentation: Algorithm 1 (seeded, exact, in range) and the step (resumable, and
its control)."""

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from helpers.augment import algorithm1, step
from helpers.data import generate
from helpers.data import real_data
from helpers.data import manifest as mf
from helpers.core.profiles import PROFILES, get_profile

TINY = {"gen_train": 6, "augment_count": 9, "sd_steps": 2}


@pytest.fixture
def study(data_root):
    """Smoke data and generated images in a private data root (made once per test)."""
    profile = get_profile("smoke", TINY)
    real_data.run(profile)
    generate.run(profile)
    return profile


def test_each_profile_grows_generated_train_to_the_real_count():
    for p in PROFILES.values():
        assert p.gen_train + p.augment_count == p.real_train
    assert PROFILES["paper"].augment_count == 3_000


def test_every_non_empty_subset_is_possible_and_parameters_stay_in_range():
    assert len(algorithm1.SUBSETS) == 15
    ranges = PROFILES["paper"].augment
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(3000):
        p = algorithm1.draw(rng, ranges)
        seen.add(tuple(p["ops"]))
        assert p["ops"]
        assert -ranges.rotation_deg <= p.get("angle", 0) <= ranges.rotation_deg
        assert ranges.noise_sigma[0] <= p.get("sigma", ranges.noise_sigma[0]) <= ranges.noise_sigma[1]
        for key in ("brightness", "contrast", "saturation", "hue"):
            lo, hi = getattr(ranges, key)
            assert lo <= p.get(key, lo) <= hi
    assert len(seen) == 15


def test_rotation_leaves_no_empty_corner():
    white = Image.new("RGB", (200, 120), (255, 255, 255))
    out = np.asarray(algorithm1.apply(white, {"ops": ["rotation"], "angle": 15.0}, 0))
    assert out.shape == (120, 200, 3) and out.min() > 200  # no black corners


def test_same_seed_same_pixels_and_noise_does_not_touch_the_global_rng():
    img = Image.new("RGB", (64, 64), (120, 80, 40))
    params = {"ops": ["noise"], "sigma": 0.03}
    state = __import__("torch").random.get_rng_state()
    a, b = algorithm1.apply(img, params, 7), algorithm1.apply(img, params, 7)
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(algorithm1.apply(img, params, 8)))
    assert __import__("torch").equal(state, __import__("torch").random.get_rng_state())


@pytest.mark.slow
def test_exact_counts_identical_reruns_and_manifest(study, data_root):
    out = step.run(study)
    assert len(out) == 9 and out.path.is_unique
    frame = mf.load("smoke")  # validates: every path and every source exists
    gen_train = frame[(frame.label_name == "generated") & (frame.split == "train")]
    assert len(gen_train) == 6 + 9
    assert set(out.aug_source) <= set(frame.path)
    first = {p: (data_root / p).read_bytes() for p in out.path}
    for p in out.path:
        (data_root / p).unlink()
    again = step.run(study)
    assert all((data_root / p).read_bytes() == first[p] for p in again.path)
    pd.testing.assert_frame_equal(out, again)
    drawn = step.drawn_parameters(frame)
    assert len(drawn) == 9 and drawn.aug_ops.str.len().min() > 0
    for params, ops in zip(out.aug_params, out.aug_ops):
        assert set(json.loads(params)) == {k for op in ops.split("+") for k in {
            "rotation": ["angle"], "noise": ["sigma"], "brightness_contrast": ["brightness", "contrast"],
            "color_jitter": ["saturation", "hue"]}[op]}


@pytest.mark.slow
def test_interrupted_run_finishes_without_duplicates(study, data_root, monkeypatch):
    calls = {"n": 0}
    real_apply = algorithm1.apply

    def dying_apply(*args):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt
        return real_apply(*args)

    monkeypatch.setattr(algorithm1, "apply", dying_apply)
    with pytest.raises(KeyboardInterrupt):
        step.run(study)
    made = sorted((data_root / "smoke/images/generated/train").glob("aug_*.jpg"))
    assert len(made) == 3
    monkeypatch.setattr(algorithm1, "apply", real_apply)
    step.run(study)
    made = sorted((data_root / "smoke/images/generated/train").glob("aug_*.jpg"))
    assert len(made) == 9 and not list((data_root / "smoke").rglob("*.tmp"))
    assert len(mf.load("smoke").query("source == 'augmented'")) == 9


@pytest.mark.slow
def test_the_control_balances_both_classes(study):
    with pytest.raises(algorithm1.AugmentError, match="--both-classes"):
        step.training_set(step.run(study).pipe(lambda _: mf.load("smoke")), study, control=True)
    step.run(study, both_classes=True)
    frame = mf.load("smoke")
    paper_way = step.training_set(frame, study)
    control = step.training_set(frame, study, control=True)
    assert (paper_way.label_name == "real").sum() == study.real_train
    assert not paper_way.source.eq("augmented-real").any()
    real = control[control.label_name == "real"]
    gen = control[control.label_name == "generated"]
    assert len(real) == study.real_train
    assert (real.source == "augmented-real").sum() == (gen.source == "augmented").sum() == 9


def test_changed_ranges_or_counts_are_refused(study):
    step.run(study)
    from helpers.core.stamps import StaleOutputError
    with pytest.raises(StaleOutputError, match="augment_count"):
        step.run(get_profile("smoke", dict(TINY, augment_count=5)))
