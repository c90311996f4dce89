"""Chapter 6: the ``robustness`` step: a classifier scored on the test split under each degradation and level.

``python -m helpers robustness --profile P [--model KEY | --robust-aug | --probe] [--checkpoint C]``

Every test image (originals of the manifest's test split, both classes) is degraded as stored,
in the study's common format (:mod:`helpers.classify.degrade`), then passed through the model's
own input transform, and scored. ``results/<profile>/robustness/<name>.csv`` gets one row per
degradation and level: the accuracy on each class with its Wilson interval, the ROC-AUC with its
BCa bootstrap interval (resampled within each class), the counts and the seconds it took.
``<name>`` is the checkpoint's run folder (``paper``, ``vgg16``, ``robust``...), with the
checkpoint's own name added when it is not ``best.pt``; ``probe-<model>`` for the CLIP linear probe
(``--probe``), which sees the same degraded images through open_clip's own preprocessing.

The step is resumable per row: the CSV is rewritten whole after each row, and every row carries a
stamp of what it was computed from (checkpoint file, images, levels, transform), so a rerun
computes only the rows missing for the current stamp; a new checkpoint or changed images start
afresh. ``<name>.json`` holds the stamp's settings for a reader.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import backbones
from ..core.files import atomic_write_text, slug
from ..core.paths import results_root, shown
from ..core.profiles import add_profile_arguments
from ..data import manifest as mf
from ..data.images import load_rgb
from .classifier import EvaluateError, checkpoint_path, lazy_classifier
from .degrade import LEVELS, degrade
from .eval_files import checkpoint_stamp, fingerprint
from .evaluation import MODEL_INPUT
from .image_sets import check_prepared, image_file, test_images
from .metrics import binary_metrics, seed_mean_ci
from .prediction import THRESHOLD, predict_images
from .probe import ProbeScorer, probe_path
from .evaluate import trial_run
from .train import ROBUST_RUN, add_trial_arguments, run_folder

COLUMNS = ("degradation", "level", "n_real", "n_generated", "accuracy", "acc_real", "acc_real_low",
           "acc_real_high", "acc_generated", "acc_generated_low", "acc_generated_high", "auc", "auc_low",
           "auc_high", "auc_interval", "seconds", "stamp")
# Resamples of the AUC's BCa interval (per row): the bounds settle to about 0.001 by 1,000.
N_BOOT = 1000


def robustness_dir(profile) -> Path:
    return results_root(profile.name) / "robustness"


def curve_name(checkpoint) -> str:
    """``paper`` for ``train/paper/best.pt``; ``<run>-<file>`` for another checkpoint file."""
    path = Path(str(checkpoint))
    run = slug(path.parent.name or "checkpoint")
    return run if path.name == "best.pt" else f"{run}-{slug(path.stem)}"


def conditions(levels: dict | None = None) -> list[tuple[str, float]]:
    """Every (degradation, level) of the curves, in the order of :data:`helpers.classify.degrade.LEVELS`."""
    return [(kind, level) for kind, values in (levels or LEVELS).items() for level in values]


def robust_checkpoint(profile) -> Path:
    """``results/<profile>/train/robust/best.pt``: the model of ``train --robust-aug``."""
    return run_folder(profile, ROBUST_RUN) / "best.pt"


@dataclass
class Scorer:
    """What the table is of: its file name, what its rows depend on (beside the images), and a
    function ``(files, kind, level) -> P(generated)`` that loads its model on first use only."""

    name: str
    settings: dict
    score: Callable[[list[Path], str, float], np.ndarray]


def run(profile, model: str = backbones.DEFAULT, checkpoint=None, *, robust: bool = False, probe: bool = False,
        device=None, batch_size: int = 16, force: bool = False) -> pd.DataFrame:
    """Score the test split under every degradation and level; the table (also written to
    ``results/<profile>/robustness/<name>.csv``). ``probe`` scores Chapter 6's CLIP linear probe
    instead of a trained classifier. Rows already there for this model and these images are kept;
    ``force`` computes them all again."""
    if probe and (robust or checkpoint or model != backbones.DEFAULT):
        raise EvaluateError("--probe scores the fitted CLIP probe: it goes without --model, --robust-aug and "
                            "--checkpoint")
    if not probe:
        profile = backbones.for_model(profile, model)
    images = test_images(profile)
    files = [image_file(p) for p in images["path"]]
    check_prepared(files)
    scorer = (probe_scorer(profile, device, batch_size) if probe
              else classifier_scorer(profile, _checkpoint(profile, model, checkpoint, robust), device, batch_size))
    settings = scorer.settings | {"levels": {k: list(v) for k, v in LEVELS.items()}, "noise_seed": profile.seed,
                                  "n_boot": N_BOOT, "threshold": THRESHOLD, "inputs": fingerprint(files)}
    stamp, out = _stamp(settings), robustness_dir(profile) / f"{scorer.name}.csv"
    table = _empty() if force else _kept(out, stamp)
    atomic_write_text(out.with_suffix(".json"), json.dumps({"name": scorer.name, "stamp": stamp, **settings},
                                                           indent=2, default=str))
    labels = images["label"].to_numpy(dtype=int)
    for kind, level in conditions():
        if _done(table, kind, level):
            continue
        started = time.perf_counter()
        probs = scorer.score(files, kind, level)
        row = row_metrics(labels, probs, kind, level) | {"seconds": round(time.perf_counter() - started, 3),
                                                        "stamp": stamp}
        table = _ordered(pd.concat([table, pd.DataFrame([row])], ignore_index=True))
        mf.write_csv(table, out)  # whole, after each row: a stop loses at most the row in progress
        print(_line(row), flush=True)
    print(f"robustness {scorer.name}: {shown(str(out))} ({len(table)} rows)")
    return pd.read_csv(out)  # as a reader of the file sees it


def classifier_scorer(profile, checkpoint, device, batch_size: int) -> Scorer:
    """A trained classifier through its own input transform (:func:`predict_images`)."""
    get_model = lazy_classifier(profile, checkpoint)
    settings = {**checkpoint_stamp(checkpoint), "train_model": profile.train_model, "train_head": profile.train_head,
                "train_img_size": profile.train_img_size, "model_input": MODEL_INPUT}

    def score(files, kind, level):
        skipped: dict = {}
        probs = predict_images(get_model(), files, profile.train_img_size, profile.train_head, device, batch_size,
                               reformat=lambda img: degrade(img, kind, level, seed=profile.seed),
                               skipped=skipped, min_side=1, max_pixels=profile.max_pixels)
        check_prepared(files, skipped)  # every test image must be scored
        return probs
    return Scorer(curve_name(checkpoint), settings, score)


def probe_name(profile) -> str:
    """``probe-<model>``: the table of the CLIP linear probe (``probe-vit-l-14``)."""
    return f"probe-{slug(profile.probe_model)}"


def probe_scorer(profile, device, batch_size: int) -> Scorer:
    """The fitted CLIP probe (:class:`~helpers.classify.probe.ProbeScorer`) on the degraded images,
    through open_clip's own preprocessing; loaded at the first row to compute."""
    path = probe_path(profile)
    if not path.is_file():
        raise EvaluateError(f"{shown(str(path))} does not exist: fit the probe first (`python -m helpers probe "
                            f"--profile {profile.name}`)")
    held: list = []

    def score(files, kind, level):
        held or held.append(ProbeScorer(profile, device))
        out = []
        for start in range(0, len(files), batch_size):
            images = [degrade(load_rgb(f, min_side=1, max_pixels=profile.max_pixels), kind, level, seed=profile.seed)
                      for f in files[start:start + batch_size]]
            out.append(held[0].predict(images, batch_size))
        return np.concatenate(out) if out else np.zeros(0)
    return Scorer(probe_name(profile), {**checkpoint_stamp(path), "probe_model": profile.probe_model,
                                        "probe_pretrained": profile.probe_pretrained}, score)


def _checkpoint(profile, model: str, checkpoint, robust: bool):
    """The checkpoint to score: ``--checkpoint``, else the robust run's or the model's run's best."""
    if robust:
        if model != backbones.DEFAULT:
            raise EvaluateError("--robust-aug is Chapter 4's model trained with blur + JPEG: it goes without --model")
        checkpoint = checkpoint or robust_checkpoint(profile)
        if not Path(checkpoint).is_file():
            raise EvaluateError(f"{shown(str(checkpoint))} does not exist: train it first (`python -m helpers "
                                f"train --profile {profile.name} --robust-aug`) or give --checkpoint PATH")
    return checkpoint_path(profile, checkpoint, model)


def _stamp(settings: dict) -> str:
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=list(COLUMNS))


def _kept(out: Path, stamp: str) -> pd.DataFrame:
    """The rows of ``out`` computed with ``stamp``; a file of another checkpoint or other images is
    started afresh (said so), one that is not a robustness table is refused."""
    if not out.exists():
        return _empty()
    try:
        old = pd.read_csv(out)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise EvaluateError(f"{shown(str(out))} cannot be read ({exc}): delete it and run again") from None
    missing = [c for c in COLUMNS if c not in old.columns]
    if missing:
        raise EvaluateError(f"{shown(str(out))} lacks the columns {missing}: it is not a robustness table of "
                            f"this version; delete it and run again")
    kept = old[old["stamp"].astype(str) == stamp]
    if len(kept) < len(old):
        print(f"note: {len(old) - len(kept)} rows of {shown(str(out))} were computed from another checkpoint "
              f"or other images: computed again")
    return kept.reset_index(drop=True)


def _done(table: pd.DataFrame, kind: str, level) -> bool:
    return bool(((table["degradation"] == kind) & np.isclose(table["level"].astype(float), float(level))).any())


def _ordered(table: pd.DataFrame) -> pd.DataFrame:
    """The rows in the order of :func:`conditions`, the columns in :data:`COLUMNS`'s."""
    order = {c: i for i, c in enumerate(conditions())}
    key = [order.get((k, float(v)), len(order)) for k, v in zip(table["degradation"], table["level"])]
    return table.assign(_order=key).sort_values("_order").drop(columns="_order")[list(COLUMNS)] \
        .reset_index(drop=True)


def row_metrics(labels, probs, kind: str, level) -> dict:
    """One row of the table: per-class accuracies with Wilson intervals, ROC-AUC with its BCa interval."""
    m = binary_metrics(labels, probs, THRESHOLD)
    if m["roc_auc"] is None:
        raise EvaluateError(f"the test split holds one class only ({m['note']}): robustness curves need both")
    # BCa, resampled within each class, with numpy's AUC (scikit-learn's value, a hundred times
    # faster: the jackknife recomputes it once per image); one model is a "mean" over one seed
    ci = seed_mean_ci(labels, probs, "roc_auc", n=N_BOOT, seed=0)
    return {"degradation": kind, "level": float(level), "n_real": m["n_real"], "n_generated": m["n_generated"],
            "accuracy": m["accuracy"], "acc_real": m["accuracy_real"], "acc_real_low": m["accuracy_real_low"],
            "acc_real_high": m["accuracy_real_high"], "acc_generated": m["accuracy_generated"],
            "acc_generated_low": m["accuracy_generated_low"], "acc_generated_high": m["accuracy_generated_high"],
            "auc": m["roc_auc"], "auc_low": ci["low"], "auc_high": ci["high"],
            "auc_interval": f"{ci['method']}, {N_BOOT} resamples within each class"}


def _line(row: dict) -> str:
    return (f"  {row['degradation']:<9} {row['level']:>6g}: accuracy real {row['acc_real']:.3f}, generated "
            f"{row['acc_generated']:.3f}, AUC {row['auc']:.3f} [{row['auc_low']:.3f}, {row['auc_high']:.3f}] "
            f"({row['seconds']:.1f} s)")


def load_curves(profile, names: list[str] | None = None) -> dict[str, pd.DataFrame]:
    """``{name: table}`` of the robustness tables written for this profile (all, or ``names``)."""
    folder = robustness_dir(profile)
    found = sorted(folder.glob("*.csv")) if folder.is_dir() else []
    wanted = found if names is None else [folder / f"{n}.csv" for n in names]
    missing = [p for p in wanted if not p.is_file()]
    if missing or not wanted:
        raise EvaluateError(f"no robustness table {', '.join(p.stem for p in missing) or ''} under "
                            f"{shown(str(folder))}: run `python -m helpers robustness --profile {profile.name}` first")
    return {p.stem: pd.read_csv(p) for p in wanted}


# ---------------------------------------------------------------- command line

def add_parser(subparsers) -> None:
    """Register ``robustness`` on ``python -m helpers``'s subparsers."""
    p = subparsers.add_parser("robustness", help="score a classifier on the test split under JPEG, downscaling, "
                              "blur and noise: results/<profile>/robustness/<name>.csv (Chapter 6)")
    add_profile_arguments(p, "train_img_size=224")
    p.add_argument("--model", choices=backbones.KEYS, default=backbones.DEFAULT,
                   help="the backbone of Table 3 whose run to score (default: Chapter 4's model)")
    p.add_argument("--robust-aug", action="store_true",
                   help="score the model of `train --robust-aug` (run folder 'robust')")
    p.add_argument("--checkpoint", default=None, metavar="PATH",
                   help="the trained weights (default: the run's best.pt)")
    add_trial_arguments(p)
    p.add_argument("--probe", action="store_true",
                   help="score the CLIP linear probe of `python -m helpers probe` (table probe-<model>)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--force", action="store_true", help="compute every row again")


def main(args, profile) -> int:
    """Run the parsed ``robustness`` command."""
    checkpoint, profile = trial_run(args, profile)  # --lr/--seed/--img-size: one run of Chapter 5
    run(profile, args.model, checkpoint, robust=args.robust_aug, probe=args.probe, batch_size=args.batch_size,
        force=args.force)
    return 0
