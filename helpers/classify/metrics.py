"""Chapters 4-5: how well a classifier tells generated images (label 1) from photographs (label 0).

Every number comes from scikit-learn; this module only chooses which ones, handles a set that holds
one class only, and adds two things the paper leaves out: a paired test between two models
(McNemar's, exact) and intervals, so that 99.87% on 3,000 images can be read with its uncertainty.
Accuracies get the Wilson score interval (:func:`helpers.core.stats.wilson_interval`), which stays
informative at 100% where a percentile bootstrap gives [1, 1]; any other metric gets a bootstrap
within each class, percentile (the book's one bootstrap, :func:`helpers.core.stats.bootstrap`) or
BCa (:func:`helpers.core.stats.bca_interval`), which corrects for a metric bunched near 1.

Chapter 5 adds several seeds per backbone and comparisons between backbones on the same images:
:func:`seed_mean_ci` (a metric averaged over seeds, with its BCa interval stratified by class),
:func:`paired_difference_ci` (the difference between two models, the same way) and
:func:`paired_difference_test` (a paired permutation test of it, for Holm's correction).

A probability ``p`` is P(generated); an image is predicted generated when ``p >= threshold``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from ..core.stats import bca_interval, bootstrap, paired_permutation_test, wilson_interval

REAL, GENERATED = 0, 1

# Metrics that compare the two classes: undefined on a set of one class.
TWO_CLASS = ("precision", "recall", "f1", "roc_auc", "average_precision", "balanced_accuracy")
ONE_CLASS_NOTE = ("only {present} images in this set: accuracy is the share of {present} images "
                  "recognised as {present}; balanced accuracy, ROC-AUC, average precision, "
                  "precision, recall and F1 need both classes and are None")


def _sk():
    """scikit-learn's metrics, imported on first use (over a second): training never needs them."""
    from sklearn import metrics

    return metrics


def _arrays(y_true, p_generated) -> tuple[np.ndarray, np.ndarray]:
    """Labels as 0/1 ints and probabilities as floats in [0, 1], checked."""
    y = np.asarray(y_true)
    p = np.asarray(p_generated, dtype=float)
    if y.ndim != 1 or p.ndim != 1 or len(y) != len(p):
        raise ValueError(f"labels and probabilities must be two 1-d arrays of one length; "
                         f"got shapes {y.shape} and {p.shape}")
    if len(y) == 0:
        raise ValueError("no images to score: the labels are empty")
    if not np.isin(y, (REAL, GENERATED)).all():
        bad = y[~np.isin(y, (REAL, GENERATED))][0]
        raise ValueError(f"labels must be 0 (real) or 1 (generated); found {bad!r}")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ValueError("P(generated) must be finite and within [0, 1]; drop the images that "
                         "could not be scored (NaN) before computing metrics")
    return y.astype(int), p


def _f(x) -> float | None:
    return None if x is None else float(x)


def _wilson(name: str, correct: int, total: int, level: float) -> dict:
    """``{name}_low`` and ``{name}_high``: the Wilson interval of ``correct / total`` (None if no image)."""
    low, high = wilson_interval(correct, total, level) if total else (None, None)
    return {f"{name}_low": low, f"{name}_high": high}


def binary_metrics(y_true, p_generated, threshold: float = 0.5, level: float = 0.95) -> dict:
    """Accuracy, precision, recall, F1, ROC-AUC, AP, balanced accuracy, per-class accuracy, counts.

    With one class only (a folder of DALL-E 2 images, say) the two-class metrics are None and
    ``note`` says why; ``accuracy`` is then the accuracy on that class.

    Each accuracy comes with its Wilson interval at ``level`` (``accuracy_low``/``accuracy_high``,
    and the same for ``accuracy_real`` and ``accuracy_generated``; None for a class with no
    image), described in ``accuracy_interval``: with no error the upper bound is 1 and the lower
    one is below 1, where a percentile bootstrap would give [1, 1].
    """
    y, p = _arrays(y_true, p_generated)
    pred = (p >= threshold).astype(int)
    skm = _sk()
    tn, fp, fn, tp = (int(v) for v in skm.confusion_matrix(y, pred, labels=[REAL, GENERATED]).ravel())
    n_real, n_gen = int((y == REAL).sum()), int((y == GENERATED).sum())
    out = {
        "n": len(y), "n_real": n_real, "n_generated": n_gen, "threshold": float(threshold),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "accuracy_real": _f(skm.accuracy_score(y[y == REAL], pred[y == REAL])) if n_real else None,
        "accuracy_generated": (_f(skm.accuracy_score(y[y == GENERATED], pred[y == GENERATED]))
                               if n_gen else None),
        "tn": tn, "fp": fp, "fn": fn, "tp": tp,
        "note": None,
        **_wilson("accuracy", tn + tp, n_real + n_gen, level), **_wilson("accuracy_real", tn, n_real, level),
        **_wilson("accuracy_generated", tp, n_gen, level),
        "accuracy_interval": f"Wilson score, {level * 100:g}%",
    }
    if n_real and n_gen:
        out.update(
            precision=float(skm.precision_score(y, pred, zero_division=0.0)),
            recall=float(skm.recall_score(y, pred, zero_division=0.0)),
            f1=float(skm.f1_score(y, pred, zero_division=0.0)),
            roc_auc=float(skm.roc_auc_score(y, p)),
            average_precision=float(skm.average_precision_score(y, p)),
            balanced_accuracy=float(skm.balanced_accuracy_score(y, pred)),
        )
    else:
        out.update({k: None for k in TWO_CLASS})
        out["note"] = ONE_CLASS_NOTE.format(present="generated" if n_gen else "real")
    return out


def roc_points(y, p) -> pd.DataFrame:
    """The ROC curve: columns ``fpr``, ``tpr``, ``threshold`` (scikit-learn's ``roc_curve``)."""
    y, p = _arrays(y, p)
    if len(np.unique(y)) < 2:
        raise ValueError("a ROC curve needs real and generated images; this set holds one class only")
    fpr, tpr, thresholds = _sk().roc_curve(y, p)
    return pd.DataFrame({"fpr": fpr, "tpr": tpr, "threshold": thresholds})


def mcnemar(correct_a, correct_b) -> dict:
    """McNemar's exact test: do two models, scored on the same images, differ in accuracy?

    Only the discordant images count: ``a_only`` (A right, B wrong) and ``b_only`` (A wrong, B
    right). Under equal accuracy each discordant image is a fair coin, so the two-sided p-value is
    the exact binomial one of ``min(a_only, b_only)`` in ``a_only + b_only`` tosses.
    """
    from scipy.stats import binomtest

    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"correct_a and correct_b must be paired 1-d arrays (the same images in the "
                         f"same order); got shapes {a.shape} and {b.shape}")
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    discordant = a_only + b_only
    p_value = 1.0 if discordant == 0 else float(binomtest(min(a_only, b_only), discordant, 0.5).pvalue)
    return {"n": len(a), "both": int((a & b).sum()), "neither": int((~a & ~b).sum()),
            "a_only": a_only, "b_only": b_only, "p_value": min(1.0, p_value),
            "accuracy_a": float(a.mean()) if len(a) else None,
            "accuracy_b": float(b.mean()) if len(b) else None}


# One metric at a time, for the bootstrap: (sklearn.metrics, labels, predicted labels, probabilities) -> value.
_ONE = {
    "accuracy": lambda skm, y, pred, p: skm.accuracy_score(y, pred),
    "accuracy_real": lambda skm, y, pred, p: skm.accuracy_score(y[y == REAL], pred[y == REAL]),
    "accuracy_generated": lambda skm, y, pred, p: skm.accuracy_score(y[y == GENERATED], pred[y == GENERATED]),
    "balanced_accuracy": lambda skm, y, pred, p: skm.balanced_accuracy_score(y, pred),
    "precision": lambda skm, y, pred, p: skm.precision_score(y, pred, zero_division=0.0),
    "recall": lambda skm, y, pred, p: skm.recall_score(y, pred, zero_division=0.0),
    "f1": lambda skm, y, pred, p: skm.f1_score(y, pred, zero_division=0.0),
    "roc_auc": lambda skm, y, pred, p: skm.roc_auc_score(y, p),
    "average_precision": lambda skm, y, pred, p: skm.average_precision_score(y, p),
}


def _metric_function(metric: str | Callable, y, p, threshold: float) -> tuple[str, Callable]:
    """``(name, f(y, p) -> float)`` for a metric given by name or as a function."""
    if callable(metric):
        return getattr(metric, "__name__", "metric"), metric
    if metric not in _ONE:
        raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(_ONE)}, or a function (y, p) -> float")
    whole = binary_metrics(y, p, threshold)
    if whole[metric] is None:
        raise ValueError(f"{metric} is undefined on this set: {whole['note']}")
    one, skm = _ONE[metric], _sk()
    return metric, lambda y, p: one(skm, y, (p >= threshold).astype(int), p)


def bootstrap_ci(y, p, metric: str | Callable = "accuracy", n: int = 1000, seed: int = 0,
                 level: float = 0.95, threshold: float = 0.5, method: str = "percentile") -> dict:
    """A bootstrap interval for ``metric`` (a name from :func:`binary_metrics`, or a function
    ``(y, p) -> float``).

    Images are resampled with replacement within each class, so every resample keeps the class
    counts of the set (and a two-class metric stays defined). ``method="percentile"`` (the
    default) is the percentile interval of :func:`helpers.core.stats.bootstrap`; ``method="bca"``
    is the BCa interval of :func:`helpers.core.stats.bca_interval`, for AUC, AP and differences
    near their bound, where the percentile interval is shifted and too narrow. ``method`` and
    ``note`` say which was given and why (BCa is undefined when every resample equals the
    estimate: the estimate is then both bounds).
    """
    if method not in ("percentile", "bca"):
        raise ValueError(f"unknown method {method!r}; valid: percentile, bca")
    y, p = _arrays(y, p)
    name, fn = _metric_function(metric, y, p, threshold)
    classes = [np.column_stack([y[y == c], p[y == c]]) for c in (REAL, GENERATED) if (y == c).any()]

    def statistic(*groups):
        rows = np.concatenate(groups)
        return fn(rows[:, 0].astype(int), rows[:, 1])

    if method == "bca":
        out = bca_interval(statistic, classes, n=n, seed=seed, level=level)
    else:
        out = {**bootstrap(statistic, classes, n=n, seed=seed, level=level), "method": "percentile", "note": None}
    keys = ("estimate", "low", "high", "level", "n_boot", "seed", "method", "note")
    return {"metric": name, **{k: out[k] for k in keys}}


def paired_bootstrap(correct_a, correct_b, n: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """accuracy(B) - accuracy(A) on the same images, with a percentile bootstrap interval.

    The images are resampled with replacement and both models are scored on the same resample, so
    the interval accounts for the pairing (images both get right or both get wrong cancel out).
    """
    a = np.asarray(correct_a, dtype=bool)
    b = np.asarray(correct_b, dtype=bool)
    if a.shape != b.shape or a.ndim != 1 or len(a) == 0:
        raise ValueError(f"correct_a and correct_b must be paired, non-empty 1-d arrays; got shapes "
                         f"{a.shape} and {b.shape}")
    out = bootstrap(np.mean, [b.astype(float) - a.astype(float)], n=n, seed=seed, level=level)
    return {"difference": out["estimate"], **{k: out[k] for k in ("low", "high", "level", "n_boot", "seed")}}


# ---------------------------------------------------------------- several seeds, and two models on the same images
# Chapter 5 trains each backbone with several seeds and compares backbones on the same test images.
# A metric of a backbone is then the mean over its seeds (each seed a column of P(generated)); the
# images are resampled, within each class, and the seeds kept. Accuracy, ROC-AUC and AP are computed
# here in numpy (the same values as scikit-learn's, ties included: tests/test_metrics.py) because BCa's
# jackknife recomputes them once per image.
SEED_METRICS = ("accuracy", "roc_auc", "average_precision")


def _roc_auc(y: np.ndarray, p: np.ndarray) -> float:
    """ROC-AUC as the Mann-Whitney statistic: ties count one half, as in scikit-learn."""
    from scipy.stats import rankdata

    pos = y == GENERATED
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    return float((rankdata(p)[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _average_precision(y: np.ndarray, p: np.ndarray) -> float:
    """Average precision, scikit-learn's definition: precision at each distinct threshold, weighted
    by the recall it adds (tied scores form one threshold)."""
    order = np.argsort(-p, kind="stable")
    p_sorted, hits = p[order], (y[order] == GENERATED).astype(float)
    last = np.r_[np.flatnonzero(np.diff(p_sorted)), len(p_sorted) - 1]  # last index of each tie group
    tp = np.cumsum(hits)[last]
    precision, recall = tp / (last + 1), tp / hits.sum()
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def _one_seed(metric: str, y: np.ndarray, p: np.ndarray, threshold: float) -> float:
    if metric == "accuracy":
        return float(np.mean((p >= threshold).astype(int) == y))
    return _roc_auc(y, p) if metric == "roc_auc" else _average_precision(y, p)


def _columns(y, p) -> tuple[np.ndarray, np.ndarray]:
    """Labels checked, and P(generated) as an ``(images, seeds)`` array (one column for a 1-d ``p``)."""
    p = np.asarray(p, dtype=float)
    p = p[:, None] if p.ndim == 1 else p
    if p.ndim != 2 or p.shape[1] == 0:
        raise ValueError(f"P(generated) must be one column per seed, shape (images, seeds); got {p.shape}")
    y_checked = _arrays(y, p[:, 0])[0]
    for column in p.T:
        _arrays(y_checked, column)
    return y_checked, p


def seed_mean(metric: str, y, p, threshold: float = 0.5) -> float:
    """``metric`` (accuracy, roc_auc or average_precision) averaged over the seed columns of ``p``."""
    if metric not in SEED_METRICS:
        raise ValueError(f"unknown metric {metric!r}; valid: {', '.join(SEED_METRICS)}")
    y, p = _columns(y, p)
    if metric != "accuracy" and len(np.unique(y)) < 2:
        raise ValueError(f"{metric} needs real and generated images; this set holds one class only")
    return _over_seeds(metric, y, p, threshold)


def _over_seeds(metric: str, y: np.ndarray, p: np.ndarray, threshold: float) -> float:
    """:func:`seed_mean` on checked arrays (called once per resample)."""
    return float(np.mean([_one_seed(metric, y, column, threshold) for column in p.T]))


def _stratified_bca(statistic: Callable, y: np.ndarray, table: np.ndarray, n: int, seed: int,
                    level: float) -> dict:
    """BCa of ``statistic(y, table)`` with the images (rows) resampled within each class."""
    rows = np.column_stack([y, table])
    classes = [rows[rows[:, 0] == c] for c in (REAL, GENERATED) if (y == c).any()]

    def on_rows(*groups):
        both = np.concatenate(groups)
        return statistic(both[:, 0].astype(int), both[:, 1:])

    out = bca_interval(on_rows, classes, n=n, seed=seed, level=level)
    return {k: out[k] for k in ("estimate", "low", "high", "level", "n_boot", "seed", "method", "note")}


def seed_mean_ci(y, p, metric: str = "roc_auc", n: int = 2000, seed: int = 0, level: float = 0.95,
                 threshold: float = 0.5) -> dict:
    """The seed-mean ``metric`` of one backbone and its BCa interval, stratified by class: real and
    generated images are resampled separately (every resample keeps the class counts, so AUC and AP
    stay defined), and each resample scores every seed on the same images. The interval is about
    the test images; the spread between seeds is reported beside it, as their sd."""
    y, p = _columns(y, p)
    seed_mean(metric, y, p, threshold)  # refuses what is undefined

    def statistic(labels, table):
        return _over_seeds(metric, labels, table, threshold)

    return {"metric": metric, **_stratified_bca(statistic, y, p, n, seed, level)}


def _paired_columns(y, p_a, p_b) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if len(np.asarray(p_a)) != len(np.asarray(p_b)):
        raise ValueError(f"the two models must be scored on the same images, in the same order; got "
                         f"{len(np.asarray(p_a))} and {len(np.asarray(p_b))} images")
    y, a = _columns(y, p_a)
    return y, a, _columns(y, p_b)[1]


def paired_difference_ci(y, p_a, p_b, metric: str = "accuracy", n: int = 2000, seed: int = 0,
                         level: float = 0.95, threshold: float = 0.5) -> dict:
    """``metric`` of model B minus that of model A (each the mean over its seed columns), scored on
    the same images, with a BCa interval stratified by class: each resample draws real and
    generated images separately and scores both models on it, so the pairing is kept."""
    y, a, b = _paired_columns(y, p_a, p_b)
    k = a.shape[1]
    seed_mean(metric, y, a, threshold)  # refuses what is undefined

    def statistic(labels, table):
        return _over_seeds(metric, labels, table[:, k:], threshold) - _over_seeds(metric, labels, table[:, :k], threshold)

    return {"metric": metric, **_stratified_bca(statistic, y, np.hstack([a, b]), n, seed, level)}


def paired_difference_test(y, p_a, p_b, metric: str = "accuracy", n_resamples: int = 2000, seed: int = 0,
                           threshold: float = 0.5) -> dict:
    """Two-sided paired permutation test of "A and B score the same" for ``metric`` (seed means).

    Under that hypothesis, the two models' predictions of an image could have been swapped; the test
    swaps them at random, image by image (all seeds together), through
    :func:`helpers.core.stats.paired_permutation_test`. For accuracy with one seed this is the
    exact test of the discordant images, McNemar's in permutation form.
    """
    y, a, b = _paired_columns(y, p_a, p_b)
    both, n_images = np.vstack([a, b]), len(y)
    seed_mean(metric, y, a, threshold)  # refuses what is undefined

    def statistic(rows_a, rows_b):
        rows_a, rows_b = rows_a.astype(int), rows_b.astype(int)
        return _over_seeds(metric, y, both[rows_b], threshold) - _over_seeds(metric, y, both[rows_a], threshold)

    out = paired_permutation_test(np.arange(n_images), np.arange(n_images) + n_images,
                                  n_resamples=n_resamples, seed=seed, statistic=statistic)
    return {"metric": metric, "difference": out["observed"], **{k: out[k] for k in ("p_value", "n_resamples", "exact")}}
