"""Chapter 2: the tables and figures of the augmentation: its settings, effects and drawn parameters."""

from __future__ import annotations

from dataclasses import fields

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns
from PIL import Image

from .. import augment
from ..core import paper
from ..core.paths import data_root, inside
from ..data import manifest as mf
from ..data.images import load_rgb
from .figures import Cell, image_grid


def ranges_table(profile) -> pd.DataFrame:
    """Every range of the augmentation with the reason for its value (from ``AugmentRanges``)."""
    rows = []
    for f in fields(profile.augment):
        value = getattr(profile.augment, f.name)
        shown = f"±{value}" if isinstance(value, float) else f"{value[0]} to {value[1]}"
        rows.append({"parameter": f.name, "range": shown, "why": f.metadata["why"]})
    table = pd.DataFrame(rows).set_index("parameter")
    return table.style.set_properties(subset=["why"], **{"text-align": "left", "white-space": "normal"})


def _mid(profile) -> dict:
    """One strong-but-allowed value per technique, to show each effect on its own."""
    r = profile.augment
    return {
        "rotation": {"angle": r.rotation_deg},
        "noise": {"sigma": r.noise_sigma[1]},
        "brightness_contrast": {"brightness": r.brightness[1], "contrast": r.contrast[0]},
        "color_jitter": {"saturation": r.saturation[1], "hue": r.hue[1]},
    }


def technique_strip(frame: pd.DataFrame, profile, label_name: str = "generated"):
    """One training image, then the same image through each technique alone, at the range's edge."""
    pool = augment.step.sources(profile, frame, label_name)
    src = pool.iloc[0]
    img = load_rgb(src.original, min_side=1)
    cells = [Cell(img, "original")]
    for tech, params in _mid(profile).items():
        shown = ", ".join(f"{k} {v:g}" for k, v in params.items())
        cells.append(Cell(augment.apply(img, {"ops": [tech], **params}, profile.seed), f"{tech}\n{shown}"))
    return image_grid([cells], size=(2.7, 3.2))


def augmented_grid(frame: pd.DataFrame, n: int = 8, source: str = augment.SOURCE["generated"]):
    """``n`` augmented images, each under its source, titled with the techniques drawn for it."""
    aug = frame[frame.source == source].head(n)
    root = data_root()
    sources = [Cell(inside(root, row.aug_source), "source") for row in aug.itertuples()]
    augmented = [Cell(inside(root, row.path), row.aug_ops.replace("+", "\n")) for row in aug.itertuples()]
    return image_grid([sources, augmented], note=f"no images of source '{source}' yet", size=(2.3, 2.6),
                      fontsize=8)


def parameter_histograms(frame: pd.DataFrame, profile):
    """How often each technique was drawn, and the histogram of every drawn parameter."""
    drawn = augment.drawn_parameters(frame)
    drawn = drawn[drawn.label_name == "generated"]
    names = [f.name for f in fields(profile.augment)]
    columns = {"rotation_deg": "angle", "noise_sigma": "sigma"}
    fig, axes = plt.subplots(2, 4, figsize=(11, 5.4))
    axes = axes.ravel()
    axes[-1].axis("off")
    ops = drawn.aug_ops.str.split("+").explode().value_counts().reindex(augment.TECHNIQUES, fill_value=0)
    axes[0].barh([t.replace("_", "\n") for t in ops.index], ops.values, color="tab:gray")
    axes[0].set_title("times drawn", fontsize=9)
    for ax, name in zip(axes[1:], names):
        col = columns.get(name, name)
        values = drawn[col].dropna() if col in drawn else pd.Series(dtype=float)
        sns.histplot(values, ax=ax, bins=12, color="tab:blue")
        value = getattr(profile.augment, name)
        lo, hi = (-value, value) if isinstance(value, float) else value
        for edge in (lo, hi):
            ax.axvline(edge, color="tab:red", lw=1, ls="--")
        ax.set_title(f"{col} (n={len(values)})", fontsize=9)
        ax.set_xlabel("")
        ax.set_ylabel("")
    fig.tight_layout()
    return fig


def counts_before_after(frame: pd.DataFrame, profile) -> pd.DataFrame:
    """Training images per class before and after augmentation: ours next to the paper's.

    The control's row is the real class as Chapter 4's control uses it: as many originals fewer
    as there are augmented photographs, so the classes stay the same size.
    """
    train = frame[frame.split == "train"]
    orig = mf.originals(train)
    n_real, n_gen = int((orig.label_name == "real").sum()), int((orig.label_name == "generated").sum())
    aug_gen = int((train.source == augment.SOURCE["generated"]).sum())
    aug_real = int((train.source == augment.SOURCE["real"]).sum())
    p_real, p_gen, p_aug = paper.COUNTS["real"]["train"], paper.COUNTS["generated"]["train"], paper.AUGMENTED_TRAIN
    rows = [
        ("real", n_real, 0, n_real, p_real, 0, p_real),
        ("generated", n_gen, aug_gen, n_gen + aug_gen, p_gen, p_aug, p_gen + p_aug),
        ("real, control (Chapter 4)", n_real - aug_real, aug_real, n_real, None, None, None),
    ]
    cols = ["class", f"originals ({profile.name})", f"augmented ({profile.name})", f"total ({profile.name})",
            "paper: originals", "paper: augmented", "paper: total"]
    return pd.DataFrame(rows, columns=cols).set_index("class").astype("Int64")


def _high_frequency(path) -> float:
    """Mean absolute Laplacian of the grey image: how much fine detail and noise it holds."""
    from scipy.ndimage import laplace

    grey = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    return float(np.abs(laplace(grey)).mean())


def shortcut_statistic(frame: pd.DataFrame) -> pd.DataFrame:
    """A one-number statistic per training group: if augmented images stand out on it, a classifier
    trained with augmentation in one class only can use it as a shortcut."""
    train = frame[frame.split == "train"]
    groups = {
        "real, as photographed": mf.originals(train)[lambda d: d.label_name == "real"],
        "generated, as generated": mf.originals(train)[lambda d: d.label_name == "generated"],
        "generated, augmented": train[train.source == augment.SOURCE["generated"]],
        "real, augmented (control)": train[train.source == augment.SOURCE["real"]],
    }
    root = data_root()
    rows = []
    for name, rows_of in groups.items():
        if rows_of.empty:
            continue
        values = [_high_frequency(inside(root, p)) for p in rows_of.path]
        rows.append({"group": name, "images": len(values), "mean |Laplacian|": np.mean(values),
                     "std": np.std(values)})
    return pd.DataFrame(rows).set_index("group").round(2)
