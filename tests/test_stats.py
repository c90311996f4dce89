"""helpers.core.stats: the one bootstrap behind the book's intervals, and its p-value."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.core.stats import bootstrap, bootstrap_p_value


def _diff(a, b):
    return float(np.mean(b) - np.mean(a))


def test_the_interval_contains_the_estimate_and_the_true_value():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.0, 1.0, 200), rng.normal(0.5, 1.0, 150)
    res = bootstrap(_diff, [a, b], n=2000, seed=0)
    assert res["estimate"] == pytest.approx(b.mean() - a.mean())
    assert res["low"] < res["estimate"] < res["high"]
    assert res["low"] < 0.5 < res["high"] and res["low"] > 0  # a real difference is found
    assert (res["level"], res["n_boot"], res["seed"], len(res["values"])) == (0.95, 2000, 0, 2000)
    wider = bootstrap(_diff, [a, b], n=2000, seed=0, level=0.99)
    assert wider["low"] < res["low"] and wider["high"] > res["high"]


def test_seeded_and_reproducible():
    groups = [np.arange(10.0), np.arange(5.0, 17.0)]
    first, again = bootstrap(_diff, groups, n=300, seed=7), bootstrap(_diff, groups, n=300, seed=7)
    assert np.array_equal(first["values"], again["values"]) and first["low"] == again["low"]
    other = bootstrap(_diff, groups, n=300, seed=8)
    assert not np.array_equal(first["values"], other["values"])


def test_each_group_is_resampled_on_its_own_and_keeps_its_size():
    seen = []

    def record(a, b):
        seen.append((len(a), len(b), set(a) <= {1.0, 2.0}, set(b) <= {10.0}))
        return 0.0

    bootstrap(record, [np.array([1.0, 2.0, 2.0]), np.array([10.0] * 5)], n=20, seed=0)
    assert set(seen) == {(3, 5, True, True)}


def test_p_value():
    rng = np.random.default_rng(0)
    assert bootstrap_p_value(rng.normal(5.0, 1.0, 999)) == pytest.approx(2 / 1000)  # all above 0: the floor
    assert bootstrap_p_value(rng.normal(0.0, 1.0, 2000)) > 0.5  # centred on 0: no evidence
    assert bootstrap_p_value(np.array([-1.0, 1.0, 2.0, 3.0])) == pytest.approx(2 * 2 / 5)
    same = rng.normal(0.0, 1.0, 100)
    res = bootstrap(_diff, [same, same + rng.normal(0, 0.01, 100)], n=500, seed=0)
    assert bootstrap_p_value(res["values"]) > 0.05 and res["low"] < 0 < res["high"]


@pytest.mark.parametrize("kwargs, groups", [
    (dict(n=0), [np.ones(3)]), (dict(level=1.0), [np.ones(3)]), ({}, [np.ones(3), np.array([])]), ({}, []),
])
def test_refuses_what_it_cannot_resample(kwargs, groups):
    with pytest.raises(ValueError):
        bootstrap(np.mean, groups, **kwargs)
