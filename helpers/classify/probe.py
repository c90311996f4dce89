"""Chapter 6: the CLIP linear probe (UniversalFakeDetect's recipe): fit on frozen features, and its evaluations.

``python -m helpers probe --profile P [--batch-size N] [--force]``

Ojha et al. (CVPR 2023) fit a linear classifier on the frozen image features of CLIP's ViT-L/14
and found it generalizes to generators it never saw. We fit a logistic regression (scikit-learn,
L-BFGS, as CLIP's own linear probes) on the features (:mod:`helpers.classify.clip_features`) of
the rows Chapter 4's classifier trains on: every real training photograph, the generated training
images and Chapter 2's augmented generated ones. The inverse regularization strength C is chosen
from ``probe_c_grid`` by the validation split's log loss (originals only; ties: the smaller C,
the simpler model), and the probe is that fit, on the training rows alone: the validation images
choose, they are not learned from, as for the ConvNeXt (which they early-stop).

The probe (its C, weights and the validation grid) goes to ``results/<profile>/probe/<model>.json``.
It is then scored as ``evaluate`` scores the classifier, into ``results/<profile>/eval/<name>/``
(``predictions.csv``, ``metrics.json``; names ``probe-<model>_test``, ``probe-<model>_<folder>``
and ``probe-<model>_<folder>+real-test``): the test split, each DALL-E 2 / Imagen folder alone
(the share called generated) and with the real test photographs (balanced accuracy, ROC-AUC, AP).
A rerun reads everything back; features are never encoded twice (``--force`` refits and
re-scores from the cached features).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from ..augment import training_set
from ..core.files import atomic_write_text, slug
from ..core.paths import data_root, results_root, shown
from ..core.profiles import add_profile_arguments
from ..data import manifest as mf
from ..inpaint.step import external_folders
from .classifier import EvaluateError, default_checkpoint
from .clip_features import FeatureModel, ProbeError, cached_features, describe, model_key
from .eval_files import checkpoint_stamp, eval_name, fingerprint, load_result, reusable
from .evaluation import save_scores
from .image_sets import Part, check_prepared, image_parts
from .loaders import validation_rows
from .prediction import THRESHOLD
from .reencode import common_format

SHOWN = ("n_real", "n_generated", "accuracy", "balanced_accuracy", "roc_auc", "average_precision")


def c_grid(value: str) -> np.ndarray:
    """``"1e-4:1e4:17"`` -> 17 values of C from 1e-4 to 1e4, log-spaced."""
    try:
        low, high, n = value.split(":")
        low, high, n = float(low), float(high), int(n)
    except ValueError:
        low = high = n = 0
    if not (0 < low <= high and n >= 1):
        raise ProbeError(f"setting 'probe_c_grid' takes LOW:HIGH:N (0 < LOW <= HIGH, N >= 1 values, "
                         f"log-spaced), e.g. 1e-4:1e4:17; got {value!r}")
    return np.logspace(np.log10(low), np.log10(high), n)


def fit_probe(x_train, y_train, x_val, y_val, grid, max_iter: int = 1000) -> dict:
    """The logistic regression of the C in ``grid`` with the lowest validation log loss (ties: the
    smaller C), fit on the training rows. ``{"C", "coef", "intercept", "grid"}``; ``grid`` is a
    DataFrame of C, validation log loss and accuracy."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss

    y_train, y_val = np.asarray(y_train, int), np.asarray(y_val, int)
    for name, y in (("training", y_train), ("validation", y_val)):
        if len(np.unique(y)) < 2:
            raise ProbeError(f"the {name} rows hold one class only: the probe needs real and generated "
                             f"images (run the data, generate and augment steps first)")
    rows, fits = [], []
    for c in np.sort(np.asarray(grid, float)):
        with warnings.catch_warnings():  # recorded per C instead (a separable set never converges at large C)
            warnings.simplefilter("ignore", ConvergenceWarning)
            fit = LogisticRegression(C=c, max_iter=max_iter).fit(x_train, y_train)
        p = fit.predict_proba(x_val)[:, 1]
        rows.append({"C": c, "val_log_loss": log_loss(y_val, p, labels=[0, 1]),
                     "val_accuracy": float(np.mean((p >= THRESHOLD) == y_val)),
                     "converged": bool(fit.n_iter_[0] < max_iter)})
        fits.append(fit)
    table = pd.DataFrame(rows)
    best = int(np.argmin(np.round(table["val_log_loss"].to_numpy(), 12)))
    chosen = fits[best]
    return {"C": float(table["C"][best]), "coef": chosen.coef_[0].tolist(),
            "intercept": float(chosen.intercept_[0]), "grid": table}


def probe_scores(probe: dict, features: np.ndarray) -> np.ndarray:
    """P(generated) of each row of ``features`` (NaN rows stay NaN: images that could not be read)."""
    z = np.asarray(features, float) @ np.asarray(probe["coef"], float) + probe["intercept"]
    return 1.0 / (1.0 + np.exp(-z))


def probe_path(profile) -> Path:
    """``results/<profile>/probe/<model>.json``: the fitted probe (evaluations are named after it)."""
    return results_root(profile.name) / "probe" / f"{slug(profile.probe_model)}.json"


def _part_features(profile, name: str, part: Part, model, key: str, skipped: dict, batch_size: int):
    """Features of one part: the study's images as stored, a folder's in the common format first."""
    reformat = (lambda img: common_format(img, profile)) if part.from_folder else None
    source = part.files[0].parent if part.from_folder and part.files else data_root()
    return cached_features(profile, name, part.files, source, model, key=key, reformat=reformat,
                           skipped=skipped, min_side=profile.min_side if part.from_folder else 1,
                           batch_size=batch_size)


def _study_features(profile, name: str, frame: pd.DataFrame, model, key: str, batch_size: int):
    """Features and labels of the study's own rows (training, validation): every image must read."""
    part = Part(pd.DataFrame({"path": frame["path"].astype(str).tolist(),
                              "label": frame["label"].astype(int).tolist()}), False)
    check_prepared(part.files)
    skipped: dict = {}
    x, encoded = _part_features(profile, name, part, model, key, skipped, batch_size)
    check_prepared(part.files, skipped)
    return x, part.frame["label"].to_numpy(int), encoded


def fit(profile, model: FeatureModel, key: str, *, batch_size: int = 16, force: bool = False) -> dict:
    """The probe fit on the training rows with C chosen on validation, or read back when it was
    fit before from the same features and grid."""
    path, grid = probe_path(profile), c_grid(profile.probe_c_grid)
    frame = mf.load(profile.name)
    train, val = training_set(frame, profile), validation_rows(frame)
    started = time.perf_counter()
    x_train, y_train, n1 = _study_features(profile, "train", train, model, key, batch_size)
    x_val, y_val, n2 = _study_features(profile, "val", val, model, key, batch_size)
    stamp = {"model_key": key, "c_grid": profile.probe_c_grid, "train": fingerprint(_files(train)),
             "val": fingerprint(_files(val))}
    old = _read_json(path)
    if not force and old is not None and old.get("stamp") == stamp:
        print(f"probe: {shown(str(path))} (already fit on these features)")
        return old
    probe = fit_probe(x_train, y_train, x_val, y_val, grid)
    augmented = int(train["source"].isin(mf.AUGMENTED_SOURCES).sum())
    saved = {**probe, "grid": probe["grid"].to_dict(orient="list"), "stamp": stamp, "features": describe(profile),
             "model": profile.probe_model, "pretrained": profile.probe_pretrained,
             "train": {"n_real": int((y_train == 0).sum()), "n_generated": int((y_train == 1).sum()),
                       "augmented": augmented},
             "val": {"n_real": int((y_val == 0).sum()), "n_generated": int((y_val == 1).sum())},
             "encoded_now": n1 + n2, "seconds": round(time.perf_counter() - started, 3)}
    atomic_write_text(path, json.dumps(saved, indent=2))
    print(f"probe: C = {saved['C']:g} of {len(grid)} (validation log loss), fit on {len(y_train)} "
          f"training images ({augmented} augmented), {n1 + n2} encoded now: {shown(str(path))}")
    if len(grid) > 1 and np.isclose(saved["C"], [grid.min(), grid.max()]).any():
        print(f"note: C = {saved['C']:g} is at the edge of probe_c_grid={profile.probe_c_grid}: a wider grid "
              f"(--set probe_c_grid=LOW:HIGH:N) may fit the validation split better")
    return saved


def _files(frame: pd.DataFrame) -> list[Path]:
    return Part(frame[["path"]].astype(str), False).files


def _set_features(profile, part: Part, model, key: str, skipped: dict, batch_size: int) -> np.ndarray:
    """Features of one part of an evaluation: the test split's (every image must read; cache
    ``test``) or a folder's (bad files skipped; cache ``folder-<name>``)."""
    study = [] if part.from_folder else part.files
    check_prepared(study)
    cache = f"folder-{slug(part.files[0].parent.name)}" if part.from_folder and part.files else "test"
    x, _ = _part_features(profile, cache, part, model, key, skipped, batch_size)
    check_prepared(study, skipped)
    return x


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def evaluate_probe(profile, probe: dict, model: FeatureModel, key: str, images_dir=None, label=None,
                   real=None, *, batch_size: int = 16, force: bool = False) -> dict:
    """Score one set with the probe and write it as ``evaluate`` writes (``results/<p>/eval/<name>/``)."""
    set_name, parts, held = image_parts(profile, images_dir, label, real)
    name = eval_name(probe_path(profile), set_name)
    settings = {**checkpoint_stamp(probe_path(profile)), "set": set_name, **held, "label": label,
                "reencode": None, "threshold": THRESHOLD, "train_model": f"linear probe on {profile.probe_model}",
                "model_key": key, "inputs": fingerprint([f for part in parts for f in part.files])}
    old = None if force else reusable(profile, name, settings)
    if old is not None:
        print(f"evaluation {name}: {shown(str(old['dir']))} (already computed for this probe and these images)")
        return old | {"reused": True}
    skipped: dict = {}
    xs = [_set_features(profile, part, model, key, skipped, batch_size) for part in parts]
    width = len(probe["coef"])  # a part none of whose files could be read has no feature columns
    probs = probe_scores(probe, np.concatenate([x if x.shape[1] else np.full((len(x), width), np.nan) for x in xs]))
    if np.isnan(probs).all():
        raise ProbeError(f"none of the images of {images_dir or 'the test split'} could be read; first "
                         f"reasons: {list(skipped.values())[:3]}")
    return save_scores(profile, name, settings, parts, probs, skipped, None, f"probe {name}")


def evaluation_sets(profile) -> dict[str, tuple]:
    """``{label: (images_dir, label, real)}`` of each evaluation, as ``evaluate`` takes them (Chapter 5):
    the test split, then each other generator's folder alone and with the real test photographs
    (smoke's stand-in folders are made here if Chapter 5 has not made them)."""
    out: dict[str, tuple] = {"test split": (None, None, None)}
    for name, folder in external_folders(profile, profile.transfer_count or None).items():
        out[name] = (folder, "generated", None)
        out[f"{name} + real test"] = (folder, "generated", "test")
    return out


def run(profile, *, batch_size: int = 16, force: bool = False, device=None) -> dict:
    """The ``probe`` step: features (cached), the fit, every evaluation. ``{"probe": the fitted
    probe (as :func:`fit`), "evaluations": {set label: result as evaluate returns it}}``."""
    model, key = FeatureModel(profile, device), model_key(profile)
    probe = fit(profile, model, key, batch_size=batch_size, force=force)
    evaluations = {label: evaluate_probe(profile, probe, model, key, *spec, batch_size=batch_size, force=force)
                   for label, spec in evaluation_sets(profile).items()}
    return {"probe": probe, "evaluations": evaluations}


class ProbeScorer:
    """P(generated) of PIL images by the fitted probe: what Chapter 6's robustness curves score
    under each degradation. ``stamp`` names what the scores depend on (for a resumable step)."""

    def __init__(self, profile, device=None):
        path = probe_path(profile)
        self.probe = _read_json(path)
        if self.probe is None:
            raise ProbeError(f"{shown(str(path))} holds no fitted probe: run `python -m helpers probe "
                             f"--profile {profile.name}` first")
        key = model_key(profile)
        if self.probe["stamp"]["model_key"] != key:
            raise ProbeError(f"{shown(str(path))} was fit on another model's features than {profile.probe_model} "
                             f"({profile.probe_pretrained}): run `python -m helpers probe --profile {profile.name}`")
        self.model = FeatureModel(profile, device)
        self.stamp = {**checkpoint_stamp(path), "model_key": key}

    def predict(self, images: list, batch_size: int = 16) -> np.ndarray:
        """P(generated) of each PIL image, in order (through the model's own preprocessing)."""
        chunks = [self.model.encode(images[i:i + batch_size]) for i in range(0, len(images), batch_size)]
        return probe_scores(self.probe, np.concatenate(chunks)) if chunks else np.zeros(0)


def c_table(profile) -> pd.DataFrame:
    """The validation grid of the fitted probe: C, validation log loss and accuracy, and which C won."""
    probe = _read_json(probe_path(profile))
    if probe is None:
        raise ProbeError(f"no fitted probe at {shown(str(probe_path(profile)))}: run `python -m helpers "
                         f"probe --profile {profile.name}` first")
    table = pd.DataFrame(probe["grid"])
    table["chosen"] = np.isclose(table["C"], probe["C"])
    return table


def comparison(profile) -> pd.DataFrame:
    """The probe beside Chapter 4's classifier on each set both were evaluated on: one row per set
    and model (``set``, ``model``, ``n_real``, ``n_generated``, ``accuracy`` -- on a folder alone, the
    share called generated --, ``balanced_accuracy``, ``roc_auc``, ``average_precision``); a set the
    classifier was not evaluated on shows the probe alone."""
    models = {f"linear probe on {profile.probe_model}": probe_path(profile),
              f"{profile.train_model} (Chapter 4)": default_checkpoint(profile)}
    rows = []
    for label, spec in evaluation_sets(profile).items():
        set_name = image_parts(profile, *spec)[0]
        for model, checkpoint in models.items():
            try:
                m = load_result(profile, eval_name(checkpoint, set_name))["metrics"]
            except EvaluateError:  # not evaluated (yet)
                continue
            rows.append({"set": label, "model": model, **{k: m.get(k) for k in SHOWN}})
    return pd.DataFrame(rows, columns=["set", "model", *SHOWN])


def add_parser(subparsers) -> None:
    """Register ``python -m helpers probe``."""
    p = subparsers.add_parser("probe", help="the CLIP linear probe: features (cached), the fit with C chosen "
                              "on validation, its evaluations (Chapter 6)")
    add_profile_arguments(p, "probe_c_grid=1e-2:1e2:9")
    p.add_argument("--batch-size", type=int, default=16, help="images per forward pass of the encoder")
    p.add_argument("--force", action="store_true", help="refit and score again (the features stay cached)")


def main(args: argparse.Namespace, profile) -> int:
    """Run the parsed ``probe`` command; print the C chosen and each evaluation's metrics."""
    if args.batch_size < 1:
        raise ProbeError(f"--batch-size must be at least 1, got {args.batch_size}")
    result = run(profile, batch_size=args.batch_size, force=args.force)
    print(describe(profile))
    table = comparison(profile)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4f}", na_rep="-"))
    print(f"files: {shown(str(probe_path(profile)))}, "
          + ", ".join(shown(str(r["dir"])) for r in result["evaluations"].values()))
    return 0
