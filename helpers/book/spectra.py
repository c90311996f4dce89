"""Chapter 4: the figure of the residual spectra, per class, for Chapter 4's training set and each control's.

The computation is :mod:`helpers.data.spectra` (Corvi et al., ICASSP 2023): one row per set of
training images, the two classes' mean log spectra side by side and their radial profiles. Dotted
lines mark multiples of 1/8 cycle per pixel, where an 8x8 JPEG grid puts its peaks.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..classify.loaders import training_rows
from ..data import controls as ctl
from ..data import manifest as mf
from ..data.spectra import class_spectra

STUDY = "Chapter 4's training set"
# What the two labels of a set are (the null classifier's are two halves of the photographs).
CLASS_NAMES = {"null": ("half A (as photographs)", "half B (as generated images)")}


def training_sets(profile) -> dict[str, pd.DataFrame]:
    """``{set: rows}``: Chapter 4's training rows, and each made control's training rows."""
    sets = {STUDY: training_rows(profile, mf.load(profile.name))}
    for name in ctl.control_list(profile):
        if ctl.rows_path(profile, name).exists():
            rows = ctl.load_rows(profile, name)
            sets[name] = rows[rows.split == "train"]
    return sets


def compute(profile, sets: dict[str, pd.DataFrame] | None = None, n: int | None = None) -> dict[str, dict]:
    """``{set: class_spectra}`` over ``n`` images per class (default: ``spectra_count``)."""
    sets = training_sets(profile) if sets is None else sets
    n = profile.spectra_count if n is None else n
    return {name: class_spectra(rows, n, profile.seed) for name, rows in sets.items()}


def _names(set_name: str) -> tuple[str, str]:
    return CLASS_NAMES.get(set_name, ("real", "generated"))


def _jpeg_grid(ax) -> None:
    for f in (0.125, 0.25, 0.375, 0.5):
        ax.axvline(f, color="grey", lw=0.6, ls=":")


def _row(axes, set_name: str, spectra: dict) -> None:
    """One set: the two classes' 2-D spectra (one colour scale) and their radial profiles."""
    names = _names(set_name)
    both = np.concatenate([s["spectrum"].ravel() for s in spectra.values()])
    vmin, vmax = np.percentile(both, [1, 99.5])
    for label, ax in zip((0, 1), axes[:2]):
        ax.set_xticks([])
        ax.set_yticks([])
        if label not in spectra:
            ax.set_title(f"{set_name}: no {names[label]} images", fontsize=8)
            continue
        s = spectra[label]
        ax.imshow(s["spectrum"], cmap="magma", vmin=vmin, vmax=vmax, extent=(-0.5, 0.5, -0.5, 0.5))
        ax.set_title(f"{set_name}\n{names[label]} (n = {s['n']})", fontsize=8)
    for label, s in spectra.items():
        axes[2].plot(s["freq"], s["radial"], lw=1.2, label=names[label])
    _jpeg_grid(axes[2])
    axes[2].set(xlabel="frequency (cycles per pixel)", ylabel="mean log |FFT|")
    axes[2].set_title(f"{set_name}: radial profiles", fontsize=8)
    axes[2].legend(fontsize=7)


def spectra_figure(spectra: dict[str, dict]):
    """One row per set (``{set: class_spectra}``): the 2-D spectra of both classes and the radial profiles."""
    fig, axes = plt.subplots(len(spectra), 3, figsize=(11, 3.4 * len(spectra)), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 1, 1.6]})
    for row, (name, per_class) in zip(axes, spectra.items()):
        _row(row, name, per_class)
    fig.tight_layout()
    return fig
