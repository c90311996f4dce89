"""Chapters 3-5: the intervals and tests the book prints beside a number.

``bootstrap`` is the one resampler behind the percentile intervals: each group is resampled with
replacement, independently of the others and keeping its size, and the statistic is recomputed on
each resample. Pairing (two models scored on the same images) is expressed by resampling one group
of per-image differences, class balance by one group per class.

Three situations need more than a percentile interval, and get a function each:

- Chapters 4-5 print accuracies near 100%. A percentile bootstrap of 3,000 correct answers out of
  3,000 gives the interval [1, 1], as if the accuracy were known exactly; the Wilson score interval
  (:func:`wilson_interval`) still says how far below 1 it could be. For AUC, AP and differences,
  :func:`bca_interval` corrects the percentile interval for the bias and skew of a statistic that
  sits near its bound (BCa), resampling within each class.
- Chapter 3 fills the same holes in real photographs and in generated images, so a real result and
  a generated one with the same index belong together: :func:`paired_permutation_test` tests their
  difference pair by pair, which is stronger and fairer than comparing two unpaired means.
- A chapter's table holds many such tests at once; :func:`holm` adjusts their p-values so that the
  chance of any false "significant" in the table stays at the stated level.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from statistics import NormalDist

import numpy as np

# Resamples per call of the statistic in :func:`bca_interval`: bounds the memory of the resampled
# and jackknifed index arrays; scipy draws each batch's resamples group by group, so the batch size is
# part of what the seed reproduces.
BCA_BATCH = 256


def bootstrap(statistic: Callable[..., float], groups: Sequence[np.ndarray], n: int = 1000,
              seed: int = 0, level: float = 0.95) -> dict:
    """``statistic(*groups)`` and its percentile interval over ``n`` seeded resamples.

    Returns ``estimate``, ``low``, ``high``, ``level``, ``n_boot``, ``seed`` and ``values`` (the
    resampled statistics, for a p-value or a plot).
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    groups = [np.asarray(g) for g in groups]
    if not groups or any(len(g) == 0 for g in groups):
        raise ValueError("every group needs at least one value")
    rng = np.random.default_rng(seed)
    values = np.empty(n)
    for i in range(n):
        values[i] = statistic(*(g[rng.integers(0, len(g), size=len(g))] for g in groups))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return {"estimate": float(statistic(*groups)), "low": float(low), "high": float(high),
            "level": float(level), "n_boot": int(n), "seed": int(seed), "values": values}


def bootstrap_p_value(values: np.ndarray) -> float:
    """Two-sided p-value of "the statistic is 0" from its resampled values: twice the smaller share
    on either side of 0, with the +1 correction (at least 1 / (n + 1)); below 1 - level exactly
    when the percentile interval excludes 0, up to that resolution."""
    values = np.asarray(values)
    below = (np.count_nonzero(values <= 0) + 1) / (values.size + 1)
    above = (np.count_nonzero(values >= 0) + 1) / (values.size + 1)
    return float(min(1.0, 2 * min(below, above)))


def wilson_interval(successes: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval ``(low, high)`` of a proportion ``successes / n``.

    Why not the bootstrap: an accuracy of 100% has no wrong answer to resample, so its percentile
    interval is [1, 1]; the Wilson interval inverts the score test instead, so with no error its
    upper bound is 1 and its lower bound says how low the true accuracy could still be (about
    0.9987 for 3,000 of 3,000 at 95%). Closed form of Wilson (1927), the same as
    ``scipy.stats.binomtest(successes, n).proportion_ci(method="wilson")``.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    if int(n) != n or int(successes) != successes or not 0 <= successes <= n or n < 1:
        raise ValueError(f"a proportion needs whole counts with 0 <= successes <= n and n >= 1; "
                         f"got successes={successes!r}, n={n!r}")
    z = NormalDist().inv_cdf(0.5 + level / 2)
    p, z2n = successes / n, z * z / n
    centre, half = (p + z2n / 2) / (1 + z2n), z / (1 + z2n) * np.sqrt(p * (1 - p) / n + z2n / (4 * n))
    # the bounds are exactly 0 and 1 at the ends; rounding must not move them
    low = 0.0 if successes == 0 else max(0.0, float(centre - half))
    high = 1.0 if successes == n else min(1.0, float(centre + half))
    return low, high


def _mean_difference(a, b, axis=-1):
    return np.mean(a - b, axis=axis)


def paired_permutation_test(a, b, n_resamples: int = 10000, seed: int = 0,
                            statistic: Callable[..., float] = _mean_difference) -> dict:
    """Two-sided paired permutation test of ``statistic(a, b)`` (default: the mean of ``a - b``).

    Chapter 3 fills the same holes in the real photographs and in the generated images, so ``a[i]``
    and ``b[i]`` share hole ``i``. Under "the source makes no difference" the two values of each
    pair could have been swapped; the test swaps them at random within each pair (for a difference,
    a sign flip) and counts how often the statistic is at least as extreme as the observed one.
    With ``2 ** n <= n_resamples`` every arrangement is enumerated and the p-value is exact.
    Through ``scipy.stats.permutation_test(permutation_type="samples")``; a statistic that takes
    ``axis`` is called vectorised.

    Returns ``observed``, ``p_value``, ``n`` (pairs), ``n_resamples`` and ``exact``.
    """
    from scipy.stats import permutation_test

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.ndim != 1 or len(a) < 2:
        raise ValueError(f"a and b must be paired 1-d arrays (the same holes, in the same order) of at "
                         f"least 2 values; got shapes {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("a and b must be finite: drop the pairs whose score is missing (NaN) from "
                         "both before testing")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    res = permutation_test((a, b), statistic, permutation_type="samples", n_resamples=n_resamples,
                           alternative="two-sided", rng=np.random.default_rng(seed))
    exact = 2 ** len(a) <= n_resamples
    return {"observed": float(res.statistic), "p_value": float(res.pvalue), "n": len(a),
            "n_resamples": 2 ** len(a) if exact else int(n_resamples), "exact": exact}


def holm(p_values) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values, in the order given.

    A table of m tests at 5% each would show about m / 20 "significant" differences where none is
    real. Holm's step-down keeps the chance of any false one at 5% and is never less powerful than
    Bonferroni: the k-th smallest p-value (k from 0) is multiplied by m - k, each adjusted value is
    at least the one before it (monotone) and none exceeds 1. Compare an adjusted value with the
    level itself (0.05), not with 0.05 / m.
    """
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1:
        raise ValueError(f"p_values must be a flat list of p-values; got shape {p.shape}")
    if not np.isfinite(p).all() or (p < 0).any() or (p > 1).any():
        raise ValueError("every p-value must be a number within [0, 1]; drop the tests that could not "
                         "be computed (NaN) before correcting")
    order = np.argsort(p, kind="stable")
    steps = (len(p) - np.arange(len(p))) * p[order]
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(1.0, np.maximum.accumulate(steps))
    return adjusted


def bca_interval(statistic: Callable[..., float], groups: Sequence[np.ndarray], n: int = 2000,
                 seed: int = 0, level: float = 0.95) -> dict:
    """``statistic(*groups)`` and its bias-corrected and accelerated (BCa) bootstrap interval.

    AUC and AP near 1 are bounded and skewed: their resamples pile up below the estimate, and the
    percentile interval is shifted and too narrow. BCa (Efron & Tibshirani 1993, 14.3 and 15.4)
    moves the percentiles by the bias (the share of resamples below the estimate) and the
    acceleration (the skew of the jackknife). Each group is resampled on its own, keeping its size,
    so with one group per class every resample keeps the class counts (stratified); a group may be
    any array whose rows are the units. Through ``scipy.stats.bootstrap(method="BCa")`` on the
    groups' row indices.

    Returns ``estimate``, ``low``, ``high``, ``method`` ("BCa"), ``level``, ``n_boot``, ``seed``,
    ``values`` and ``note``. When every resample equals the estimate (no error to resample), BCa is
    undefined: the estimate is given as both bounds and ``note`` says so (use
    :func:`wilson_interval` for a proportion). When only the BCa correction is undefined, the
    percentile interval of the same resamples is given, ``method`` is "percentile" and ``note``
    says why.
    """
    from scipy.stats import DegenerateDataWarning
    from scipy.stats import bootstrap as scipy_bootstrap

    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    if not 0 < level < 1:
        raise ValueError(f"level must be between 0 and 1, got {level}")
    groups = [np.asarray(g) for g in groups]
    if not groups or any(len(g) < 2 for g in groups):
        raise ValueError("every group needs at least two values: BCa's jackknife leaves one out")

    def on_rows(*rows):
        return statistic(*(g[np.asarray(r, dtype=int)] for g, r in zip(groups, rows)))

    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", DegenerateDataWarning)  # handled below, with a note
        res = scipy_bootstrap([np.arange(len(g)) for g in groups], on_rows, n_resamples=n,
                              vectorized=False, confidence_level=level, method="BCa", batch=BCA_BATCH,
                              rng=np.random.default_rng(seed))
    estimate, values = float(statistic(*groups)), np.asarray(res.bootstrap_distribution, dtype=float)
    out = {"estimate": estimate, "low": float(res.confidence_interval.low),
           "high": float(res.confidence_interval.high), "method": "BCa", "level": float(level),
           "n_boot": int(n), "seed": int(seed), "values": values, "note": None}
    return out if np.isfinite([out["low"], out["high"]]).all() else _bca_undefined(out)


def _bca_undefined(out: dict) -> dict:
    """What :func:`bca_interval` gives when scipy's BCa bounds are NaN, and why."""
    values, estimate = out["values"], out["estimate"]
    if np.allclose(values, estimate, rtol=1e-9, atol=1e-12):  # equal up to rounding
        return {**out, "low": estimate, "high": estimate,
                "note": (f"every one of the {values.size} resamples equals the estimate {estimate:.6g} "
                         f"(nothing to resample, e.g. no error), so BCa is undefined; the estimate is "
                         f"given as both bounds: this is not certainty (for a proportion, use the "
                         f"Wilson interval)")}
    tail = (1 - out["level"]) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return {**out, "low": float(low), "high": float(high), "method": "percentile",
            "note": ("the BCa correction is undefined here (the resamples lie all on one side of the "
                     "estimate, or the jackknife values are all equal); the percentile interval of "
                     "the same resamples is given")}
