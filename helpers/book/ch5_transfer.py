"""Chapter 5: the transfer test, the Stable-Diffusion-trained classifier on other generators' images.

The paper reports 4.74% on DALL-E 2 images and 91.19% on Imagen images (section 6): accuracies on
generated images alone, i.e. the share of each set called generated. We report that number the
same way, and, with the study's real test photographs added (``--real test``), balanced accuracy,
ROC-AUC and AP, which say whether the classifier still *ranks* those images above photographs.

Folders come from the profile (``dalle2_dir``, ``imagen_dir``); in ``smoke`` they are stand-ins,
images of two differently configured tiny random generators (:func:`helpers.inpaint.step.standin_folder`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..classify.classifier import EvaluateError, default_checkpoint
from ..classify.eval_files import eval_name, load_result, two_class_metrics
from ..core import paper
from ..core.files import atomic_write_text
from ..data.real_data import processed_path
from ..inpaint.step import EXTERNAL, external_folders, standin_path
from .ch4_train import false_negative_grid
from .figures import image_grid

CATEGORIES = ("photo", "artwork", "illustration")  # the kinds the paper found fooled the classifier


def generators(profile) -> dict[str, Path]:
    """``{"DALL-E 2": folder, "Imagen": folder}`` for the folders this profile names (not made)."""
    return external_folders(profile)


def prepare(profile) -> dict[str, Path]:
    """The folders, with smoke's stand-ins made (``transfer_count`` images each) if needed.

    Both folders are optional (the ``course`` default has neither): each one missing is named, with
    the setting that adds it, and the chapter's transfer tables and figures say "not evaluated".
    """
    folders = external_folders(profile, profile.transfer_count)
    for name, setting in EXTERNAL.items():
        if name not in folders:
            print(f"no {name} folder given: its transfer test is skipped. Add one with "
                  f"--set {setting}=/path/to/images (or overrides = {{'{setting}': '/path'}}); "
                  f"Chapter 3 names public sources.")
    return folders


def predict_target(profile, folders: dict[str, Path]) -> Path:
    """What the chapter's ``predict`` example reads: the first other generator's folder, else the
    study's own generated test images (always there once Chapter 1 has run)."""
    if folders:
        return next(iter(folders.values()))
    folder = processed_path(profile, "generated", "test", "x").parent
    print("no other generator's folder: predicting on our own generated test images instead")
    return folder


def evaluations(profile, folders: dict[str, Path]) -> list[tuple[str, ...]]:
    """The ``evaluate`` arguments of the transfer test: each folder alone (the paper's measure; with
    smoke's stand-in categories) and with the real test photographs added."""
    out = []
    for name, folder in folders.items():
        categories = standin_categories(profile, name) if profile.name == "smoke" else None
        extra = ("--categories", str(categories)) if categories else ()
        out.append(("--images", str(folder), "--label", "generated", *extra))
        out.append(("--images", str(folder), "--label", "generated", "--real", "test"))
    return out


def standin_categories(profile, name: str) -> Path:
    """A categories CSV for a stand-in folder: the kinds assigned in turn, so that the breakdown
    runs; they say nothing about what the stand-in images show."""
    folder = standin_path(profile, name)
    files = sorted(p.name for p in folder.glob("*.png"))
    table = pd.DataFrame({"file": files, "category": [CATEGORIES[i % len(CATEGORIES)] for i in range(len(files))]})
    path = folder.parent / f"categories_{folder.name}.csv"
    atomic_write_text(path, table.to_csv(index=False))
    return path


def names(profile, name: str) -> tuple[str, str]:
    """The evaluations of generator ``name``: generated alone, and with the real test photographs."""
    folder = generators(profile)[name]
    checkpoint = default_checkpoint(profile)
    return eval_name(checkpoint, folder.name), eval_name(checkpoint, f"{folder.name}+real-test")


def results(profile) -> dict[str, dict]:
    """``{generator: {"alone": evaluation, "with_real": evaluation or None}}`` of what was run."""
    out = {}
    for name in generators(profile):
        alone, with_real = names(profile, name)
        try:
            first = load_result(profile, alone)
        except EvaluateError:
            continue
        try:
            second = load_result(profile, with_real)
        except EvaluateError:
            second = None
        out[name] = {"alone": first, "with_real": second}
    return out


def summary(profile) -> pd.DataFrame:
    """One row per generator: the paper's measure (accuracy on generated images alone) ours and the
    paper's, then balanced accuracy, ROC-AUC and AP with the real test photographs (None without)."""
    rows = {}
    for name, pair in results(profile).items():
        m = pair["alone"]["metrics"]
        both = two_class_metrics(pair["with_real"]) if pair["with_real"] else {}
        rows[name] = {"images": m["n_generated"], "accuracy on generated (ours)": m["accuracy"],
                      "accuracy on generated (paper)": paper.TRANSFER_ACCURACY[name],
                      "real test photographs added": both.get("n_real"),
                      "balanced accuracy (ours)": both.get("balanced_accuracy"),
                      "ROC-AUC (ours)": both.get("roc_auc"), "AP (ours)": both.get("average_precision")}
    return pd.DataFrame.from_dict(rows, orient="index")


def category_tables(profile) -> dict[str, pd.DataFrame]:
    """The breakdown by category of each generator that was evaluated with ``--categories``."""
    out = {}
    for name, pair in results(profile).items():
        path = pair["alone"]["dir"] / "categories.csv"
        if path.exists():
            out[name] = pd.read_csv(path).set_index(["true class", "category"])
    return out


def headline(profile) -> dict:
    """The first evaluated generator's name, its accuracy on generated images (ours, the paper's,
    as percentages) and the refusal of two-class metrics on it, for the chapter's prose."""
    done = results(profile)
    if not done:
        return {"generator": "no generator folder", "ours": "not measured", "paper": "-",
                "refusal": "no folder of another generator's images was given (dalle2_dir, imagen_dir)"}
    name = next(iter(done))
    try:
        two_class_metrics(done[name]["alone"])
        refusal = "(this set holds both classes)"
    except EvaluateError as exc:
        refusal = str(exc)
    return {"generator": name, "ours": f"{done[name]['alone']['metrics']['accuracy']:.2%}",
            "paper": f"{paper.TRANSFER_ACCURACY[name]:.2%}", "refusal": refusal}


def false_negative_figure(profile, name: str, n: int = 8):
    """The generator's images called real (the paper's Figs. 7-8), or a note when it was not run."""
    done = results(profile)
    if name in done:
        return false_negative_grid(done[name]["alone"], n=n, closest=True)
    return image_grid([], title=name, note=f"not evaluated: give a folder of {name} images with "
                                            f"--set {EXTERNAL[name]}=/path")
