"""Chapter 4's tables and figures, read back from ``results/<profile>/train/<run>/``."""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import pandas as pd

from . import paper
from .paths import results_root
from .profiles import PROFILES


def run_dir(profile, run: str = "paper"):
    return results_root(profile.name) / "train" / run


def load_metrics(profile, run: str = "paper") -> pd.DataFrame:
    path = run_dir(profile, run) / "metrics.csv"
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


def load_json(path) -> dict:
    return json.loads(path.read_text())
