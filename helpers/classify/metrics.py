"""Chapters 4-5: how well a classifier tells generated images (label 1) from photographs (label 0).

Every number comes from scikit-learn; this module only chooses which ones, handles a set that holds
one class only, and adds two things the paper leaves out: a paired test between two models
(McNemar's, exact) and intervals, so that 99.87% on 3,000 images can be read with its uncertainty.
Accuracies get the Wilson score interval (:func:`helpers.core.stats.wilson_interval`), which stays
informative at 100% where a percentile bootstrap gives [1, 1]; any other metric gets a bootstrap
within each class, percentile (the book's one bootstrap, :func:`helpers.core.stats.bootstrap`) or
BCa (:func:`helpers.core.stats.bca_interval`), which corrects for a metric bunched near 1.

A probability ``p`` is P(generated); an image is predicted generated when ``p >= threshold``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from ..core.stats import bca_interval, bootstrap, wilson_interval

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
