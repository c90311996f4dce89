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
from helpers.book import ch5_runs as runs
from helpers.book import hyperparameters, pipeline
from helpers.book import results_tables as rp
from helpers.classify import classifier
from helpers.classify.evaluate import trial_run
from helpers.classify.loaders import build_loaders
from helpers.classify.transform import model_input
from helpers.core.distributed import World
from helpers.core.profiles import ProfileError, get_profile, lr_grid
from helpers.core.stats import holm, wilson_interval


# ---------------------------------------------------------------- the switch

@pytest.mark.parametrize("name", sorted(STANDINS))
@pytest.mark.parametrize("head, outputs", [("paper", 2), ("logit", 1)])
def test_every_standin_builds_runs_and_is_small(name, head, outputs):
    model = build_model(get_profile("smoke", {"train_model": name, "train_head": head}))
    assert model(torch.zeros(2, 3, 64, 64)).shape == (2, outputs)
    assert sum(p.numel() for p in model.parameters()) < 5e6
    assert count_flops(model, 64) > 0


def test_for_model_changes_only_the_backbone_and_the_runs_own_settings():
    smoke = get_profile("smoke")
    assert backbones.for_model(smoke) is smoke
    vgg = backbones.for_model(smoke, "vgg16")
    assert (vgg.train_model, vgg.train_img_size) == ("tiny-vgg", smoke.train_img_size)  # one size for all four
    assert {k for k, v in vgg.as_dict().items() if smoke.as_dict()[k] != v} == {"train_model"}
    run = backbones.for_model(smoke, "vgg16", img_size=48, lr=3e-4, seed=7)
    assert (run.train_img_size, run.train_lr, run.seed) == (48, 3e-4, 7)
    assert backbones.for_model(smoke, img_size=smoke.train_img_size, lr=smoke.train_lr, seed=smoke.seed) is smoke
    paper = get_profile("paper")
    assert backbones.models(paper) == {"vgg16": "vgg16.tv_in1k", "resnet50": "resnet50.tv_in1k",
                                       "efficientnet_b0": "efficientnet_b0.ra_in1k",
                                       "convnext": "convnext_xlarge.fb_in22k_ft_in1k_384"}
    assert {backbones.for_model(paper, k).train_img_size for k in backbones.KEYS} == {384}
    assert [backbones.run_name(k) for k in backbones.KEYS] == ["paper", "vgg16", "resnet50", "efficientnet_b0"]
    assert backbones.run_name("vgg16", control=True) == "vgg16-control"
    with pytest.raises(ValueError, match="valid: convnext"):
        backbones.for_model(smoke, "alexnet")


def test_a_run_with_other_settings_has_them_in_its_folder_and_its_command():
    smoke = get_profile("smoke")
    assert run_dir(smoke, model="vgg16", img_size=48, lr=3e-4, seed=2025).name == "vgg16-48px-lr3e-4-seed2025"
    assert run_dir(smoke, model="vgg16", img_size=smoke.train_img_size, lr=smoke.train_lr).name == "vgg16"
    assert run_dir(smoke, model="convnext", lr=smoke.train_lr, seed=smoke.seed).name == "paper"  # Chapter 4's
    assert run_dir(smoke, model="convnext", seed=2025).name == "paper-seed2025"
    assert backbones.trial_args(smoke, "resnet50", lr=3e-4, seed=smoke.seed) == ("--model", "resnet50", "--lr", "3e-4")
    for lr in (3e-5, 1e-4, 2.5e-4, 0.001):
        assert float(backbones.lr_text(lr)) == lr
    assert backbones.lr_text(2.5e-4) == "2.5e-4"
    args = add_arguments(argparse.ArgumentParser()).parse_args(["--lr", "3e-4", "--seed", "3", "--img-size", "48"])
    assert train.trial_options(args) == {"img_size": 48, "lr": 3e-4, "seed": 3}
    with pytest.raises(ValueError, match="train_lr must be positive"):
        backbones.for_model(smoke, lr=-1.0)


@pytest.mark.parametrize("setting, value", [("ablation_lr_grid", "1e-4,1e-4"), ("ablation_lr_grid", "fast"),
                                            ("ablation_lr_grid", "0,1e-4"), ("ablation_lr_grid", "nan"),
                                            ("ablation_variant_size", -1), ("ablation_seeds", 0)])
def test_bad_grid_seeds_and_variant_are_refused(setting, value):
    with pytest.raises(ProfileError, match=setting):
        get_profile("smoke", {setting: value})
    assert lr_grid("3e-4, 1e-4") == [1e-4, 3e-4]


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

def _metrics_csv(folder, val_losses, epochs_per_run=None):
    """A run's metrics.csv with these validation losses (one row per epoch)."""
    folder.mkdir(parents=True, exist_ok=True)
    n = len(val_losses)
    pd.DataFrame({"epoch": range(1, n + 1), "val_loss": val_losses, "seconds": [3.0 + i for i in range(n)],
                  "images_per_s": [10.0] * n, "peak_memory_mb": [100.0 + i for i in range(n)]}
                 ).to_csv(folder / "metrics.csv", index=False)


def _finish_grid(profile, losses: dict):
    """Every grid run finished (all epochs), its best validation loss from ``losses[key][lr]``."""
    for key in backbones.KEYS:
        for trial in runs.grid(profile, key):
            best = losses.get(key, {}).get(trial.lr, 0.5)
            _metrics_csv(trial.folder(profile), [best + 0.2] * (profile.train_epochs - 1) + [best])


def test_the_grid_chooses_on_validation_loss_and_ties_go_to_the_smaller_rate(data_root):
    profile = get_profile("smoke", {"ablation_lr_grid": "1e-4,3e-4,1e-3", "ablation_seeds": 2})
    assert runs.seed_steps(profile) == [] and runs.choose(profile)["backbones"]["vgg16"]["chosen_lr"] is None
    assert len(runs.grid_steps(profile)) == 12 and ("train", ("--model", "convnext")) in runs.grid_steps(profile)
    _finish_grid(profile, {"vgg16": {1e-4: 0.3, 3e-4: 0.2, 1e-3: 0.4}, "resnet50": {3e-4: 0.1, 1e-3: 0.1}})
    unfinished = runs.grid(profile, "efficientnet_b0")[0].folder(profile)
    _metrics_csv(unfinished, [0.5, 0.4])  # 2 of 3 epochs, still improving: not over
    choice = runs.choose(profile)["backbones"]
    assert choice["vgg16"]["chosen_lr"] == 3e-4 and choice["resnet50"]["chosen_lr"] == 3e-4  # tie: smaller
    assert choice["convnext"]["chosen_lr"] == 1e-4 and choice["efficientnet_b0"]["chosen_lr"] is None
    _metrics_csv(unfinished, [0.5, 0.6, 0.7][: profile.train_patience + 1])  # stopped early: over
    steps = runs.seed_steps(profile)
    saved = json.loads(runs.choice_path(profile).read_text())
    assert saved["backbones"]["efficientnet_b0"]["chosen_lr"] == 1e-4 and "validation loss" in saved["criterion"]
    assert ("train", ("--model", "vgg16", "--lr", "3e-4")) not in steps  # the grid's run is seed 1
    assert ("evaluate", ("--model", "vgg16", "--lr", "3e-4")) in steps
    assert ("train", ("--model", "vgg16", "--lr", "3e-4", "--seed", "2025")) in steps
    variant = ("--model", "vgg16", "--img-size", "48", "--lr", "3e-4")
    assert ("train", variant) in steps and ("evaluate", variant + ("--seed", "2025")) in steps
    assert len(steps) == 4 * (1 + 2) + 4 * 2 * 2  # seeds at 64 px (train 1, evaluate 2), at 48 (both)
    assert runs.count_runs(profile) == {"grid": 12, "more seeds": 4, "variant size": 8, "shared with Chapter 4": 1,
                                        "new trainings": 23}  # smoke's train_lr is in the grid
    table = ablation.grid_table(profile)
    assert table.loc[("VGG-16", "3e-4"), "chosen"] and not table.loc[("VGG-16", "1e-4"), "chosen"]
    assert table.loc[("VGG-16", "3e-4"), "best validation loss"] == pytest.approx(0.2)


def test_make_run_lists_the_seeds_once_the_grid_has_run(data_root, monkeypatch):
    monkeypatch.setattr("helpers.book.ch5_transfer.prepare", lambda p: {})
    profile = get_profile("smoke")
    grid = [(5, "train", args) for _, args in runs.grid_steps(profile)]
    before = [(s.chapter, s.command, s.args) for s in pipeline.steps(profile)]
    assert before[before.index(grid[0]):][:len(grid)] == grid
    assert not [c for c in before if c[0] == 5 and "--lr" in c[2] and c[1] == "evaluate"]  # nothing chosen yet
    listed, steps = [], pipeline.steps(profile)
    for step in steps:
        listed.append((step.chapter, step.command, step.args))
        if listed[-len(grid):] == grid:
            break
    _finish_grid(profile, {})  # the grid runs; then the generator lists the seeds of its choice
    rest = [(s.chapter, s.command, s.args) for s in steps]
    assert rest[0] == (5, "evaluate", ("--model", "convnext", "--lr", "3e-4"))  # all tied: the smaller rate
    assert (5, "train", ("--model", "vgg16", "--img-size", "48", "--lr", "3e-4")) in rest
    assert [c for c in rest if c[0] == 5][-1][1] == "predict"
    assert (6, "robustness", ("--model", "vgg16", "--lr", "3e-4")) in rest  # the chosen run's curves


def _scored_by_seed(monkeypatch):
    """The stand-in classifier, right on every image, except the run of seed 2025: wrong on every one."""
    def fake(profile, checkpoint):
        return Brightness(2, scale=-5.0 if "seed2025" in str(checkpoint) else 5.0)

    monkeypatch.setattr(classifier, "load_classifier", fake)


def test_table3_reports_seeds_intervals_and_holm_corrected_tests(study, monkeypatch):
    monkeypatch.setenv("BOOK_SET", "ablation_seeds=2 ablation_variant_size=0")
    profile = get_profile("smoke")
    _scored_by_seed(monkeypatch)
    assert ablation.table3(profile).empty and ablation.paired_tests(profile).empty
    _finish_grid(profile, {})
    for command, args in runs.seed_steps(profile):
        if command == "train":  # a trained run: its metrics and a checkpoint
            folder = run_dir(profile, model=args[1], **_options(args))
            _metrics_csv(folder, [0.3, 0.2, 0.1])
        else:
            folder = run_dir(profile, model=args[1], **_options(args))
        torch.save({"model": Brightness().state_dict()}, folder / "best.pt")
        if command == "evaluate":
            assert _cli([command, *args]) == 0
    table = ablation.table3(profile)
    assert list(table.index) == ["VGG-16", "ResNet-50", "EfficientNet-B0", "ConvNeXt-XL"]
    row = table.loc["VGG-16"]
    assert row["seeds"] == "2 of 2" and row["input (px)"] == 64 and row["learning rate (chosen)"] == 3e-4
    assert row["accuracy (ours)"] == 0.5 and row["accuracy sd"] == pytest.approx(np.sqrt(0.5), abs=1e-4)
    assert row["accuracy per seed"] == "1.0000, 0.0000" and row["accuracy (paper)"] == 0.9793
    assert "ROC-AUC 95% interval (BCa, by class)" in table and row["ROC-AUC (ours)"] == 0.5
    seeds = ablation.seed_table(profile)
    first = seeds.loc[("VGG-16", 2024)]
    low, high = wilson_interval(6, 6)
    assert first["accuracy 95% interval (Wilson)"] == f"{low:.4f} .. {high:.4f}" and high == 1 and low < 1
    assert seeds.loc[("VGG-16", 2025), "accuracy"] == 0 and first["run folder"] == "train/vgg16-lr3e-4"
    tests = ablation.paired_tests(profile)
    assert list(tests.index.get_level_values("metric").unique()) == ["accuracy", "ROC-AUC"]
    assert len(tests) == 6 and (tests["difference (points)"] == 0).all()  # the same scores for every backbone
    assert tests["Holm-adjusted p"].tolist() == pytest.approx(holm(tests["p-value (paired permutation)"]))
    assert not tests["real at 5% (Holm)"].any()
    cost = ablation.cost_table(profile)
    assert cost.loc[("VGG-16", 64), "epochs run"] == 3 and cost.loc[("VGG-16", 64), "model (ours)"] == "tiny-vgg"
    page = rp.table3(profile)
    vgg = page[page["quantity"] == "VGG-16: accuracy"].iloc[0]
    assert vgg["ours"] == 0.5 and "mean over 2 of 2 seeds, 64 px" in vgg["note"]
    hyper = hyperparameters.hyperparameter_table(profile)
    assert "VGG-16 3e-4" in hyper.loc["learning rate chosen per backbone", "smoke"]
    assert hyper.loc["seeds per backbone, Chapter 5", "smoke"] == "2 (2024, 2025)"
    speed = ablation.prediction_speed(profile)
    assert "vgg16-lr3e-4-seed2025-best_test" in speed.index and set(speed["device"]) == {"cpu"}
    assert len(ablation.setup_table()) == 12


def _options(args) -> dict:
    """``--img-size``/``--lr``/``--seed`` of a step's arguments, as ``run_dir`` takes them."""
    flags = dict(zip(args[2::2], args[3::2]))
    return {"img_size": int(flags["--img-size"]) if "--img-size" in flags else None,
            "lr": float(flags["--lr"]) if "--lr" in flags else None,
            "seed": int(flags["--seed"]) if "--seed" in flags else None}


def test_every_backbone_is_fed_the_same_input_in_training_and_evaluation(data_root):
    """One transform: the training loader's and evaluation's for each backbone, at the run's size."""
    smoke = get_profile("smoke")
    world = World(rank=0, size=1, local_rank=0, device=torch.device("cpu"))
    rows = pd.DataFrame({"path": ["x.jpg"], "label": [1]})
    for key in backbones.KEYS:
        for size in runs.sizes(smoke):
            trained = backbones.for_model(smoke, key, img_size=size)
            model = build_model(trained, pretrained="none")
            loader = build_loaders(trained, world, model, rows, rows)[0]
            args = argparse.Namespace(model=key, checkpoint="x.pt", img_size=size, lr=None, seed=None)
            _, evaluated = trial_run(args, smoke)
            shown = model_input(model, backbones.for_model(evaluated, key).train_img_size)
            assert loader.dataset.transform == shown and shown.size == size


def test_the_hyperparameter_table_states_every_choice_and_its_source():
    table = hyperparameters.hyperparameter_table()
    for row in ("optimizer", "learning rate, Chapter 4's model", "learning rates tried, Chapter 5",
                "learning rate chosen per backbone", "global batch", "micro-batch per process", "epochs, at most",
                "early stopping", "learning-rate schedule", "weight decay", "precision", "input size (px)",
                "augmentation"):
        assert row in table.index and table.loc[row, "where it comes from"]
    assert table.loc["learning rate, Chapter 4's model", "paper"] == "1e-4"
    assert table.loc["learning rates tried, Chapter 5", "course"] == "3e-5, 1e-4, 3e-4"
    assert table.loc["global batch", "paper"] == "4" and "10 epochs" in table.loc["early stopping", "paper"]
    assert table.loc["input size (px)", "paper"] == "384 for every backbone; variant 224"
    assert set(table.columns) == {"smoke", "course", "paper", "where it comes from"}


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
