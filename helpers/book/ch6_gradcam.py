"""Chapter 6: where Chapter 4's model looks: the Grad-CAM grid and the object check, read back from ``gradcam``.

``python -m helpers gradcam`` (:mod:`helpers.classify.gradcam_step`) computes the maps; this module
draws them and reads the check, so a chapter cell is one call. The grid shows each image beside its
map over it, P(generated) of the very forward pass that made the map in the title. The check asks
whether the maps favour COCO's objects or the background: a uniform map would put on the objects
exactly their share of the area, so the map's mass on them is compared with that share, photograph
by photograph (a paired permutation test, and a bootstrap interval of the mean difference).

A map shows where evidence *for "generated"* lies: on a photograph called real with confidence it
is often zero everywhere (reported as empty, and left out of the check's means, never replaced by
a uniform map). Grad-CAM is coarse (the last stage is 12 x 12 at 384 px) and says where, not what.
"""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from ..classify.gradcam import distribution
from ..classify.gradcam_step import load_figure, load_masses
from ..classify.image_sets import image_file
from ..classify.reencode import common_format
from ..core.stats import bootstrap, paired_permutation_test
from ..data import manifest as mf
from ..data.images import BadImage, load_rgb
from .figures import Cell, image_grid

LABEL_NAMES = {v: k for k, v in mf.LABELS.items()}
NOT_AVAILABLE = "not available in this profile"


def steps(profile) -> list[tuple[str, tuple[str, ...]]]:
    """The chapter's step as ``(command, args)``: the chapter runs it and ``make run`` lists it, after
    Chapter 5's transfer evaluations (the images those call real are one of the figure's groups)."""
    return [("gradcam", ())]


def stored_image(profile, path: str, from_folder: bool) -> np.ndarray:
    """The image the model saw, as a ``side`` x ``side`` RGB array in [0, 1] (a user's folder image
    brought to the common format first, as the evaluation and the step did)."""
    img = load_rgb(image_file(path), min_side=1)
    img = common_format(img, profile) if from_folder else img
    side = profile.image_size
    if img.size != (side, side):
        img = img.resize((side, side))
    return np.asarray(img, dtype=np.float32) / 255.0


def overlay(image: np.ndarray, dist: np.ndarray | None) -> np.ndarray:
    """The map drawn over the image (the grad-cam package's ``show_cam_on_image``, its colours scaled
    to the map's peak for display only); the image itself when the map is empty."""
    from pytorch_grad_cam.utils.image import show_cam_on_image  # lazily: it loads OpenCV

    if dist is None:
        return image
    return show_cam_on_image(image, (dist / dist.max()).astype(np.float32), use_rgb=True)


def _cells(profile, row, raw: np.ndarray) -> list[Cell]:
    """An image and its map, titled with its label and P(generated)."""
    name = f"{LABEL_NAMES.get(int(row.label), row.label)}: {str(row.path).rsplit('/', 1)[-1][:18]}"
    try:
        image = stored_image(profile, row.path, bool(row.from_folder))
    except BadImage as exc:
        return [Cell(None, f"{name}\ncannot show: {exc}"[:80])]
    dist = distribution(raw, profile.image_size) if not row.empty else None
    title = "no place raises it" if dist is None else f"P(generated) = {row.p_generated:.2f}"
    return [Cell(image, name, "black"), Cell(overlay(image, dist), title, "darkred")]


def group_names(profile) -> list[str]:
    """The figure's groups in the step's order, then the absent ones: pick rows for :func:`figure`."""
    _, _, info = load_figure(profile)
    return info["groups"] + list(info["notes"])


def figure(profile, groups=None, n: int | None = None):
    """The grid: one row per group (``groups`` in the step's order by default), ``n`` images each
    (default: all the step kept), each image beside its map; an absent group's row says why."""
    table, maps, info = load_figure(profile)
    wanted = list(groups) if groups is not None else group_names(profile)
    rows, labels = [], []
    for group in wanted:
        part = table[table.group == group].head(n)
        if part.empty:
            note = info["notes"].get(group, "no images")
            rows.append([Cell(None, textwrap.fill(f"not shown: {note}", 40)[:400])])
        else:
            rows.append([cell for row in part.itertuples() for cell in _cells(profile, row, maps[row.Index])])
        labels.append(textwrap.fill(group, 24))
    return image_grid(rows, row_labels=labels, title=f"Grad-CAM of the 'generated' output, profile "
                                                     f"'{profile.name}'", size=(2.2, 2.6), fontsize=8)


def mass_check(profile, n_boot: int = 2000, seed: int = 0) -> dict:
    """The object check's numbers: ``available`` (else ``reason``), ``photographs``, ``empty`` maps
    left out, the means of the map's mass on the objects and of the objects' area share, their
    mean difference with its 95% bootstrap interval and the paired permutation test's p-value."""
    summary, frame = load_masses(profile)
    if frame is None:
        return {"available": False, "reason": summary["reason"], "left_out": summary.get("left_out", {})}
    full = frame[~frame["empty"].astype(bool)]
    out = {"available": True, "photographs": len(frame), "empty": len(frame) - len(full),
           "left_out": summary.get("left_out", {})}
    if len(full) < 2:
        return out | {"available": False,
                      "reason": f"{len(full)} photograph(s) with a non-empty map: too few to compare"}
    mass, area = full["object_mass"].to_numpy(float), full["area_share"].to_numpy(float)
    ci = bootstrap(np.mean, [mass - area], n=n_boot, seed=seed)
    test = paired_permutation_test(mass, area, seed=seed)
    return out | {"mass_on_objects": float(mass.mean()), "area_share": float(area.mean()),
                  "difference": ci["estimate"], "low": ci["low"], "high": ci["high"], "p_value": test["p_value"],
                  "more_on_objects": float((mass > area).mean())}


def mass_table(profile, n_boot: int = 2000) -> pd.DataFrame:
    """The check as a one-column table (or one row saying it is not available, and why)."""
    m = mass_check(profile, n_boot)
    if not m["available"]:
        return pd.DataFrame({"value": {NOT_AVAILABLE: m["reason"]}}).rename_axis("Grad-CAM object check")
    rows = {
        "real test photographs with annotated objects": m["photographs"],
        "maps zero everywhere (left out)": m["empty"],
        "mean Grad-CAM mass on the objects": f"{m['mass_on_objects']:.3f}",
        "mean share of the area the objects cover (a uniform map's mass)": f"{m['area_share']:.3f}",
        "difference, mass - area (95% bootstrap interval)":
            f"{m['difference']:+.3f} [{m['low']:+.3f}, {m['high']:+.3f}]",
        "paired permutation test, p": f"{m['p_value']:.3g}",
        "photographs whose map favours the objects": f"{m['more_on_objects']:.0%}",
        "photographs left out (no drawable objects)":
            ", ".join(f"{k}: {v}" for k, v in m["left_out"].items()) or "none",
    }
    return pd.DataFrame({"value": rows}).rename_axis("Grad-CAM object check")


def mass_text(profile) -> str:
    """One sentence for the chapter's prose, written from the numbers."""
    m = mass_check(profile)
    if not m["available"]:
        return f"The object check is {NOT_AVAILABLE}: {m['reason']}."
    where = ("more on the objects than" if m["low"] > 0 else "less on the objects than" if m["high"] < 0
             else "no more on the objects than")
    return (f"Over {m['photographs'] - m['empty']} real test photographs, the maps put {m['mass_on_objects']:.1%} "
            f"of their mass on COCO's objects, which cover {m['area_share']:.1%} of the image on average: "
            f"{where} a uniform map would (difference {m['difference']:+.3f}, 95% interval "
            f"[{m['low']:+.3f}, {m['high']:+.3f}], paired permutation p = {m['p_value']:.3g}).")


def mass_plot(profile):
    """Each photograph's map mass on its objects against their area share; on the diagonal a map
    is no more drawn to the objects than a uniform one."""
    summary, frame = load_masses(profile)
    fig, ax = plt.subplots(figsize=(4.2, 4.0))
    if frame is None:
        ax.text(0.5, 0.5, textwrap.fill(f"{NOT_AVAILABLE}: {summary['reason']}", 45), ha="center", va="center",
                fontsize=7, transform=ax.transAxes)
    else:
        full = frame[~frame["empty"].astype(bool)]
        ax.scatter(full["area_share"], full["object_mass"], s=10, alpha=0.6)
    ax.plot([0, 1], [0, 1], color="gray", lw=1, ls="--", label="uniform map")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="objects' share of the image area",
           ylabel="Grad-CAM mass on the objects", title="Where the evidence for 'generated' lies")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    return fig
