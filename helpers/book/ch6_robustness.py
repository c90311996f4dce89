"""Chapter 6: the robustness curves: what the notebook shows of ``python -m helpers robustness``.

Each trained classifier's table (``results/<profile>/robustness/<name>.csv``, one row per
degradation and level) is read back and drawn as curves: one column of panels per degradation,
one row per metric (accuracy on real images, accuracy on generated images, ROC-AUC), one line
per model with its 95% interval as a band (Wilson for the accuracies, BCa bootstrap for the AUC).
The paper gives one number per model, on undegraded test images (Table 3: accuracy over both
classes, as it gives no per-class figure, and AUC); it is marked as a star at the undegraded level
and labelled as the paper's. For JPEG that level is a re-encoding at quality 100,
close to but not the very file the paper scored.

Which curves to compute, in order (:func:`steps`): Chapter 4's model, each other backbone of Table 3,
the model of ``train --robust-aug`` (CNNDetection's recipe) and the CLIP linear probe.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..classify import backbones
from ..classify.degrade import AXIS, DEGRADATIONS, LEVELS, degrade
from ..classify.image_sets import image_file, test_images
from ..classify.robustness import load_curves, probe_name
from ..classify.train import ROBUST_RUN
from ..core import paper
from ..core.files import slug
from ..core.profiles import PROFILES
from ..data import manifest as mf
from ..data.images import load_rgb
from . import ch5_runs
from .figures import Cell, image_grid

METRICS = {"acc_real": "accuracy, real images", "acc_generated": "accuracy, generated images",
           "auc": "ROC-AUC"}
# The model behind each run folder, as Table 3 names it (the robust run is Chapter 4's model).
# Tables are named by the run folder's slug (``efficientnet-b0-lr3e-4`` for ``efficientnet_b0-lr3e-4``).
RUN_KEYS = {slug(backbones.run_name(k)): k for k in backbones.KEYS} | {ROBUST_RUN: backbones.DEFAULT}


def steps(profile) -> list[tuple[str, tuple[str, ...]]]:
    """``(command, arguments)`` of the chapter's robustness curves, in order: Chapter 4's model, the
    first seed of each other backbone of Table 3 at its chosen learning rate (once Chapter 5's grid
    has run), the robust run (``train --robust-aug`` runs before: :mod:`helpers.book.pipeline`)
    and the CLIP linear probe."""
    out = [("robustness", ())]
    for key in backbones.KEYS:
        trials = ch5_runs.chosen_trials(profile, key, profile.train_img_size) if key != backbones.DEFAULT else []
        out += [("robustness", trials[0].args(profile))] if trials else []
    return out + [("robustness", ("--robust-aug",)), ("robustness", ("--probe",))]


def run_key(name: str) -> str | None:
    """The backbone of Table 3 behind a table's name: its run folder (``vgg16``), or that folder with
    a run's settings after it (``vgg16-lr3e-4``); None for the probe and other checkpoints."""
    if name in RUN_KEYS:
        return RUN_KEYS[name]
    return next((k for rn, k in RUN_KEYS.items() if rn != ROBUST_RUN and name.startswith(f"{rn}-")
                 and not name.startswith(f"{rn}-control")), None)


def model_label(profile, name: str) -> str:
    """``paper`` -> ``ConvNeXt-XL``, ``robust`` -> ``ConvNeXt-XL, blur+JPEG training``, ``vgg16-lr3e-4``
    -> ``VGG-16, lr3e-4``, with the profile's own network named where it is not the paper's
    (``ConvNeXt-XL (tiny-convnext)`` in smoke); the probe as the probe; another checkpoint keeps its name."""
    if name == probe_name(profile):
        return f"linear probe on {profile.probe_model}"
    key = run_key(name)
    if key is None:
        return name
    own, papers = backbones.models(profile)[key], backbones.models(PROFILES["paper"])[key]
    settings = name[len(slug(backbones.run_name(key))) + 1:] if name not in RUN_KEYS else ""
    return (backbones.LABELS[key] + ("" if own == papers else f" ({own})")
            + (", blur+JPEG training" if name == ROBUST_RUN else "") + (f", {settings}" if settings else ""))


def curves(profile, names: list[str] | None = None) -> pd.DataFrame:
    """Every robustness table of the profile (or ``names``) in one frame, with ``model`` (the run's
    name) and ``label`` (as Table 3 names it)."""
    tables = load_curves(profile, names)
    return pd.concat([t.assign(model=name, label=model_label(profile, name), row=_table3_row(name))
                      for name, t in tables.items()],
                     ignore_index=True)


def table(profile, names: list[str] | None = None) -> pd.DataFrame:
    """The curves as a table to show: per model, degradation and level, the three metrics and the
    AUC's interval, in points of percent."""
    frame = curves(profile, names)
    shown = frame.set_index(["label", "degradation", "level"])[
        ["acc_real", "acc_generated", "auc", "auc_low", "auc_high"]] * 100
    return shown.round(1)


def drops(profile, names: list[str] | None = None) -> pd.DataFrame:
    """Per model and degradation: each metric at the undegraded (first) and the strongest (last)
    level, and the drop between them in points: the numbers the chapter's prose glues."""
    rows = []
    for (label, kind), part in curves(profile, names).groupby(["label", "degradation"], sort=False):
        part = part.set_index("level").loc[[lv for lv in LEVELS[kind] if lv in set(part["level"])]]
        first, last = part.iloc[0], part.iloc[-1]
        for metric in METRICS:
            rows.append({"label": label, "degradation": kind, "metric": metric,
                         "undegraded": first[metric] * 100, "strongest": last[metric] * 100,
                         "strongest_level": part.index[-1], "drop": (first[metric] - last[metric]) * 100})
    return pd.DataFrame(rows).round(2)


def _table3_row(name: str) -> str:
    """The row of the paper's Table 3 for a run trained as the paper trained it ("" for the robust
    run and other checkpoints: the paper has no number for them)."""
    key = run_key(name)
    return backbones.LABELS[key] if key is not None and name != ROBUST_RUN else ""


def _paper_value(row: str, metric: str) -> float | None:
    """The paper's single number for a Table 3 row and a metric: its accuracy (both classes
    together: the paper gives no per-class figure) or AUC; None for a row it does not have."""
    values = paper.TABLE3.get(row)
    if values is None:
        return None
    return values[2] if metric == "auc" else values[0]


def _panel(ax, frame: pd.DataFrame, kind: str, metric: str, colors: dict) -> None:
    """One degradation and one metric: a line and its 95% band per model, the paper's marks."""
    levels = list(LEVELS[kind])
    low, high = (("auc_low", "auc_high") if metric == "auc" else (f"{metric}_low", f"{metric}_high"))
    for label, part in frame[frame["degradation"] == kind].groupby("label", sort=False):
        table3 = part["row"].iloc[0]
        part = part.set_index("level").reindex(levels)
        x = np.arange(len(levels))
        ax.plot(x, part[metric], marker="o", ms=3, lw=1.4, color=colors[label], label=label)
        ax.fill_between(x, part[low].astype(float), part[high].astype(float), color=colors[label], alpha=0.15)
        mark = _paper_value(table3, metric)
        if mark is not None:
            ax.plot([0], [mark], marker="*", ms=10, color=colors[label], mec="black", mew=0.6, ls="none",
                    label=f"the paper's {table3} (Table 3, undegraded)")
    ax.set_xticks(range(len(levels)), [f"{lv:g}" for lv in levels], fontsize=8)
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)


def figure(profile, names: list[str] | None = None):
    """The robustness curves: one column per degradation, one row per metric, one line per model."""
    frame = curves(profile, names)
    labels = list(dict.fromkeys(frame["label"]))
    colors = {label: plt.get_cmap("tab10")(i % 10) for i, label in enumerate(labels)}
    fig, axes = plt.subplots(len(METRICS), len(DEGRADATIONS), figsize=(3.2 * len(DEGRADATIONS), 2.6 * len(METRICS)),
                             sharey=True, squeeze=False)
    for row, metric in enumerate(METRICS):
        for col, kind in enumerate(DEGRADATIONS):
            _panel(axes[row][col], frame, kind, metric, colors)
            axes[0][col].set_title(kind, fontsize=10)
            axes[-1][col].set_xlabel(AXIS[kind] + " (stronger to the right)", fontsize=8)
        axes[row][0].set_ylabel(METRICS[metric], fontsize=9)
    handles, names_ = axes[-1][0].get_legend_handles_labels()
    fig.legend(handles, names_, loc="lower center", ncol=min(3, len(handles)), fontsize=8, frameon=False)
    note = ("smoke: tiny random models on stand-in data, a pipeline check, not a finding"
            if profile.name == "smoke" else f"profile {profile.name}, test split")
    fig.suptitle(f"Robustness of the classifiers to degradation of both classes ({note}); bands: 95% intervals",
                 fontsize=10)
    fig.tight_layout(rect=(0, 0.06 + 0.02 * (len(handles) // 3), 1, 0.96))
    return fig


def degradation_figure(profile, crop: int = 128):
    """One generated test image under every degradation and level (a centre crop of ``crop`` px at
    the stored size, so that blocking, blur and noise are visible as the model gets them)."""
    images = test_images(profile)
    path = images[images["label"] == mf.LABELS["generated"]]["path"].iloc[0]
    img = load_rgb(image_file(path), min_side=1)
    side = min(crop, *img.size)
    left, top = (img.width - side) // 2, (img.height - side) // 2
    box = (left, top, left + side, top + side)
    rows = [[Cell(np.asarray(degrade(img, kind, level, seed=profile.seed).crop(box)), f"{AXIS[kind]} {level:g}")
             for level in LEVELS[kind]] for kind in DEGRADATIONS]
    return image_grid(rows, row_labels=list(DEGRADATIONS), size=(1.9, 2.1), fontsize=7)


def reading(profile, names: list[str] | None = None) -> str:
    """The curves in sentences, computed from :func:`drops`: per model, the degradation that costs
    its ROC-AUC the most (from the undegraded to the strongest level); then what the blur + JPEG
    training changes under JPEG and blur, where both tables exist."""
    table = drops(profile, names)
    auc = table[table["metric"] == "auc"]
    lines = []
    for label, part in auc.groupby("label", sort=False):
        worst = part.loc[part["drop"].idxmax()]
        if worst["drop"] <= 0:
            lines.append(f"- {label}: ROC-AUC falls under none of the degradations.")
            continue
        lines.append(f"- {label}: ROC-AUC falls most under {AXIS[worst['degradation']]} "
                     f"{worst['strongest_level']:g}, from {worst['undegraded']:.1f} to {worst['strongest']:.1f} "
                     f"({-worst['drop']:+.1f} points).")
    plain, robust = model_label(profile, "paper"), model_label(profile, ROBUST_RUN)
    for kind in ("jpeg", "blur"):
        pair = auc[(auc["degradation"] == kind) & auc["label"].isin([plain, robust])].set_index("label")
        if len(pair) == 2:
            lines.append(f"- At {AXIS[kind]} {pair.loc[plain, 'strongest_level']:g}, blur + JPEG training gives an "
                         f"ROC-AUC of {pair.loc[robust, 'strongest']:.1f} against {pair.loc[plain, 'strongest']:.1f} "
                         f"for the same model trained without it.")
    return "\n".join(lines)
