"""Chapter 5: the ablation, read back from the runs: Table 3, paired tests, ROC curves, training cost.

Every backbone is trained and evaluated by the same commands (``train --model KEY``, ``evaluate
--model KEY``); this module only reads ``results/<profile>/train/<run>/`` and
``results/<profile>/eval/<run>-best_test/`` and puts the four side by side with the paper's Table 3.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ..classify import backbones, eval_files
from ..classify.classifier import EvaluateError, default_checkpoint
from ..classify.metrics import mcnemar, paired_bootstrap
from ..classify.models import build_model, count_flops
from ..classify.train import run_dir
from ..core import paper
from ..core.files import atomic_write_text
from ..core.paths import results_root
from ..core.profiles import PROFILES
from . import ch4_train


def eval_name(profile, key: str) -> str:
    """``<run>-best_test``: the evaluation ``evaluate --model KEY`` writes."""
    return eval_files.eval_name(default_checkpoint(profile, key), "test")


def evaluations(profile) -> dict[str, dict]:
    """``{key: evaluation}`` of the backbones evaluated so far, in Table 3's order."""
    out = {}
    for key in backbones.LABELS:
        try:
            out[key] = eval_files.load_result(profile, eval_name(profile, key))
        except EvaluateError:
            continue
    return out


def table3(profile) -> pd.DataFrame:
    """Accuracy, F1 and ROC-AUC on the test split, ours next to the paper's Table 3.

    One row per evaluated backbone (empty when none is), with our accuracy's 95% bootstrap interval.
    """
    rows = {}
    for key, result in evaluations(profile).items():
        m, ci = result["metrics"], result.get("accuracy_ci95") or {}
        acc, f1, auc = paper.TABLE3[backbones.LABELS[key]]
        rows[backbones.LABELS[key]] = {
            "model (ours)": backbones.models(profile)[key], "test images": m["n"],
            "accuracy (ours)": m["accuracy"], "accuracy 95% interval": _interval(ci),
            "F1 (ours)": m["f1"], "ROC-AUC (ours)": m["roc_auc"],
            "accuracy (paper)": acc, "F1 (paper)": f1, "ROC-AUC (paper)": auc}
    return pd.DataFrame.from_dict(rows, orient="index").round(4)


def _interval(ci: dict) -> str:
    return f"{ci['low']:.4f} .. {ci['high']:.4f}" if ci.get("low") is not None else "-"


def _correct(result: dict) -> pd.Series:
    pred = result["predictions"]
    return pd.Series((pred["predicted"] == pred["label"]).to_numpy(), index=pred["path"].to_numpy())


def paired_tests(profile, reference: str = backbones.DEFAULT, n_boot: int = 2000) -> pd.DataFrame:
    """Each backbone against ``reference`` (ConvNeXt) on the same test images: McNemar's exact test
    and a paired bootstrap interval of the accuracy difference (points, this model minus the
    reference)."""
    results = evaluations(profile)
    if reference not in results:
        return pd.DataFrame()
    ref = _correct(results[reference])
    rows = {}
    for key, result in results.items():
        if key == reference:
            continue
        other = _correct(result)
        shared = ref.index.intersection(other.index)
        a, b = ref[shared].to_numpy(), other[shared].to_numpy()
        test, boot = mcnemar(a, b), paired_bootstrap(a, b, n=n_boot, seed=profile.seed)
        rows[f"{backbones.LABELS[key]} vs {backbones.LABELS[reference]}"] = {
            "images": len(shared), "accuracy difference (points)": boot["difference"] * 100,
            "95% interval (points)": f"{boot['low'] * 100:+.2f} .. {boot['high'] * 100:+.2f}",
            "only the reference right": test["a_only"], "only this model right": test["b_only"],
            "McNemar p-value": test["p_value"],
            "difference is real (p < 0.05)": bool(test["p_value"] < 0.05)}
    return pd.DataFrame.from_dict(rows, orient="index").round({"accuracy difference (points)": 2,
                                                               "McNemar p-value": 4})


def roc_figure(profile):
    """The evaluated backbones' ROC curves on the test split, overlaid."""
    results = {backbones.LABELS[k]: r for k, r in evaluations(profile).items()}
    return ch4_train.roc_figure(results, title=f"ROC curves on the test split ({profile.name})")


def model_size(profile, key: str) -> dict:
    """Parameters and forward GFLOPs per image of one backbone at its input size (random weights,
    on the CPU; cached in ``results/<profile>/ablation/size_<key>.json``)."""
    mp = backbones.for_model(profile, key)
    path = results_root(profile.name) / "ablation" / f"size_{key}.json"
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
    """Per trained backbone: input size, parameters, forward GFLOPs per image, epochs, median time
    per epoch (training and validation), training images/s and peak memory, from ``metrics.csv``."""
    rows = {}
    for key in backbones.LABELS:
        path = run_dir(profile, model=key) / "metrics.csv"
        if not path.exists():
            continue
        m = pd.read_csv(path)
        size = model_size(profile, key)
        memory = m["peak_memory_mb"].max() if "peak_memory_mb" in m else np.nan
        rows[backbones.LABELS[key]] = {
            "model (ours)": size["model"], "input (px)": size["img_size"],
            "parameters (M)": size["parameters_m"], "GFLOPs per image": size["gflops_per_image"],
            "epochs run": len(m), "best epoch": int(m.loc[m["val_loss"].idxmin(), "epoch"]),
            "seconds per epoch (median)": float(m["seconds"].median()),
            "training images/s (median)": float(m["images_per_s"].median()),
            "peak memory (MiB)": float(memory)}
    return pd.DataFrame.from_dict(rows, orient="index").round(3)


def setup_table() -> pd.DataFrame:
    """The four backbones in every profile: the model each trains, its input size, the command."""
    rows = []
    for p in PROFILES.values():
        for key, name in backbones.models(p).items():
            mp = backbones.for_model(p, key)
            rows.append({"profile": p.name, "Table 3 row": backbones.LABELS[key], "model": name,
                         "input (px)": mp.train_img_size, "pretrained": mp.train_pretrained,
                         "run folder": f"train/{backbones.run_name(key)}",
                         "command": f"train --profile {p.name} --model {key}"})
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
