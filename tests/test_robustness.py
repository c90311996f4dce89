"""Chapter 6's robustness step with a stand-in classifier (CPU, offline): the table, resuming, errors, the figure.

The stand-in scores brightness, so dark "real" and bright "generated" test images are told apart
undegraded and the expected numbers are known. The real classifier is never built here.
"""

import dataclasses

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from helpers.__main__ import main
from helpers.book import ch6_robustness as ch6
from helpers.classify import classifier, robustness
from helpers.classify.classifier import EvaluateError, default_checkpoint
from helpers.classify.degrade import LEVELS
from helpers.core.profiles import get_profile
from helpers.data import manifest as mf

REQUIRED = ["degradation", "level", "acc_real", "acc_generated", "auc", "auc_low", "auc_high"]
N_ROWS = sum(len(v) for v in LEVELS.values())


class Brightness(torch.nn.Module):
    """A stand-in classifier: the logit of 'generated' is ``scale`` times the mean normalised pixel."""

    def __init__(self, scale: float = 5.0):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(scale))

    def forward(self, x):
        m = x.mean(dim=(1, 2, 3)) * self.scale
        return torch.stack([-m, m], dim=1)


@pytest.fixture
def study(data_root, monkeypatch):
    """3 dark real and 3 bright generated test images, a checkpoint where the trainer puts it, the
    stand-in loaded in place of the classifier, and few resamples (the interval's code is the same)."""
    profile = get_profile("smoke")
    rows = []
    for label, lo, hi in (("real", 20, 90), ("generated", 170, 240)):
        for i in range(3):
            rel = f"smoke/images/{label}/test/{label}_{i}.jpg"
            (data_root / rel).parent.mkdir(parents=True, exist_ok=True)
            rng = np.random.default_rng(len(rows))
            Image.fromarray(rng.integers(lo, hi, (64, 64, 3), dtype=np.uint8)).save(data_root / rel, quality=95)
            rows.append({"path": rel, "label": mf.LABELS[label], "label_name": label, "split": "test",
                         "source": "coco-val2017" if label == "real" else "sd2"})
    for label in ("real", "generated"):
        mf.write_part("smoke", label, pd.DataFrame([r for r in rows if r["label_name"] == label]))
    checkpoint = default_checkpoint(profile)
    checkpoint.parent.mkdir(parents=True)
    torch.save({"model": Brightness().state_dict()}, checkpoint)
    loads = []
    monkeypatch.setattr(classifier, "load_classifier", lambda p, c: loads.append(str(c)) or Brightness())
    monkeypatch.setattr(robustness, "N_BOOT", 50)
    return profile, loads


def _count_scores(monkeypatch) -> list:
    """Which (degradation, level) rows were scored."""
    scored, real = [], robustness.classifier_scorer

    def counting(*args, **kwargs):
        scorer = real(*args, **kwargs)
        return dataclasses.replace(scorer, score=lambda files, kind, level: scored.append((kind, level))
                                   or scorer.score(files, kind, level))
    monkeypatch.setattr(robustness, "classifier_scorer", counting)
    return scored


def test_one_row_per_degradation_and_level_with_the_required_columns(study):
    profile, _ = study
    table = robustness.run(profile)
    out = robustness.robustness_dir(profile) / "paper.csv"
    on_disk = pd.read_csv(out)
    assert list(on_disk.columns[:2]) == REQUIRED[:2] and set(REQUIRED) <= set(on_disk.columns)
    assert len(on_disk) == N_ROWS == len(table)
    assert list(zip(on_disk.degradation, on_disk.level)) == robustness.conditions()
    assert (on_disk.n_real == 3).all() and (on_disk.n_generated == 3).all()
    first = on_disk.iloc[0]  # JPEG 100: the stand-in tells them apart
    assert first.acc_real == 1 and first.acc_generated == 1 and first.auc == 1
    assert (on_disk.auc_low <= on_disk.auc + 1e-12).all() and (on_disk.auc <= on_disk.auc_high + 1e-12).all()
    assert (on_disk.acc_real_low < on_disk.acc_real + 1e-12).all()
    assert (out.with_suffix(".json")).exists()


def test_the_degradation_reaches_the_model(study, monkeypatch):
    """Strong noise moves the stand-in's scores: the degraded image, not the stored one, is scored."""
    profile, _ = study
    seen = {}
    real = robustness.predict_images

    def spy(model, files, *a, reformat=None, **k):
        seen[len(seen)] = np.asarray(reformat(Image.open(files[0]).convert("RGB")), dtype=float)
        return real(model, files, *a, reformat=reformat, **k)

    monkeypatch.setattr(robustness, "predict_images", spy)
    robustness.run(profile)
    clean, noisy = seen[N_ROWS - len(LEVELS["noise"])], seen[N_ROWS - 1]
    assert np.abs(clean - noisy).mean() > 10


def test_a_rerun_computes_only_the_missing_rows(study, monkeypatch):
    profile, loads = study
    first = robustness.run(profile)
    out = robustness.robustness_dir(profile) / "paper.csv"
    scored = _count_scores(monkeypatch)
    loads.clear()
    again = robustness.run(profile)
    assert scored == [] and loads == []  # a finished table needs no model
    pd.testing.assert_frame_equal(again, first)
    # a stop after 5 rows: the rerun scores the other rows only
    mf.write_csv(pd.read_csv(out).iloc[:5], out)
    robustness.run(profile)
    assert scored == robustness.conditions()[5:]
    pd.testing.assert_frame_equal(pd.read_csv(out).drop(columns="seconds"), first.drop(columns="seconds"))


def test_a_new_checkpoint_starts_afresh(study, monkeypatch, capsys):
    profile, _ = study
    robustness.run(profile)
    scored = _count_scores(monkeypatch)
    torch.save({"model": Brightness(4.0).state_dict()}, default_checkpoint(profile))  # retrained
    robustness.run(profile)
    assert len(scored) == N_ROWS and "computed from another checkpoint" in capsys.readouterr().out
    scored.clear()
    robustness.run(profile, force=True)
    assert len(scored) == N_ROWS


def test_bad_tables_and_missing_runs_say_what_to_do(study):
    profile, _ = study
    out = robustness.robustness_dir(profile) / "paper.csv"
    out.parent.mkdir(parents=True)
    out.write_text("degradation,level\njpeg,100\n")
    with pytest.raises(EvaluateError, match=r"paper.csv lacks the columns .*delete it"):
        robustness.run(profile)
    with pytest.raises(EvaluateError, match="train --profile smoke --robust-aug"):
        robustness.run(profile, robust=True)
    with pytest.raises(EvaluateError, match="without --model"):
        robustness.run(profile, "vgg16", robust=True)
    with pytest.raises(EvaluateError, match="robustness --profile smoke"):
        robustness.load_curves(profile, ["vgg16"])


def test_the_command_writes_the_table_and_names_a_missing_run(study, capsys):
    profile, _ = study
    assert main(["robustness", "--profile", "smoke"]) == 0
    text = capsys.readouterr().out
    assert "robustness paper:" in text and "$BOOK_RESULTS_ROOT/smoke/robustness/paper.csv" in text
    assert main(["robustness", "--profile", "smoke", "--robust-aug"]) == 1
    assert "--robust-aug" in capsys.readouterr().err


def test_the_figure_draws_one_line_per_model_and_the_papers_numbers(study):
    profile, _ = study
    robustness.run(profile)
    robust = robustness.robust_checkpoint(profile)
    robust.parent.mkdir(parents=True)
    torch.save({"model": Brightness(2.0).state_dict()}, robust)
    robustness.run(profile, robust=True)
    frame = ch6.curves(profile)
    assert set(frame.label) == {"ConvNeXt-XL (tiny-convnext)", "ConvNeXt-XL (tiny-convnext), blur+JPEG training"}
    fig = ch6.figure(profile)
    axes = fig.axes
    assert len(axes) == 12
    auc_jpeg = axes[8]  # row AUC, column JPEG
    labels = [line.get_label() for line in auc_jpeg.get_lines()]
    stars = [line for line in auc_jpeg.get_lines() if "paper" in line.get_label()]  # none for the robust run
    assert [s.get_label() for s in stars] == ["the paper's ConvNeXt-XL (Table 3, undegraded)"]
    assert stars[0].get_ydata()[0] == 1.0 and stars[0].get_xdata()[0] == 0
    acc_real = [line for line in axes[0].get_lines() if "paper" in line.get_label()]
    assert acc_real[0].get_ydata()[0] == 0.9987  # Table 3's accuracy (both classes)
    plt.close(fig)
    drops = ch6.drops(profile)
    assert len(drops) == 2 * 4 * 3
    row = drops[(drops.label == "ConvNeXt-XL (tiny-convnext)") & (drops.degradation == "jpeg")
                & (drops.metric == "auc")].iloc[0]
    assert row.undegraded == 100 and row.strongest_level == 30
    text = ch6.reading(profile)
    assert "- ConvNeXt-XL (tiny-convnext): ROC-AUC" in text and "blur + JPEG training gives" in text


def test_the_steps_score_each_chosen_run_the_robust_model_and_the_probe(study, monkeypatch):
    profile, _ = study
    trial = ch6.ch5_runs.Trial("vgg16", profile.train_img_size, 3e-4, profile.seed)
    monkeypatch.setattr(ch6.ch5_runs, "chosen_trials",
                        lambda p, key, size: [trial] if key == "vgg16" else [])  # the grid chose one rate
    assert ch6.steps(profile) == [("robustness", ()), ("robustness", trial.args(profile)),
                                  ("robustness", ("--robust-aug",)), ("robustness", ("--probe",))]
    assert ch6.model_label(profile, "vgg16-lr3e-4").startswith("VGG-16") and \
        ch6.model_label(profile, "vgg16-lr3e-4").endswith(", lr3e-4")
    assert ch6.run_key("vgg16-control") is None and ch6.run_key("robust") == "convnext"
    assert ch6.model_label(profile, "efficientnet-b0-lr3e-4").startswith("EfficientNet-B0")  # the slug's name
    assert ch6.model_label(profile, robustness.probe_name(profile)) == f"linear probe on {profile.probe_model}"


class FakeProbe:
    """The fitted probe's place: P(generated) is the image's mean brightness (PIL images in)."""

    def __init__(self, profile, device=None):
        FakeProbe.loaded += 1

    def predict(self, images, batch_size=16):
        FakeProbe.seen.append(np.asarray(images[0], dtype=float))
        return np.array([np.asarray(im, dtype=float).mean() / 255 for im in images])


def test_the_probe_gets_its_own_table_from_degraded_images(study, monkeypatch):
    profile, loads = study
    with pytest.raises(EvaluateError, match="fit the probe first"):
        robustness.run(profile, probe=True)
    with pytest.raises(EvaluateError, match="without --model"):
        robustness.run(profile, "vgg16", probe=True)
    path = robustness.probe_path(profile)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{}")
    FakeProbe.loaded, FakeProbe.seen = 0, []
    monkeypatch.setattr(robustness, "ProbeScorer", FakeProbe)
    table = robustness.run(profile, probe=True)
    out = robustness.robustness_dir(profile) / f"{robustness.probe_name(profile)}.csv"
    assert out.is_file() and len(table) == N_ROWS and loads == [] and FakeProbe.loaded == 1
    assert table.iloc[0].auc == 1.0 and table.iloc[0].acc_generated == 1.0  # bright = generated, undegraded
    clean, noisy = FakeProbe.seen[N_ROWS - len(LEVELS["noise"])], FakeProbe.seen[N_ROWS - 1]
    assert np.abs(clean - noisy).mean() > 10  # the probe scored the degraded pixels
    robustness.run(profile, probe=True)
    assert FakeProbe.loaded == 1  # a finished table loads no encoder


def test_a_row_holds_wilson_and_bca_intervals_around_its_numbers(monkeypatch):
    monkeypatch.setattr(robustness, "N_BOOT", 200)
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(40, int), np.ones(40, int)]
    p = np.clip(0.5 + (y - 0.5) * 0.3 + rng.normal(0, 0.25, 80), 0, 1)  # overlapping classes
    row = robustness.row_metrics(y, p, "blur", 2.0)
    from sklearn.metrics import roc_auc_score

    assert row["auc"] == pytest.approx(roc_auc_score(y, p))
    assert row["auc_low"] < row["auc"] < row["auc_high"] and row["auc_high"] - row["auc_low"] < 0.3
    assert row["acc_real"] == pytest.approx(np.mean(p[y == 0] < 0.5))
    assert row["acc_real_low"] < row["acc_real"] < row["acc_real_high"]
    assert row["acc_generated_low"] < row["acc_generated"] < row["acc_generated_high"]
    with pytest.raises(EvaluateError, match="one class only"):
        robustness.row_metrics(np.zeros(4, int), np.full(4, 0.2), "blur", 2.0)
