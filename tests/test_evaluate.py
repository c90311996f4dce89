"""Evaluation with a stand-in classifier (CPU, offline): bad inputs, re-encoding, files, figures, commands.

The stand-in scores brightness, so bright "generated" and dark "real" test images are told apart
and the expected metrics are known. The real classifier (helpers.classify.models) is never built here.
"""

import io
import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from helpers import classify as ev  # the package's public names
from helpers.__main__ import main
from helpers.book import ch4_train as views
from helpers.classify import classifier
from helpers.classify.evaluation import evaluate
from helpers.classify.transform import model_input
from helpers.core.checkpoints import CheckpointError
from helpers.core.paths import results_root
from helpers.core.profiles import get_profile
from helpers.data import manifest as mf


class Brightness(torch.nn.Module):
    """A stand-in classifier: the logit of 'generated' is ``scale`` times the mean normalised pixel."""

    def __init__(self, outputs: int = 2, scale: float = 5.0):
        super().__init__()
        self.outputs = outputs
        self.scale = torch.nn.Parameter(torch.tensor(scale))
        self.mix = torch.nn.Conv2d(3, 3, 1)  # weights to save and load, never used for the score

    def forward(self, x):
        m = x.mean(dim=(1, 2, 3)) * self.scale
        return torch.stack([-m, m], dim=1) if self.outputs == 2 else m[:, None]


def _noise(w, h, lo, hi, seed=0):
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(lo, hi, (h, w, 3), dtype=np.uint8))


def _bad_and_good_folder(folder):
    """Every kind of input a folder may hold: four bad files, four odd but good ones."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "zero.jpg").write_bytes(b"")
    buf = io.BytesIO()
    _noise(200, 200, 0, 256).save(buf, format="JPEG")
    (folder / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (folder / "text.jpg").write_text("this is not a picture")
    Image.new("RGB", (1, 1)).save(folder / "tiny.png")
    _noise(64, 64, 150, 256).convert("L").save(folder / "gray.png")
    Image.new("RGB", (64, 64), (220, 200, 210)).convert("CMYK").save(folder / "cmyk.jpg", quality=95)
    Image.fromarray(np.full((64, 64), 60000, dtype=np.uint16)).save(folder / "deep16.png")
    rgba = Image.new("RGBA", (64, 64), (250, 250, 200, 255))
    rgba.paste((0, 0, 0, 0), (0, 0, 32, 64))
    rgba.convert("P", palette=Image.Palette.ADAPTIVE).save(folder / "palette_alpha.png", transparency=0)
    return {"zero.jpg": "zero-byte", "truncated.jpg": "truncated or corrupt", "text.jpg": "not an image",
            "tiny.png": "too small: 1x1"}


BAD = {"zero.jpg", "truncated.jpg", "text.jpg", "tiny.png"}


@pytest.fixture
def calls(monkeypatch):
    """The stand-in replaces load_classifier; ``calls`` counts how often a model was loaded."""
    count = []

    def fake(profile, checkpoint):
        count.append(str(checkpoint))
        return Brightness(2 if profile.train_head == "paper" else 1)

    monkeypatch.setattr(classifier, "load_classifier", fake)
    return count


@pytest.fixture
def study(data_root, tmp_path):
    """A tiny smoke manifest: 3 dark real and 3 bright generated test images (one augmented copy
    too, which evaluation must leave out), and a checkpoint file where the trainer puts it."""
    profile = get_profile("smoke")
    rows = []
    for label, lo, hi in (("real", 0, 90), ("generated", 160, 256)):
        for i in range(3):
            rel = f"smoke/images/{label}/test/{label}_{i}.jpg"
            (data_root / rel).parent.mkdir(parents=True, exist_ok=True)
            _noise(96, 96, lo, hi, seed=i).save(data_root / rel, quality=95)
            rows.append({"path": rel, "label": mf.LABELS[label], "label_name": label, "split": "test",
                         "source": "coco-val2017" if label == "real" else "sd2"})
    aug = "smoke/images/generated/test/augmented_0.jpg"
    _noise(96, 96, 0, 40).save(data_root / aug)  # dark: it would be a false negative if counted
    rows.append({"path": aug, "label": 1, "label_name": "generated", "split": "test", "source": "augmented"})
    mf.write_part("smoke", "real", pd.DataFrame([r for r in rows if r["label"] == 0]))
    mf.write_part("smoke", "generated", pd.DataFrame([r for r in rows if r["label"] == 1]))
    checkpoint = ev.default_checkpoint(profile)
    checkpoint.parent.mkdir(parents=True)
    torch.save({"model": Brightness().state_dict()}, checkpoint)
    return profile


# -- prediction ---------------------------------------------------------------------------------

def test_predict_lists_bad_inputs_and_scores_the_good_ones(tmp_path):
    expected = _bad_and_good_folder(tmp_path / "in")
    paths = sorted((tmp_path / "in").iterdir())
    skipped = {}
    probs = ev.predict_images(Brightness(), paths, 32, "paper", "cpu", batch_size=3, skipped=skipped)
    assert probs.shape == (len(paths),)
    reasons = {p.name: r for p, r in skipped.items()}
    assert set(reasons) == BAD
    for name, why in expected.items():
        assert why in reasons[name]
    for p, prob in zip(paths, probs):
        assert np.isnan(prob) == (p.name in BAD)
        if p.name not in BAD:
            assert 0.5 < prob <= 1  # all four good images are bright (palette: transparent -> white)


def test_heads_read_the_right_output():
    imgs = [_noise(40, 40, 200, 256), _noise(40, 40, 0, 50)]
    to_input = model_input(Brightness(), 32)
    x = torch.stack([to_input(i) for i in imgs])
    assert x.shape == (2, 3, 32, 32)
    paper = ev.probabilities(Brightness(2)(x), "paper")
    logit = ev.probabilities(Brightness(1)(x), "logit")
    assert torch.allclose(paper, logit) and paper[0] > 0.9 and paper[1] < 0.1
    with pytest.raises(ev.EvaluateError, match="train_head"):
        ev.probabilities(Brightness(1)(x), "paper")
    with pytest.raises(ev.EvaluateError, match="train_head"):
        ev.probabilities(Brightness(2)(x), "logit")


def test_a_plain_module_gets_timms_default_input():
    """A model without a timm configuration (the stand-in) gets timm's defaults: bicubic, ImageNet."""
    to_input = model_input(Brightness(), 48)
    assert (to_input.size, to_input.interpolation) == (48, "bicubic")
    x = to_input(Image.new("RGB", (120, 60), (255, 255, 255)))
    assert x.shape == (3, 48, 48)
    assert torch.allclose(x[:, 0, 0], (1 - torch.tensor(to_input.mean)) / torch.tensor(to_input.std))


@pytest.mark.parametrize("spec", ["jpeg:50", ("jpeg", 95), "resize:40", ("resize", 64)])
def test_reencoding_changes_the_pixels_but_keeps_the_size(spec):
    img = _noise(128, 96, 0, 256)
    out = ev.reencode_image(img, spec)
    assert out.size == img.size and out.mode == "RGB"
    assert out.tobytes() != img.tobytes()


@pytest.mark.parametrize("spec,match", [("jpeg", "jpeg:QUALITY"), ("jpeg:0", "1..100"), ("resize:4", "at least 8"),
                                        ("blur:3", "'jpeg' or 'resize'"), ("jpeg:high", "whole number")])
def test_bad_reencode_specs_are_refused(spec, match):
    with pytest.raises(ev.EvaluateError, match=match):
        ev.parse_reencode(spec)


def test_common_format_is_the_data_steps():
    out = ev.common_format(_noise(300, 200, 0, 256), get_profile("smoke"))
    assert out.size == (384, 384) and out.mode == "RGB"


def test_eval_names():
    assert ev.eval_name("results/smoke/train/paper/best.pt", "test") == "paper-best_test"
    assert ev.eval_name("/x/train/lr3/last.pt", "DALL-E 2", "jpeg:75") == "lr3-last_dall-e-2_jpeg75"
    assert ev.eval_name("/x/train/paper/best.pt", "test", ("resize", 256)) == "paper-best_test_resize256"


# -- evaluation files ---------------------------------------------------------------------------

def test_evaluate_writes_predictions_and_metrics_and_reuses_them(study, calls, capsys):
    result = evaluate(study, batch_size=4)
    assert result["name"] == "paper-best_test" and not result["reused"]
    folder = result["dir"]
    pred = pd.read_csv(folder / "predictions.csv")
    assert list(pred.columns) == ["path", "label", "p_generated", "predicted"]
    assert len(pred) == 6 and not pred["path"].str.contains("augmented").any()
    assert (pred["predicted"] == pred["label"]).all()
    saved = json.loads((folder / "metrics.json").read_text())
    m = saved["metrics"]
    assert m["accuracy"] == 1.0 and m["roc_auc"] == 1.0 and (m["n_real"], m["n_generated"]) == (3, 3)
    assert m["note"] is None and saved["skipped"] == []
    assert saved["accuracy_ci95"]["low"] <= 1.0 == saved["accuracy_ci95"]["high"]
    assert saved["settings"]["train_head"] == "paper" and saved["settings"]["reencode"] is None
    assert len(calls) == 1
    # a rerun reads the files back without loading the model
    capsys.readouterr()
    again = evaluate(study)
    assert again["reused"] and len(calls) == 1 and again["metrics"] == result["metrics"]
    said = capsys.readouterr().out  # printed inside a chapter's kernel: the book's roots, no absolute path
    assert "$BOOK_RESULTS_ROOT/smoke/eval/paper-best_test" in said and str(folder) not in said
    pd.testing.assert_frame_equal(again["predictions"], result["predictions"], check_dtype=False)
    # a re-encoding is another evaluation beside it; a new checkpoint file is evaluated again
    jpeg = evaluate(study, reencode="jpeg:50")
    assert jpeg["name"] == "paper-best_test_jpeg50" and (jpeg["dir"] / "metrics.json").exists()
    assert len(calls) == 2
    torch.save({"model": Brightness(scale=4.0).state_dict()}, ev.default_checkpoint(study))
    assert not evaluate(study)["reused"] and len(calls) == 3
    assert ev.load_result(study, "paper-best_test")["metrics"]["accuracy"] == 1.0


def test_results_of_another_input_transform_are_predicted_again(study, calls):
    """An evaluation saved before the one model-input transform (its settings do not name it) was
    made with a fixed bilinear resize: it is predicted again, not read back."""
    first = evaluate(study)
    path = first["dir"] / "metrics.json"
    saved = json.loads(path.read_text())
    del saved["settings"]["model_input"]
    path.write_text(json.dumps(saved))
    again = evaluate(study)
    assert not again["reused"] and len(calls) == 2
    assert json.loads(path.read_text())["settings"]["model_input"] == first["settings"]["model_input"]


def test_a_folder_of_generated_images_only(study, calls, tmp_path):
    folder = tmp_path / "dalle2"
    _bad_and_good_folder(folder)
    result = evaluate(study, images_dir=folder, label="generated")
    assert result["name"] == "paper-best_dalle2"
    m = result["metrics"]
    assert m["n_generated"] == 4 and m["n_real"] == 0
    assert m["accuracy"] == m["accuracy_generated"] == 1.0
    assert m["balanced_accuracy"] is None and m["roc_auc"] is None and m["average_precision"] is None
    assert "need both classes" in m["note"]
    assert {s["file"].rsplit("/", 1)[-1] for s in result["skipped"]} == BAD
    saved = json.loads((result["dir"] / "metrics.json").read_text())
    assert saved["metrics"]["note"] == m["note"] and len(saved["skipped"]) == 4
    assert saved["settings"]["common_format"]["image_size"] == 384
    pred = pd.read_csv(result["dir"] / "predictions.csv")
    assert len(pred) == 4 and set(pred["label"]) == {1}


def test_labels_and_folders_are_checked(study, calls, tmp_path):
    with pytest.raises(ev.EvaluateError, match="--label generated or --label real"):
        evaluate(study, images_dir=tmp_path)
    with pytest.raises(ev.EvaluateError, match="go with --images"):
        evaluate(study, label="real")
    with pytest.raises(ev.EvaluateError, match="not a folder"):
        evaluate(study, images_dir=tmp_path / "nope", label="real")
    with pytest.raises(ev.EvaluateError, match="python -m helpers train"):
        evaluate(study, checkpoint=tmp_path / "missing.pt")
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.jpg").write_text("no")
    with pytest.raises(ev.EvaluateError, match="could be read"):
        evaluate(study, images_dir=tmp_path / "junk", label="real")


def test_shortcut_table(study, calls):
    table = views.shortcut_table(study, qualities=(95, 50), sides=(48,))
    assert list(table.index) == ["unchanged", "JPEG q95", "JPEG q50", "resized to 48 px and back"]
    assert {"accuracy", "roc_auc", "accuracy change (points)", "mean |change of P|"} <= set(table.columns)
    assert table.loc["unchanged", "accuracy change (points)"] == 0
    assert table.loc["unchanged", "mean |change of P|"] == 0
    assert (table["images"] == 6).all()
    assert len(calls) == 1  # one model for every condition
    assert (results_root("smoke") / "eval" / "paper-best_test_resize48" / "metrics.json").exists()


def test_figures(study, calls, tmp_path):
    test = evaluate(study)
    folder = tmp_path / "imagen"
    _bad_and_good_folder(folder)
    only_gen = evaluate(study, images_dir=folder, label="generated")
    # make one false negative: a generated image called real
    flipped = dict(test, predictions=test["predictions"].assign(
        predicted=lambda d: np.where(d.index == 3, 0, d.predicted),
        p_generated=lambda d: np.where(d.index == 3, 0.2, d.p_generated)))
    figs = [views.confusion_figure(test), views.confusion_figure(only_gen),
            views.roc_figure({"test": test, "Imagen": only_gen}), views.roc_figure([test]),
            views.prediction_grid(test, n=4), views.prediction_grid(only_gen, n=3),
            views.false_negative_grid(test), views.false_negative_grid(flipped, n=2)]
    for fig in figs:
        assert isinstance(fig, matplotlib.figure.Figure)
    legend = [t.get_text() for t in figs[2].axes[0].get_legend().get_texts()]
    assert any("AUC 1.0000" in t for t in legend) and any("one class only" in t for t in legend)
    assert "no false negatives" in figs[6].axes[0].texts[0].get_text()
    assert "WRONG" in figs[7].axes[0].get_title()
    assert views.metrics_table({"test": test, "Imagen": only_gen}).loc["Imagen", "roc_auc"] is None
    for fig in figs:
        plt.close(fig)


# -- loading the classifier (with a stand-in for helpers.classify.models.build_model) ------------------

def test_load_classifier_loads_strictly(monkeypatch, tmp_path):
    built = []

    def build_model(profile, pretrained=None):
        built.append(pretrained)
        return Brightness(2 if profile.train_head == "paper" else 1, scale=1.0)

    monkeypatch.setattr(classifier, "build_model", build_model)
    trained = Brightness(scale=7.0)
    torch.save({"model": trained.state_dict(), "epoch": 3}, tmp_path / "best.pt")
    model = ev.load_classifier(get_profile("smoke"), tmp_path / "best.pt")
    assert built == ["none"] and not model.training
    assert model.scale.item() == 7.0 and torch.equal(model.mix.weight, trained.mix.weight)
    torch.save({"model": {"other.weight": torch.zeros(2)}}, tmp_path / "wrong.pt")
    with pytest.raises(CheckpointError, match="missing keys"):
        ev.load_classifier(get_profile("smoke"), tmp_path / "wrong.pt")
    torch.save(trained.state_dict(), tmp_path / "bare.pt")
    with pytest.raises(CheckpointError, match="under 'model'"):
        ev.load_classifier(get_profile("smoke"), tmp_path / "bare.pt")


# -- the commands -------------------------------------------------------------------------------

def _cli(argv):
    """``python -m helpers ARGV``, in this process: its exit status."""
    return main(argv)


def test_predict_command_prints_a_table_and_lists_bad_inputs(study, calls, tmp_path, capsys):
    folder = tmp_path / "mixed"
    _bad_and_good_folder(folder)
    missing = tmp_path / "missing.png"
    assert _cli(["predict", str(folder), str(missing)]) == 0
    out, err = capsys.readouterr()
    assert "gray.png" in out and "generated" in out and "zero.jpg" not in out
    assert "5 not scored" in err and "zero-byte" in err and "cannot read" in err and "too small" in err
    csv = tmp_path / "out" / "p.csv"
    assert _cli(["predict", str(folder / "cmyk.jpg"), str(folder / "text.jpg"), "--csv", str(csv),
                           "--as-is"]) == 0
    table = pd.read_csv(csv, keep_default_na=False)
    assert list(table.columns) == ["path", "p_generated", "predicted", "reason"]
    assert table.loc[0, "predicted"] == "generated" and "not an image" in table.loc[1, "reason"]
    # nothing scorable: exit 1, still no traceback
    assert _cli(["predict", str(folder / "zero.jpg")]) == 1


def test_evaluate_command(study, calls, capsys, tmp_path):
    assert _cli(["evaluate", "--profile", "smoke", "--reencode", "resize:64"]) == 0
    out = capsys.readouterr().out
    assert "paper-best_test_resize64" in out and "accuracy" in out and "metrics.json" in out
    assert _cli(["evaluate", "--images", str(tmp_path)]) == 1
    assert "--label" in capsys.readouterr().err
    assert _cli(["evaluate", "--reencode", "gif:3"]) == 1
    assert _cli(["evaluate", "--set", "train_head=sideways"]) == 2
