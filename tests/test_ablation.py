"""Chapter 5 (CPU, offline): the backbone switch, the ablation's tables, the transfer metrics."""

import argparse
import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn import metrics as skm
from test_evaluate import BAD, Brightness, _bad_and_good_folder, _cli, _noise, calls, study  # noqa: F401

from helpers import classify as ev  # the package's public names
from helpers.__main__ import main
from helpers.book import ch4_train as views
from helpers.book import ch5_ablation as ablation
from helpers.book import ch5_transfer as transfer
from helpers.classify import backbones, train
from helpers.classify.evaluation import evaluate
from helpers.classify.metrics import mcnemar, paired_bootstrap
from helpers.classify.models import STANDINS, build_model, count_flops
from helpers.classify.train import add_arguments, run_dir
from helpers.core.profiles import ProfileError, get_profile


# ---------------------------------------------------------------- the switch

@pytest.mark.parametrize("name", sorted(STANDINS))
@pytest.mark.parametrize("head, outputs", [("paper", 2), ("logit", 1)])
def test_every_standin_builds_runs_and_is_small(name, head, outputs):
    model = build_model(get_profile("smoke", {"train_model": name, "train_head": head}))
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, outputs)
    assert sum(p.numel() for p in model.parameters()) < 5e6
    assert count_flops(model, 64) > 0


def test_for_model_changes_only_the_backbone_and_its_size():
    smoke = get_profile("smoke")
    assert backbones.for_model(smoke) is smoke
    vgg = backbones.for_model(smoke, "vgg16")
    assert (vgg.train_model, vgg.train_img_size) == ("tiny-vgg", smoke.ablation_img_size)
    changed = {k for k, v in vgg.as_dict().items() if smoke.as_dict()[k] != v}
    assert changed == {"train_model"} | ({"train_img_size"} if smoke.train_img_size != smoke.ablation_img_size else set())
    paper = get_profile("paper")
    assert backbones.models(paper) == {"vgg16": "vgg16.tv_in1k", "resnet50": "resnet50.tv_in1k",
                                       "efficientnet_b0": "efficientnet_b0.ra_in1k",
                                       "convnext": "convnext_xlarge.fb_in22k_ft_in1k_384"}
    assert backbones.for_model(paper, "resnet50").train_img_size == 224
    assert [backbones.run_name(k) for k in backbones.KEYS] == ["paper", "vgg16", "resnet50", "efficientnet_b0"]
    assert backbones.run_name("vgg16", control=True) == "vgg16-control"
    with pytest.raises(ValueError, match="valid: convnext"):
        backbones.for_model(smoke, "alexnet")


@pytest.mark.parametrize("value", ["vgg16=a,resnet50=b", "vgg16=a,resnet50=b,efficientnet_b0=c,vit=d",
                                   "vgg16,resnet50=b,efficientnet_b0=c", "vgg16=a,vgg16=b,resnet50=c"])
def test_bad_ablation_models_are_refused(value):
    with pytest.raises(ProfileError, match="ablation_models"):
        get_profile("smoke", {"ablation_models": value})


def test_train_command_takes_the_model_switch():
    args = add_arguments(argparse.ArgumentParser()).parse_args(["--model", "efficientnet_b0", "--control"])
    assert (args.model, args.control) == ("efficientnet_b0", True)
    assert run_dir(get_profile("smoke"), True, "efficientnet_b0").name == "efficientnet_b0-control"
    with pytest.raises(SystemExit):
        add_arguments(argparse.ArgumentParser()).parse_args(["--model", "alexnet"])


# ---------------------------------------------------------------- paired statistics

def test_paired_bootstrap_and_mcnemar_on_a_known_case():
    a = np.array([True] * 90 + [False] * 10)
    b = np.array([True] * 80 + [False] * 20)
    boot = paired_bootstrap(a, b, n=2000, seed=1)
    assert boot["difference"] == pytest.approx(-0.10)
    assert boot["low"] < -0.10 < boot["high"] < 0  # ten discordant images, all favour A
    same = paired_bootstrap(a, a, n=200)
    assert same["difference"] == same["low"] == same["high"] == 0
    test = mcnemar(a, b)
    assert (test["a_only"], test["b_only"]) == (10, 0) and test["p_value"] == pytest.approx(2 * 0.5 ** 10)
    with pytest.raises(ValueError, match="paired"):
        paired_bootstrap(a, b[:5])


# ---------------------------------------------------------------- the ablation's tables

def _checkpoint(profile, key):
    path = ev.default_checkpoint(profile, key)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": Brightness().state_dict()}, path)


def test_table3_paired_tests_and_cost_read_the_runs(study, calls):
    assert ablation.table3(study).empty and ablation.paired_tests(study).empty
    for key in ("convnext", "vgg16"):
        _checkpoint(study, key)
        result = evaluate(study, model=key)
        assert result["name"] == f"{backbones.run_name(key)}-best_test"
        assert result["settings"]["train_model"] == backbones.for_model(study, key).train_model
    table = ablation.table3(study)
    assert list(table.index) == ["VGG-16", "ConvNeXt-XL"]
    assert table.loc["VGG-16", "accuracy (paper)"] == 0.9793 and table.loc["ConvNeXt-XL", "accuracy (ours)"] == 1.0
    assert table.loc["VGG-16", "model (ours)"] == "tiny-vgg"
    tests = ablation.paired_tests(study)
    row = tests.loc["VGG-16 vs ConvNeXt-XL"]
    assert row["images"] == 6 and row["accuracy difference (points)"] == 0 and row["McNemar p-value"] == 1.0
    # training cost: from metrics.csv, and the model's size counted once and cached
    folder = run_dir(study, model="vgg16")
    pd.DataFrame({"epoch": [1, 2], "val_loss": [0.7, 0.5], "seconds": [3.0, 5.0], "images_per_s": [10.0, 12.0],
                  "peak_memory_mb": [100.0, 120.0]}).to_csv(folder / "metrics.csv", index=False)
    cost = ablation.cost_table(study)
    assert list(cost.index) == ["VGG-16"]
    row = cost.loc["VGG-16"]
    assert (row["epochs run"], row["best epoch"], row["seconds per epoch (median)"]) == (2, 2, 4.0)
    assert row["peak memory (MiB)"] == 120.0 and 0.1 < row["parameters (M)"] < 1 and row["input (px)"] == 64
    size = json.loads((folder.parents[1] / "ablation" / "size_vgg16.json").read_text())
    assert size["model"] == "tiny-vgg"
    assert len(ablation.setup_table()) == 12
    speed = ablation.prediction_speed(study)
    assert set(speed.index) == {"paper-best_test", "vgg16-best_test"} and (speed["images"] == 6).all()
    assert (speed["images_per_s"] > 0).all() and set(speed["device"]) == {"cpu"}


# ---------------------------------------------------------------- transfer

def test_generated_only_folder_gives_accuracy_and_refuses_two_class_metrics(study, calls, tmp_path, capsys):
    folder = tmp_path / "dalle2"
    _bad_and_good_folder(folder)
    result = evaluate(study, images_dir=folder, label="generated")
    assert result["metrics"]["accuracy"] == result["metrics"]["accuracy_generated"] == 1.0
    with pytest.raises(ev.EvaluateError, match="only generated images.*--real test"):
        ev.two_class_metrics(result)
    assert _cli(["evaluate", "--images", str(folder), "--label", "generated"]) == 0
    out = capsys.readouterr().out
    assert "accuracy_generated" in out and "refused" in out and "--real test" in out
    with pytest.raises(ev.EvaluateError, match="labelled real already"):
        evaluate(study, images_dir=folder, label="real", real="test")


def test_matched_real_images_give_balanced_metrics_like_sklearn(study, calls, tmp_path):
    folder = tmp_path / "imagen"
    folder.mkdir()
    for i, (lo, hi) in enumerate([(150, 256), (160, 256), (0, 60), (170, 256)]):  # one dark: called real
        _noise(80, 80, lo, hi, seed=i).save(folder / f"im_{i}.png")
    both = evaluate(study, images_dir=folder, label="generated", real="test")
    assert both["name"] == "paper-best_imagen-real-test"
    pred = both["predictions"]
    assert (pred["label"] == 0).sum() == 3 and (pred["label"] == 1).sum() == 4
    got = ev.two_class_metrics(both)
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(pred["label"], pred["predicted"]))
    assert got["roc_auc"] == pytest.approx(skm.roc_auc_score(pred["label"], pred["p_generated"]))
    assert got["average_precision"] == pytest.approx(skm.average_precision_score(pred["label"], pred["p_generated"]))
    assert got["accuracy_generated"] == 0.75
    real_folder = tmp_path / "photos"
    real_folder.mkdir()
    _noise(80, 80, 0, 80).save(real_folder / "p.jpg")
    mixed = evaluate(study, images_dir=folder, label="generated", real=real_folder)
    assert mixed["name"] == "paper-best_imagen-real-photos" and mixed["metrics"]["n_real"] == 1


def test_category_breakdown_and_bad_category_files(study, calls, tmp_path):
    folder = tmp_path / "dalle2"
    folder.mkdir()
    for i, (lo, hi) in enumerate([(150, 256), (0, 60), (170, 256), (0, 50)]):
        _noise(80, 80, lo, hi, seed=i).save(folder / f"g_{i}.png")
    result = evaluate(study, images_dir=folder, label="generated")
    csv = tmp_path / "cats.csv"
    csv.write_text("file,category\n/any/where/g_0.png,photo\ng_1.png,artwork\ng_3.png,artwork\n")
    table = ev.category_table(result, csv)
    assert table.loc[("generated", "artwork"), "images"] == 2
    assert table.loc[("generated", "artwork"), "share called generated"] == 0
    assert table.loc[("generated", "photo"), "accuracy"] == 1
    assert table.loc[("generated", "(no category)"), "images"] == 1
    (tmp_path / "bad.csv").write_text("name,kind\na,b\n")
    with pytest.raises(ev.EvaluateError, match="bad.csv lacks the column"):
        ev.load_categories(tmp_path / "bad.csv")
    with pytest.raises(ev.EvaluateError, match="cannot read the categories file"):
        ev.load_categories(tmp_path / "missing.csv")
    (tmp_path / "other.csv").write_text("file,category\nx.png,photo\n")
    with pytest.raises(ev.EvaluateError, match="no image of"):
        ev.category_table(result, tmp_path / "other.csv")
    assert _cli(["evaluate", "--images", str(folder), "--label", "generated",
                           "--categories", str(csv)]) == 0
    assert (result["dir"] / "categories.csv").exists()


def test_transfer_summary_reads_both_evaluations(study, calls, tmp_path):
    folder = tmp_path / "dalle"
    folder.mkdir()
    for i in range(3):
        _noise(80, 80, 0 if i else 150, 60 if i else 256, seed=i).save(folder / f"d_{i}.png")
    profile = get_profile("smoke", {"dalle2_dir": str(folder), "imagen_dir": ""})
    assert transfer.summary(profile).empty and transfer.headline(profile)["generator"] == "no generator folder"
    assert list(transfer.generators(profile)) == ["DALL-E 2"]
    evaluate(profile, images_dir=folder, label="generated")
    row = transfer.summary(profile).loc["DALL-E 2"]
    assert row["accuracy on generated (ours)"] == pytest.approx(1 / 3) and row["accuracy on generated (paper)"] == 0.0474
    assert row["balanced accuracy (ours)"] is None or np.isnan(row["balanced accuracy (ours)"])
    head = transfer.headline(profile)
    assert "only generated images" in head["refusal"] and (head["ours"], head["paper"]) == ("33.33%", "4.74%")
    evaluate(profile, images_dir=folder, label="generated", real="test")
    row = transfer.summary(profile).loc["DALL-E 2"]
    assert row["real test photographs added"] == 3 and 0 <= row["ROC-AUC (ours)"] <= 1
    fig = transfer.false_negative_figure(profile, "Imagen")  # not run: a note, not an error
    assert fig is not None


def test_python_m_helpers_train_passes_the_model_on(monkeypatch):
    seen = {}
    monkeypatch.setattr(train, "run", lambda profile, **kw: seen.update(kw))
    assert main(["train", "--profile", "smoke", "--model", "resnet50"]) == 0
    assert seen["model"] == "resnet50" and seen["control"] is False


def test_false_negative_grid_falls_back_to_the_nearest_images(study, calls, tmp_path):
    folder = tmp_path / "bright"
    folder.mkdir()
    for i in range(3):
        _noise(80, 80, 150 + 20 * i, 256, seed=i).save(folder / f"b_{i}.png")
    result = evaluate(study, images_dir=folder, label="generated")
    assert (result["predictions"]["predicted"] == 1).all()
    plain = views.false_negative_grid(result)
    assert "no false negatives" in " ".join(t.get_text() for ax in plain.axes for t in ax.texts)
    near = views.false_negative_grid(result, n=2, closest=True)
    assert "nearest" in near._suptitle.get_text()
    shown = [ax.get_title() for ax in near.axes if ax.get_title()]
    lowest = result["predictions"]["p_generated"].nsmallest(2)
    assert len(shown) == 2 and all(f"{p:.3f}" in t for p, t in zip(lowest, shown))


# ---------------------------------------------------------------- optional inputs absent (course)

def test_chapter5_runs_with_no_other_generators_folder(data_root, capsys):
    """The course default has no DALL-E 2 or Imagen folder: the chapter says what is missing and how
    to add it, evaluates nothing for them, and its predict example reads our own test images."""
    course = get_profile("course")
    folders = transfer.prepare(course)
    out = capsys.readouterr().out
    assert folders == {} and transfer.evaluations(course, folders) == []
    assert "no DALL-E 2 folder given" in out and "--set imagen_dir=" in out
    target = transfer.predict_target(course, folders)
    assert target.parts[-4:] == ("course", "images", "generated", "test")
    assert transfer.summary(course).empty and transfer.headline(course)["ours"] == "not measured"


def test_chapter5_notebook_never_assumes_a_folder():
    nb = json.loads((Path(__file__).resolve().parents[1] / "notebooks" / "05_ablation_and_transfer.ipynb").read_text())
    code = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    assert "next(iter(" not in code and "transfer.predict_target(P, folders)" in code
