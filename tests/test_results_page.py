"""The results page: its readers return the numbers the chapters wrote, say "not run yet" for what
is missing, and the notebook runs against a results folder (and against none)."""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

import nbformat
import pandas as pd
import pytest

from helpers.data import manifest as mf
from helpers.core import paper
from helpers.book import results_page as rp
from helpers.classify.metrics import binary_metrics
from helpers.core.paths import results_root
from helpers.core.files import atomic_write_text
from helpers.core.profiles import PROFILES
from helpers.classify.train import write_metrics

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "08_results.ipynb"
SMOKE = PROFILES["smoke"]
# what the fixture writes, and so what the readers must return
COUNTS = {("real", "train"): 3, ("real", "val"): 1, ("real", "test"): 2,
          ("generated", "train"): 2, ("generated", "val"): 1, ("generated", "test"): 2}
AUGMENTED = 1
LABELS, PROBS = [0, 0, 1, 1], [0.2, 0.6, 0.7, 0.9]  # accuracy 0.75, F1 0.8, ROC-AUC 1.0
EPOCH_SECONDS, IMAGES_PER_S = [120.0, 180.0], [10.0, 20.0]  # 2.5 minutes, 15 images/s
SCORED = 12  # images per inpainting set: more than the paper's 10, to check "first 10"


def _manifest() -> pd.DataFrame:
    rows = []
    for (label, split), n in COUNTS.items():
        rows += [{"path": f"smoke/{label}/{split}/{i}.jpg", "label": mf.LABELS[label], "label_name": label,
                  "split": split, "source": "standin" if label == "real" else "tiny-sd2"} for i in range(n)]
    rows += [{"path": f"smoke/augmented/{i}.jpg", "label": 1, "label_name": "generated", "split": "train",
              "source": "augmented"} for i in range(AUGMENTED)]
    return pd.DataFrame(rows).reindex(columns=mf.COLUMNS)


def _evaluation(folder: Path) -> None:
    """``metrics.json`` and ``predictions.csv`` in the layout of ``helpers.classify.evaluate``."""
    predictions = pd.DataFrame({"path": [f"p{i}.jpg" for i in range(len(LABELS))], "label": LABELS,
                                "p_generated": PROBS})
    predictions["predicted"] = (predictions.p_generated >= 0.5).astype(int)
    mf.write_csv(predictions, folder / "predictions.csv")
    saved = {"name": folder.name, "settings": {"train_model": SMOKE.train_model, "set": "test"},
             "metrics": binary_metrics(LABELS, PROBS), "accuracy_ci95": {"low": 0.5, "high": 1.0},
             "skipped": []}
    atomic_write_text(folder / "metrics.json", json.dumps(saved))


def _inpainting(folder: Path) -> None:
    """``scores.csv`` and ``fid.csv`` in the layout of ``helpers.inpaint.step``: NIQE = index,
    SIFID = 2 x index, so the first 10 average 4.5 and 9.0."""
    rows = [{"model": "pconv", "set": s, "index": i, "key": f"k{i}", "original": "o.png", "result": "r.png",
             "mask": "m.png", "hole_ratio": 0.15, "niqe": float(i), "sifid": 2.0 * i}
            for s in ("MS-COCO", "Stable Diffusion") for i in range(SCORED)]
    mf.write_csv(pd.DataFrame(rows), folder / "scores.csv")
    mf.write_csv(pd.DataFrame([{"model": "pconv", "set": s, "images": SCORED, "fid": 33.3,
                                "inception_weights": "pytorch-fid"} for s in ("MS-COCO", "Stable Diffusion")]),
                 folder / "fid.csv")


@pytest.fixture
def results(data_root):
    """A smoke results folder with Chapters 1-4 written (bench train and Chapter 5 left out)."""
    mf.write_csv(_manifest(), mf.manifest_path("smoke"))
    mf.write_csv(_manifest().query("source == 'augmented'"), mf.part_path("smoke", "augmented"))
    root = results_root("smoke")
    _evaluation(root / "eval" / "paper-best_test")
    write_metrics([{"epoch": e + 1, "train_loss": 0.5, "train_acc": 0.5, "val_loss": 0.5, "val_acc": 0.5,
                    "lr": 1e-3, "seconds": s, "images_per_s": r}
                   for e, (s, r) in enumerate(zip(EPOCH_SECONDS, IMAGES_PER_S))],
                  root / "train" / "paper" / "metrics.csv")
    _inpainting(root / "inpaint" / "pconv")
    return root


def _ours(frame: pd.DataFrame, quantity: str):
    row = frame.loc[frame.quantity == quantity]
    assert len(row) == 1, f"{quantity!r} is not one row of {list(frame.quantity)}"
    return row.iloc[0]


def test_profiles_with_results(data_root):
    assert rp.profiles_with_results() == []
    results_root("course").mkdir(parents=True)  # an empty folder is not a result
    assert rp.profiles_with_results() == []
    atomic_write_text(results_root("paper") / "bench_data.json", "{}")
    assert [p.name for p in rp.profiles_with_results()] == ["paper"]


def test_data_counts(results):
    frame = rp.data_counts(SMOKE)
    assert list(frame.columns) == rp.COLUMNS
    for (label, split), n in COUNTS.items():
        row = _ours(frame, f"{label} images, {split}")
        assert row.ours == n and row.paper == paper.COUNTS[label][split]
    aug = _ours(frame, "augmented generated images, train")
    assert aug.ours == AUGMENTED and aug.paper == paper.AUGMENTED_TRAIN
    assert _ours(frame, "augmented real images, train").ours == rp.NOT_RUN  # no augmented_real part


def test_data_counts_without_a_manifest(data_root):
    frame = rp.data_counts(SMOKE)
    assert (frame.ours == rp.NOT_RUN).all()
    assert _ours(frame, "real images, train").paper == paper.COUNTS["real"]["train"]


def test_table2_averages(results):
    frame = rp.table2_averages(SMOKE)
    niqe = _ours(frame, "pconv, MS-COCO: NIQE, mean of first 10")
    assert niqe.ours == pytest.approx(4.5) and niqe.paper == paper.TABLE2_AVERAGE["MS-COCO"][1]
    sifid = _ours(frame, "pconv, Stable Diffusion: SIFID, mean of first 10")
    assert sifid.ours == pytest.approx(9.0) and sifid.paper == paper.TABLE2_AVERAGE["Stable Diffusion"][0]
    fid = _ours(frame, "pconv, MS-COCO: FID of the set")
    assert fid.ours == pytest.approx(33.3) and fid.paper == rp.NOT_REPORTED
    for model in set(SMOKE.inpaint_model_list) - {"pconv"}:
        assert _ours(frame, f"{model}: Table 2 scores").ours == rp.NOT_RUN


def test_classifier_metrics(results):
    assert rp.classifier_eval_name(SMOKE) == "paper-best_test"
    frame = rp.classifier_metrics(SMOKE)
    _, f1, auc = paper.TABLE3["ConvNeXt-XL"]
    acc = _ours(frame, "test accuracy")
    assert acc.ours == pytest.approx(0.75) and acc.paper == paper.TEST_ACCURACY
    assert "0.5000 to 1.0000" in acc.note  # our bootstrap interval
    assert (_ours(frame, "test F1").ours, _ours(frame, "test F1").paper) == (pytest.approx(0.8), f1)
    assert (_ours(frame, "test ROC-AUC").ours, _ours(frame, "test ROC-AUC").paper) == (pytest.approx(1.0), auc)


def test_classifier_metrics_not_run(data_root):
    frame = rp.classifier_metrics(SMOKE)
    assert (frame.ours == rp.NOT_RUN).all()
    assert _ours(frame, "test accuracy").paper == paper.TEST_ACCURACY


def test_training_speed(results):
    frame = rp.training_speed(SMOKE)
    minutes = _ours(frame, "minutes per epoch")
    assert minutes.ours == pytest.approx(2.5) and minutes.paper == paper.EPOCH_MINUTES
    rate = _ours(frame, "training images per second")
    paper_images = paper.COUNTS["real"]["train"] + paper.COUNTS["generated"]["train"] + paper.AUGMENTED_TRAIN
    assert rate.ours == pytest.approx(15.0)
    assert rate.paper == pytest.approx(paper_images / (paper.EPOCH_MINUTES * 60))
    assert _ours(frame, "training images per second, bench train").ours == rp.NOT_RUN


def test_evaluations_lists_every_finished_one(results):
    _evaluation(results / "eval" / "paper-best_test_jpeg75")
    (results / "eval" / "unfinished").mkdir()
    frame = rp.evaluations(SMOKE)
    assert list(frame.evaluation) == ["paper-best_test", "paper-best_test_jpeg75"]
    assert frame.accuracy.tolist() == pytest.approx([0.75, 0.75])


def _fake(monkeypatch, module: str, function: str, behaviour) -> None:
    fake = types.ModuleType(f"helpers.book.{module}")
    setattr(fake, function, behaviour)
    monkeypatch.setitem(sys.modules, f"helpers.book.{module}", fake)


def test_chapter5_reads_the_other_chapters_tables(data_root, monkeypatch):
    table3 = pd.DataFrame({"accuracy (ours)": [0.9], "F1 (ours)": [0.8], "ROC-AUC (ours)": [0.7],
                           "accuracy (paper)": [0.0], "F1 (paper)": [0.0], "ROC-AUC (paper)": [0.0]},
                          index=["VGG-16"])
    summary = pd.DataFrame({"images": [12], "accuracy on generated (ours)": [0.25],
                            "accuracy on generated (paper)": [0.0], "balanced accuracy (ours)": [None],
                            "ROC-AUC (ours)": [None], "AP (ours)": [None]}, index=["DALL-E 2"])
    _fake(monkeypatch, "ch5_ablation", "table3", lambda profile: table3)
    _fake(monkeypatch, "ch5_transfer", "summary", lambda profile: summary)
    t3 = rp.table3(SMOKE)
    vgg = _ours(t3, "VGG-16: F1")
    assert vgg.ours == pytest.approx(0.8) and vgg.paper == paper.TABLE3["VGG-16"][1]  # the paper's from paper.py
    assert _ours(t3, "ResNet-50: accuracy").ours == rp.NOT_RUN
    assert _ours(t3, "ResNet-50: accuracy").paper == paper.TABLE3["ResNet-50"][0]
    tr = rp.transfer(SMOKE)
    dalle = _ours(tr, "DALL-E 2: accuracy on generated images")
    assert dalle.ours == pytest.approx(0.25) and dalle.paper == paper.TRANSFER_ACCURACY["DALL-E 2"]
    assert _ours(tr, "DALL-E 2: images").ours == 12
    assert _ours(tr, "DALL-E 2: ROC-AUC, with matched real images").ours == rp.NO_MATCHED_REAL
    assert _ours(tr, "Imagen: accuracy on generated images").ours == rp.NOT_RUN
    assert _ours(tr, "Imagen: accuracy on generated images").note == rp.NOT_EVALUATED
    values = rp.glue_values(SMOKE)  # names enter keys as their slug (helpers.core.files.slug)
    assert values["smoke_vgg-16_accuracy"] == pytest.approx(0.9)
    assert values["smoke_transfer_dall-e-2_accuracy"] == pytest.approx(0.25)
    assert "smoke_transfer_imagen_accuracy" not in values and "smoke_resnet-50_accuracy" not in values
    reported = rp.reported_values()
    assert reported["reported_vgg-16_accuracy"] == paper.TABLE3["VGG-16"][0]
    assert reported["reported_transfer_dall-e-2_accuracy"] == paper.TRANSFER_ACCURACY["DALL-E 2"]
    assert {k[len("smoke_"):] for k in values} <= {k[len("reported_"):] for k in reported}  # the paper's twin
    assert {type(v) for v in values.values()} <= {int, float}  # plain numbers, not numpy scalars, for glue


def test_chapter6_reads_its_tables_and_says_what_is_missing(data_root, monkeypatch):
    drops = pd.DataFrame([{"label": "ConvNeXt-XL", "degradation": "jpeg", "metric": "auc", "undegraded": 99.0,
                           "strongest": 80.0, "strongest_level": 30, "drop": 19.0}])
    _fake(monkeypatch, "ch6_robustness", "drops", lambda profile: drops)
    row = _ours(rp.robustness(SMOKE), "ConvNeXt-XL: ROC-AUC at JPEG quality 30")
    assert row.ours == pytest.approx(0.8) and row.paper == rp.NOT_REPORTED and row.note == "undegraded: 0.9900"
    comparison = pd.DataFrame([
        {"set": "DALL-E 2 (alone)", "model": "m (Chapter 4)", "n_real": 0, "accuracy": 0.1, "roc_auc": None},
        {"set": "DALL-E 2 (alone)", "model": "linear probe on ViT-L-14", "n_real": 0, "accuracy": 0.6,
         "roc_auc": None}])
    monkeypatch.setattr("helpers.classify.probe.comparison", lambda profile: comparison)
    probe = rp.probe_results(SMOKE)
    assert _ours(probe, "DALL-E 2 (alone), m (Chapter 4): accuracy").paper == paper.TRANSFER_ACCURACY["DALL-E 2"]
    assert _ours(probe, "DALL-E 2 (alone), linear probe on ViT-L-14: accuracy").paper == rp.NOT_REPORTED
    assert _ours(probe, "DALL-E 2 (alone), m (Chapter 4): ROC-AUC").ours == rp.NO_MATCHED_REAL
    assert (rp.gradcam_check(SMOKE).ours == rp.NOT_RUN).all()  # no Grad-CAM results in this folder


def _raise(profile):
    raise FileNotFoundError("no evaluations yet")


@pytest.mark.parametrize("how", ["missing module", "FileNotFoundError", "empty frame"])
def test_chapter5_not_run(data_root, monkeypatch, how):
    for module, function in (("ch5_ablation", "table3"), ("ch5_transfer", "summary")):
        if how == "missing module":
            monkeypatch.setitem(sys.modules, f"helpers.book.{module}", None)  # import fails
        else:
            _fake(monkeypatch, module, function, _raise if how == "FileNotFoundError" else lambda p: pd.DataFrame())
    for frame in (rp.table3(SMOKE), rp.transfer(SMOKE)):
        assert (frame.ours == rp.NOT_RUN).all()
    assert _ours(rp.transfer(SMOKE), "Imagen: accuracy on generated images").paper == paper.TRANSFER_ACCURACY["Imagen"]


def test_glue_values_are_plain_numbers_that_format(results):
    from myst_nb.core.variables import format_plain_text

    values = rp.glue_values(SMOKE)
    assert values["smoke_test_accuracy"] == pytest.approx(0.75)
    assert values["smoke_real_train"] == COUNTS[("real", "train")]
    assert values["smoke_epoch_minutes"] == pytest.approx(2.5)
    for key, value in values.items():  # numpy scalars would glue as 'np.float64(...)' and not format
        assert type(value) in (int, float), key
        assert format_plain_text(repr(value), ".2f")
    page = rp.page_glue([SMOKE])
    assert page["build_profile"] == "smoke" and page["build_test_accuracy"] == pytest.approx(0.75)
    assert page["reported_test_accuracy"] == paper.TEST_ACCURACY
    assert "pipeline checks" in page["build_caveat"]
    assert format_plain_text(repr(page["smoke_test_accuracy"]), ".2%") == "75.00%"


def test_show_labels_missing_pieces(data_root):
    html = rp.show(rp.classifier_metrics(SMOKE)).to_html()
    assert rp.NOT_RUN in html and f"{paper.TEST_ACCURACY:.4f}" in html


def test_notebook_is_saved_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and all(not c.outputs and c.execution_count is None for c in code)
    assert all(c.get("id") for c in nb.cells)


def _execute(results_base: Path, data_base: Path) -> nbformat.NotebookNode:
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    env = dict(os.environ, BOOK_RESULTS_ROOT=str(results_base), BOOK_DATA_ROOT=str(data_base),
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    env.pop("BOOK_PROFILE", None)
    NotebookClient(nb, kernel_name="python3", timeout=300,
                   resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute(cwd=str(NOTEBOOK.parent), env=env)
    return nb


def _glued(nb) -> dict:
    out = {}
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            name = o.get("metadata", {}).get("scrapbook", {}).get("name")
            if name:
                out[name] = o["data"]["application/papermill.record/text/plain"]
    return out


def _shown(nb) -> str:
    parts = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            parts.append(o.get("text", ""))
            parts += [str(v) for k, v in o.get("data", {}).items() if k in ("text/markdown", "text/html", "text/plain")]
    return "\n".join(parts)


@pytest.mark.slow
def test_notebook_runs_against_a_results_folder(results, data_root):
    nb = _execute(results.parent, data_root)
    glued = _glued(nb)
    assert float(glued["smoke_test_accuracy"]) == pytest.approx(0.75)
    assert float(glued["build_epoch_minutes"]) == pytest.approx(2.5)
    assert float(glued["reported_test_accuracy"]) == paper.TEST_ACCURACY
    shown = _shown(nb)
    assert rp.SMOKE_CAVEAT in shown and rp.NOT_RUN in shown and "0.7500" in shown


@pytest.mark.slow
def test_notebook_runs_without_results(tmp_path):
    nb = _execute(tmp_path / "no-results", tmp_path / "no-data")
    shown = _shown(nb)
    assert "No profile has results yet" in shown and "python -m helpers data --profile smoke" in shown
    assert "smoke_test_accuracy" not in _glued(nb)


def test_the_chart_pairs_our_fractions_with_the_papers(results):
    import matplotlib

    matplotlib.use("Agg")
    from helpers.book import results_chart

    frame = results_chart.comparison(SMOKE)
    row = frame.set_index("quantity").loc["test accuracy"]
    assert (row.ours, row.paper) == (pytest.approx(0.75), paper.TEST_ACCURACY)
    assert "test balanced accuracy" not in set(frame.quantity)  # the paper has none
    assert frame[["ours", "paper"]].apply(lambda c: c.between(0, 1)).all().all()
    fig = results_chart.comparison_figure([SMOKE])
    assert "pipeline check" in fig.axes[0].get_title() and len(fig.axes) == 1


def test_the_chart_of_no_results_is_none(data_root):
    from helpers.book import results_chart

    assert results_chart.comparison_figure([SMOKE]) is None
