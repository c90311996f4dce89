"""Chapters 3-5: the one bootstrap behind every interval the book prints beside a number.

Each group is resampled with replacement, independently of the others and keeping its size, and
the statistic is recomputed on each resample; the interval is the percentile interval of those
values. Pairing (two models scored on the same images) is expressed by resampling one group of
per-image differences, class balance by one group per class.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


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
