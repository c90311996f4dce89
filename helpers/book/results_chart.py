"""The results page: one chart of our numbers against the paper's, per profile.

The page's tables hold every number; the chart shows at a glance where ours and the paper's agree
and where they part. It plots only what can share one axis: the paper's classifier figures that
are fractions between 0 and 1 (test accuracy, F1 and ROC-AUC of ConvNeXt-XL, Table 3's three
other backbones, and the transfer accuracies of section 6), each as a pair of markers: the paper's
number and ours, read from the same tables (:mod:`helpers.book.results_tables`), so the chart can
never show a number the tables do not. A profile's caveat (``smoke``: a pipeline check, not a
finding) is in its panel's title.
"""

from __future__ import annotations

import pandas as pd

from ..core.profiles import Profile
from ..core.steps import made_from_standins
from . import results_tables as rt

READERS = (rt.classifier_metrics, rt.table3, rt.transfer)


def _fraction(value) -> float | None:
    value = rt.plain_number(value)
    return float(value) if isinstance(value, (int, float)) and 0.0 <= value <= 1.0 else None


def comparison(profile: Profile) -> pd.DataFrame:
    """Rows (quantity, ours, paper) where both numbers exist and are fractions in [0, 1]."""
    rows = []
    for reader in READERS:
        for _, row in reader(profile).iterrows():
            ours, paper = _fraction(row["ours"]), _fraction(row["paper"])
            if ours is not None and paper is not None:
                rows.append(dict(quantity=row["quantity"], ours=ours, paper=paper))
    return pd.DataFrame(rows, columns=["quantity", "ours", "paper"])


def _title(profile: Profile) -> str:
    if profile.name == "smoke" or made_from_standins(profile.name):
        kind = "smoke" if profile.name == "smoke" else "a rehearsal"
        return f"profile '{profile.name}' ({kind}: a pipeline check, not a finding)"
    return f"profile '{profile.name}'"


def _panel(ax, frame: pd.DataFrame, title: str) -> None:
    y = range(len(frame))
    ax.hlines(list(y), frame.ours, frame.paper, color="#bbbbbb", lw=1.5, zorder=1)
    ax.scatter(frame.paper, list(y), marker="x", color="black", label="the paper", zorder=2)
    ax.scatter(frame.ours, list(y), marker="o", color="#1f77b4", label="ours", zorder=3)
    ax.set(yticks=list(y), xlim=(-0.02, 1.02), title=title)
    ax.set_yticklabels(frame.quantity, fontsize=8)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)


def comparison_figure(profiles: list[Profile]):
    """One panel per profile with comparable numbers; None when no profile has any yet."""
    import matplotlib.pyplot as plt

    frames = [(p, comparison(p)) for p in profiles]
    frames = [(p, f) for p, f in frames if not f.empty]
    if not frames:
        return None
    height = sum(0.28 * len(f) + 1.0 for _, f in frames)
    fig, axes = plt.subplots(len(frames), 1, figsize=(8, height), squeeze=False)
    for ax, (profile, frame) in zip(axes[:, 0], frames):
        _panel(ax, frame, _title(profile))
    axes[0, 0].legend(loc="lower left", fontsize=8)
    axes[-1, 0].set_xlabel("fraction (accuracy, F1, ROC-AUC)")
    fig.tight_layout()
    return fig
