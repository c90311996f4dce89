"""Chapter 5: the ablation, read back from the runs: the grid, Table 3 with seeds and intervals, paired tests, cost.

Every run is an ordinary ``train``/``evaluate`` command (:mod:`helpers.book.ch5_runs` lists which);
this module only reads ``results/<profile>/train/<run>/`` and ``results/<profile>/eval/<run>-best_test/``
and puts the four backbones side by side with the paper's Table 3. Uncertainty is shown the way
each number needs: Wilson intervals for an accuracy (informative at 100%, where a percentile
bootstrap gives [1, 1]), BCa intervals stratified by class for ROC-AUC, AP and the differences
between backbones, the sd over seeds beside each mean, and Holm's correction across the paired
tests of a table.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ..classify import backbones, eval_files
from ..classify.classifier import EvaluateError
from ..classify.metrics import paired_difference_ci, paired_difference_test, seed_mean_ci
from ..classify.models import build_model, count_flops
from ..core import paper
from ..core.files import atomic_write_text
from ..core.paths import results_root
from ..core.profiles import PROFILES, lr_grid
from ..core.stats import holm
from . import ch4_train, chapter
from .ch5_runs import Trial, choose, chosen_trials, finished_metrics, seeds, sizes

DIFFERENCES = (("accuracy", "accuracy"), ("ROC-AUC", "roc_auc"))  # compared between backbones


def run_steps(profile, overrides, steps, nproc: int) -> None:
    """Run (or show) ``(command, args)`` steps of :mod:`helpers.book.ch5_runs` from the chapter."""
    for command, args in steps:
        chapter.run_step(command, profile, overrides, *args, nproc=nproc if command == "train" else 1, tail=1)


def grid_table(profile) -> pd.DataFrame:
    """Every run of the learning-rate grid: its best validation loss and epoch, and which rate was
    kept per backbone (on validation loss only; the test split is not looked at)."""
    rows = {}
    for key, record in choose(profile)["backbones"].items():
        for lr_name, run in record["runs"].items():
            rows[(backbones.LABELS[key], lr_name)] = {
                "run folder": f"train/{run['run']}", "finished": run["finished"],
                "best validation loss": run.get("best_val_loss"), "best epoch": run.get("best_epoch"),
                "epochs run": run.get("epochs"), "chosen": run["lr"] == record["chosen_lr"]}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    return frame.rename_axis(["backbone", "learning rate"]) if len(frame) else frame


def _size(profile, size: int | None) -> int:
    return profile.train_img_size if size is None else size


def evaluated(profile, size: int | None = None) -> dict[str, list[tuple[Trial, dict]]]:
    """``{key: [(trial, evaluation), ...]}``: the chosen rate's seeds evaluated so far at ``size``."""
    choice, out = choose(profile), {}
    for key in backbones.LABELS:
        found = []
        for trial in chosen_trials(profile, key, _size(profile, size), choice):
            try:
                found.append((trial, eval_files.load_result(profile, trial.eval_name(profile))))
            except EvaluateError:
                continue
        if found:
            out[key] = found
    return out


def evaluations(profile, size: int | None = None) -> dict[str, dict]:
    """``{key: evaluation}`` of each backbone's first evaluated seed, in Table 3's order."""
    return {key: runs[0][1] for key, runs in evaluated(profile, size).items()}


def _spread(values: list[float]) -> tuple[float, float, str]:
    """Mean, sd (n - 1; NaN for one seed) and every value, as Table 3 shows them."""
    arr = np.asarray(values, dtype=float)
    sd = float(arr.std(ddof=1)) if len(arr) > 1 else float("nan")
    return float(arr.mean()), sd, ", ".join(f"{v:.4f}" for v in arr)


def _interval(ci: dict) -> str:
    text = f"{ci['low']:.4f} .. {ci['high']:.4f}"
    return text + (" (no error to resample)" if ci.get("note") and ci["low"] == ci["high"] else "")


def _probabilities(runs: list[tuple[Trial, dict]]) -> tuple[np.ndarray, pd.DataFrame]:
    """The labels and one column of P(generated) per seed, on the images every seed scored."""
    frames = [r["predictions"].set_index("path") for _, r in runs]
    shared = frames[0].index
    for f in frames[1:]:
        shared = shared.intersection(f.index)
    return frames[0].loc[shared, "label"].to_numpy(), pd.DataFrame(
        {t.seed: f.loc[shared, "p_generated"].to_numpy() for (t, _), f in zip(runs, frames)}, index=shared)


def _table3_row(profile, key: str, runs: list[tuple[Trial, dict]], n_boot: int) -> dict:
    metrics = [r["metrics"] for _, r in runs]
    y, p = _probabilities(runs)
    row = {"model (ours)": backbones.models(profile)[key], "input (px)": runs[0][0].img_size,
           "learning rate (chosen)": runs[0][0].lr, "seeds": f"{len(runs)} of {len(seeds(profile))}",
           "test images": metrics[0]["n"]}
    for name, field in (("accuracy", "accuracy"), ("F1", "f1"), ("ROC-AUC", "roc_auc"), ("AP", "average_precision")):
        values = [m[field] for m in metrics]
        if any(v is None for v in values):
            continue
        row[f"{name} (ours)"], row[f"{name} sd"], row[f"{name} per seed"] = _spread(values)
        if field in ("roc_auc", "average_precision"):
            ci = seed_mean_ci(y, p.to_numpy(), field, n=n_boot, seed=profile.seed)
            row[f"{name} 95% interval (BCa, by class)"] = _interval(ci)
    return row


def table3(profile, size: int | None = None, n_boot: int = 2000) -> pd.DataFrame:
    """Table 3 at one input size (default ``train_img_size``): per backbone the mean over its seeds
    of accuracy, F1, ROC-AUC and AP, their sd and each seed's value, BCa intervals of the mean
    ROC-AUC and AP (images resampled within each class), next to the paper's numbers.

    One row per backbone with at least one evaluated seed (empty when none is).
    """
    rows = {}
    for key, runs in evaluated(profile, size).items():
        label = backbones.LABELS[key]
        acc, f1, auc = paper.TABLE3[label]
        rows[label] = _table3_row(profile, key, runs, n_boot) | {
            "accuracy (paper)": acc, "F1 (paper)": f1, "ROC-AUC (paper)": auc}
    return pd.DataFrame.from_dict(rows, orient="index").round(4)


def seed_table(profile, size: int | None = None) -> pd.DataFrame:
    """Every evaluated run of Table 3: the accuracy with its Wilson 95% interval (from
    :func:`helpers.classify.metrics.binary_metrics`), the per-class accuracies, ROC-AUC and AP."""
    rows = {}
    for key, runs in evaluated(profile, size).items():
        for trial, result in runs:
            m = result["metrics"]
            rows[(backbones.LABELS[key], trial.seed)] = {
                "run folder": f"train/{trial.folder(profile).name}", "accuracy": m["accuracy"],
                "accuracy 95% interval (Wilson)": f"{m['accuracy_low']:.4f} .. {m['accuracy_high']:.4f}",
                "accuracy on real": m["accuracy_real"], "accuracy on generated": m["accuracy_generated"],
                "ROC-AUC": m["roc_auc"], "AP": m["average_precision"]}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    return frame.rename_axis(["backbone", "seed"]).round(4) if len(frame) else frame


def _compare(profile, ref: list, other: list, n_boot: int) -> list[dict]:
    """One row per metric of :data:`DIFFERENCES`: other minus reference on their shared images."""
    y_ref, p_ref = _probabilities(ref)
    _, p_other = _probabilities(other)
    shared = p_ref.index.intersection(p_other.index)
    y = pd.Series(y_ref, index=p_ref.index)[shared].to_numpy()
    a, b = p_ref.loc[shared].to_numpy(), p_other.loc[shared].to_numpy()
    rows = []
    for name, metric in DIFFERENCES:
        ci = paired_difference_ci(y, a, b, metric, n=n_boot, seed=profile.seed)
        test = paired_difference_test(y, a, b, metric, n_resamples=n_boot, seed=profile.seed)
        rows.append({"metric": name, "images": len(shared), "difference (points)": ci["estimate"] * 100,
                     "95% interval (points, BCa by class)": f"{ci['low'] * 100:+.2f} .. {ci['high'] * 100:+.2f}",
                     "p-value (paired permutation)": test["p_value"]})
    return rows


def paired_tests(profile, reference: str = backbones.DEFAULT, size: int | None = None,
                 n_boot: int = 2000) -> pd.DataFrame:
    """Each backbone against ``reference`` (ConvNeXt) on the same test images: the difference in
    accuracy and in ROC-AUC (this model minus the reference, means over seeds, in points), its BCa
    interval stratified by class, a paired permutation test, and Holm's correction across every test
    of the table (a gap is called real only when its adjusted p-value is below 0.05)."""
    runs = evaluated(profile, size)
    if reference not in runs:
        return pd.DataFrame()
    rows = {}
    for key, other in runs.items():
        if key != reference:
            for row in _compare(profile, runs[reference], other, n_boot):
                rows[(f"{backbones.LABELS[key]} vs {backbones.LABELS[reference]}", row.pop("metric"))] = row
    if not rows:
        return pd.DataFrame()
    frame = pd.DataFrame.from_dict(rows, orient="index").rename_axis(["comparison", "metric"])
    frame["Holm-adjusted p"] = holm(frame["p-value (paired permutation)"].to_numpy())
    frame["real at 5% (Holm)"] = frame["Holm-adjusted p"] < 0.05
    return frame.round({"difference (points)": 2, "p-value (paired permutation)": 4, "Holm-adjusted p": 4})


def roc_figure(profile, size: int | None = None):
    """The evaluated backbones' ROC curves on the test split (first seed of each), overlaid."""
    results = {backbones.LABELS[k]: r for k, r in evaluations(profile, size).items()}
    return ch4_train.roc_figure(results, title=f"ROC curves on the test split ({profile.name}, "
                                               f"{_size(profile, size)} px, first seed)")


def model_size(profile, key: str, img_size: int | None = None) -> dict:
    """Parameters and forward GFLOPs per image of one backbone at ``img_size`` (random weights, on the
    CPU; cached in ``results/<profile>/ablation/size_<key>_<px>.json``)."""
    mp = backbones.for_model(profile, key, img_size=img_size)
    path = results_root(profile.name) / "ablation" / f"size_{key}_{mp.train_img_size}.json"
    if path.exists():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("model") == mp.train_model and saved.get("img_size") == mp.train_img_size:
            return saved
    model = build_model(mp, pretrained="none")
    saved = {"model": mp.train_model, "img_size": mp.train_img_size,
             "parameters_m": sum(p.numel() for p in model.parameters()) / 1e6,
             "gflops_per_image": count_flops(model, mp.train_img_size) / 1e9}
    atomic_write_text(path, json.dumps(saved, indent=2))
    return saved


def cost_table(profile) -> pd.DataFrame:
    """Per backbone and input size (first seed of the chosen rate): parameters, forward GFLOPs per
    image, epochs, median time per epoch (training and validation), training images/s and peak
    memory, from ``metrics.csv``."""
    rows, choice = {}, choose(profile)
    for px in sizes(profile):
        for key in backbones.LABELS:
            trials = chosen_trials(profile, key, px, choice)
            m = finished_metrics(profile, trials[0].folder(profile)) if trials else None
            if m is None:
                continue
            size = model_size(profile, key, px)
            memory = m["peak_memory_mb"].max() if "peak_memory_mb" in m else np.nan
            rows[(backbones.LABELS[key], px)] = {
                "model (ours)": size["model"], "parameters (M)": size["parameters_m"],
                "GFLOPs per image": size["gflops_per_image"], "epochs run": len(m),
                "best epoch": int(m.loc[m["val_loss"].idxmin(), "epoch"]),
                "seconds per epoch (median)": float(m["seconds"].median()),
                "training images/s (median)": float(m["images_per_s"].median()),
                "peak memory (MiB)": float(memory)}
    frame = pd.DataFrame.from_dict(rows, orient="index")
    return frame.rename_axis(["backbone", "input (px)"]).round(3) if len(frame) else frame


def setup_table() -> pd.DataFrame:
    """The four backbones in every profile: the model, the input sizes, the grid, the seeds, the command."""
    rows = []
    for p in PROFILES.values():
        for key, name in backbones.models(p).items():
            rows.append({"profile": p.name, "Table 3 row": backbones.LABELS[key], "model": name,
                         "input (px)": ", ".join(map(str, sizes(p))), "pretrained": p.train_pretrained,
                         "learning rates tried": ", ".join(backbones.lr_text(v) for v in lr_grid(p.ablation_lr_grid)),
                         "seeds": ", ".join(map(str, seeds(p))),
                         "command": f"train --profile {p.name} --model {key} [--lr LR] [--seed S] [--img-size PX]"})
    return pd.DataFrame(rows).set_index(["profile", "Table 3 row"])


def prediction_speed(profile) -> pd.DataFrame:
    """How fast each evaluation of this profile predicted (images/s, device), as it recorded."""
    rows = {}
    folder = results_root(profile.name) / "eval"
    for path in sorted(folder.glob("*/metrics.json")) if folder.exists() else []:
        speed = json.loads(path.read_text(encoding="utf-8")).get("speed")
        if speed:
            rows[path.parent.name] = speed
    return pd.DataFrame.from_dict(rows, orient="index")
