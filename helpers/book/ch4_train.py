"""Chapter 4: the tables and figures, training curves, test metrics, the shortcut check, predictions.

Read back from ``results/<profile>/train/<run>/`` and ``results/<profile>/eval/<name>/``; the
shortcut check's table runs its evaluations (each kept, so a rerun reads them back). Chapter 5
reuses the ROC figure and the grids of predictions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..classify import backbones
from ..classify.evaluation import evaluate_conditions
from ..classify.image_sets import image_file
from ..classify.metrics import roc_points
from ..classify.prediction import LABEL_NAMES
from ..classify.reencode import parse_reencode
from ..classify.train import run_folder
from ..core import paper
from ..core.profiles import PROFILES
from .figures import Cell, chunks, image_grid


def load_metrics(profile, run: str = "paper") -> pd.DataFrame:
    path = run_folder(profile, run) / "metrics.csv"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: run `python -m helpers train --profile "
                                f"{profile.name}` first")
    return pd.read_csv(path)


def commands() -> pd.DataFrame:
    """The training command and set-up of each profile (from the profiles)."""
    rows = []
    for p in PROFILES.values():
        launcher = "python -m helpers" if p.name == "smoke" else "torchrun --nproc_per_node=N -m helpers"
        rows.append({"profile": p.name, "model": p.train_model, "input (px)": p.train_img_size,
                     "global batch": p.train_batch, "max epochs": p.train_epochs,
                     "patience": p.train_patience, "pretrained": p.train_pretrained,
                     "command": f"{launcher} train --profile {p.name}"})
    return pd.DataFrame(rows).set_index("profile")


def curves(profile, runs: tuple[str, ...] = ("paper",)):
    """Training and validation loss, and validation accuracy, per epoch, for each run."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for run in runs:
        try:
            m = load_metrics(profile, run)
        except FileNotFoundError:
            continue
        axes[0].plot(m.epoch, m.train_loss, marker="o", label=f"{run}: train")
        axes[0].plot(m.epoch, m.val_loss, marker="s", ls="--", label=f"{run}: validation")
        axes[1].plot(m.epoch, m.val_acc, marker="o", label=run)
    axes[0].set(xlabel="epoch", ylabel="loss", title="loss")
    axes[1].set(xlabel="epoch", ylabel="accuracy", title="validation accuracy")
    for ax in axes:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def test_table(profile, evaluations: dict[str, dict]) -> pd.DataFrame:
    """Test metrics of our runs next to the paper's ConvNeXt-XL (accuracy 99.87%, Table 3)."""
    acc, f1, auc = paper.TABLE3["ConvNeXt-XL"]
    rows = [{"run": "the paper (ConvNeXt-XL)", "accuracy": acc, "F1": f1, "ROC-AUC": auc}]
    for name, m in evaluations.items():
        rows.append({"run": f"ours: {name} ({profile.name})", "accuracy": m.get("accuracy"), "F1": m.get("f1"),
                     "ROC-AUC": m.get("roc_auc"), "balanced accuracy": m.get("balanced_accuracy"),
                     "accuracy on real": m.get("accuracy_real"),
                     "accuracy on generated": m.get("accuracy_generated")})
    return pd.DataFrame(rows).set_index("run").round(4)


def metrics_table(results: Mapping[str, dict]) -> pd.DataFrame:
    """One row per evaluation (``{label: result}``): the headline metrics side by side."""
    cols = ["n_real", "n_generated", "accuracy", "balanced_accuracy", "roc_auc", "average_precision",
            "precision", "recall", "f1", "accuracy_real", "accuracy_generated", "note"]
    return pd.DataFrame({label: {c: r["metrics"].get(c) for c in cols} for label, r in results.items()}).T


# -- the shortcut check ---------------------------------------------------------------------------

def condition_label(spec) -> str:
    """How the shortcut check changed the images, in words (``"JPEG q75"``...)."""
    spec = parse_reencode(spec)
    if spec is None:
        return "unchanged"
    return f"JPEG q{spec[1]}" if spec[0] == "jpeg" else f"resized to {spec[1]} px and back"


def shortcut_table(profile, checkpoint=None, qualities=(95, 75, 50), sides=(256, 192), *,
                   model: str = backbones.DEFAULT, device=None, batch_size: int = 16) -> pd.DataFrame:
    """Accuracy and ROC-AUC on the test set unchanged and after each re-encoding of both classes.

    ``accuracy change`` is in percentage points against the unchanged set; ``mean |change of P|``
    is the average shift of P(generated) per image.
    """
    specs = [None] + [("jpeg", q) for q in qualities] + [("resize", s) for s in sides]
    results = evaluate_conditions(profile, specs, checkpoint, model=model, device=device, batch_size=batch_size)
    base = results[0]["predictions"].set_index("path")["p_generated"]
    rows = []
    for spec, result in zip(specs, results):
        m, pred = result["metrics"], result["predictions"].set_index("path")["p_generated"]
        shared = pred.index.intersection(base.index)
        rows.append({"condition": condition_label(spec), "accuracy": m["accuracy"], "roc_auc": m["roc_auc"],
                     "accuracy real": m["accuracy_real"], "accuracy generated": m["accuracy_generated"],
                     "mean |change of P|": float((pred[shared] - base[shared]).abs().mean()),
                     "images": m["n"], "evaluation": result["name"]})
    table = pd.DataFrame(rows).set_index("condition")
    table.insert(2, "accuracy change (points)", (table["accuracy"] - table["accuracy"].iloc[0]) * 100)
    return table


# -- figures --------------------------------------------------------------------------------------

def confusion_figure(result: dict, title: str | None = None):
    """The confusion matrix as a heatmap: counts, and the share of each true class."""
    import seaborn as sns  # lazily: only this figure draws with it

    m = result["metrics"]
    counts = np.array([[m["tn"], m["fp"]], [m["fn"], m["tp"]]])
    rows = counts.sum(axis=1, keepdims=True)
    share = np.divide(counts, rows, out=np.full(counts.shape, np.nan), where=rows > 0)
    annot = [[f"{c}\n{s:.1%}" if not np.isnan(s) else f"{c}\n(none)" for c, s in zip(cr, sr)]
             for cr, sr in zip(counts, share)]
    fig, ax = plt.subplots(figsize=(4.4, 3.8))
    sns.heatmap(np.nan_to_num(share), annot=annot, fmt="", cmap="Blues", vmin=0, vmax=1, cbar=False,
                xticklabels=["real", "generated"], yticklabels=["real", "generated"], ax=ax,
                linewidths=1, linecolor="white", annot_kws={"fontsize": 11})
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title or f"{result['name']}: accuracy {m['accuracy']:.2%}", fontsize=10)
    fig.tight_layout()
    return fig


def roc_figure(results: Mapping[str, dict] | Iterable[dict], title: str = "ROC curves"):
    """ROC curves of several evaluations overlaid (``{label: result}`` or a list of results).

    A set of one class has no ROC curve; it is named in the legend as not shown.
    """
    items = results.items() if isinstance(results, Mapping) else ((r["name"], r) for r in results)
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    ax.plot([0, 1], [0, 1], color="grey", lw=1, ls="--", label="chance")
    for label, r in items:
        pred = r["predictions"]
        if pred["label"].nunique() < 2:
            ax.plot([], [], " ", label=f"{label}: one class only, no curve")
            continue
        pts = roc_points(pred["label"], pred["p_generated"])
        ax.plot(pts["fpr"], pts["tpr"], lw=1.6, label=f"{label} (AUC {r['metrics']['roc_auc']:.4f})")
    ax.set_xlim(-0.01, 1.01)
    ax.set_ylim(-0.01, 1.01)
    ax.set_xlabel("false positive rate (real called generated)")
    ax.set_ylabel("true positive rate (generated found)")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    return fig


def _prediction_cell(item) -> Cell:
    """An image with its true class and P(generated), green when called right, red when not."""
    right = int(item.predicted) == int(item.label)
    return Cell(image_file(item.path), f"true: {LABEL_NAMES[int(item.label)]}\nP(generated) = "
                f"{item.p_generated:.3f}\n{'correct' if right else 'WRONG'}",
                color="darkgreen" if right else "firebrick")


def predictions_grid(rows: pd.DataFrame, cols: int, title: str, note: str | None = None):
    """The images of ``rows`` (a ``predictions.csv`` frame), ``cols`` to a row."""
    return image_grid(chunks([_prediction_cell(item) for item in rows.itertuples()], cols), title=title, note=note)


def _shown_as(result: dict) -> str:
    spec = result.get("settings", {}).get("reencode")
    return f" (shown as stored; the model saw them {condition_label(spec)})" if spec else ""


def prediction_grid(result: dict, n: int = 8, seed: int = 0, cols: int = 4):
    """Images with their true label, P(generated) and whether the prediction was right (the
    paper's Fig. 6): half real, half generated where the set has both, drawn with ``seed``."""
    pred = result["predictions"]
    per_class = [part.sample(min(len(part), -(-n // pred["label"].nunique())), random_state=seed)
                 for _, part in pred.groupby("label")]
    chosen = pd.concat(per_class).head(n)
    return predictions_grid(chosen, cols, f"{result['name']}: predictions{_shown_as(result)}")


def false_negative_grid(result: dict, n: int = 8, cols: int = 4, closest: bool = False):
    """Generated images the classifier called real, the most confident mistakes first (the
    paper's Figs. 7-8). With ``closest``, a set without such mistakes shows instead its generated
    images of lowest P(generated), the ones nearest to being called real, and says so."""
    pred = result["predictions"]
    generated = pred[pred["label"] == 1].sort_values("p_generated")
    wrong = generated[generated["predicted"] == 0].head(n)
    if wrong.empty and closest and not generated.empty:
        return predictions_grid(generated.head(n), cols, f"{result['name']}: no generated image was called "
                                f"real; the {min(n, len(generated))} nearest to it{_shown_as(result)}")
    return predictions_grid(wrong, cols, f"{result['name']}: generated images called real{_shown_as(result)}",
                            note="no false negatives: every generated image was called generated")
