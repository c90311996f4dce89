"""helpers.core.stats: the one bootstrap behind the book's intervals, its p-value, and the Wilson,
paired permutation, Holm and BCa additions, each checked against its reference (scipy.stats, Fisher's
worked example, a textbook Holm example)."""

from __future__ import annotations

from itertools import product

import numpy as np
import pytest
from scipy import stats as sps

from helpers.core.stats import (
    BCA_BATCH,
    bca_interval,
    bootstrap,
    bootstrap_p_value,
    holm,
    paired_permutation_test,
    wilson_interval,
)


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


# --- Wilson: the reference is scipy.stats.binomtest(k, n).proportion_ci(method="wilson") ---

@pytest.mark.parametrize("k, n, level", [(0, 1, 0.95), (3, 10, 0.95), (7, 10, 0.9), (20, 20, 0.95),
                                         (2999, 3000, 0.95), (3000, 3000, 0.99), (0, 40, 0.95)])
def test_wilson_agrees_with_scipy(k, n, level):
    ref = sps.binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    assert wilson_interval(k, n, level) == pytest.approx((ref.low, ref.high), rel=1e-12, abs=1e-12)


def test_wilson_on_no_error_is_not_the_bootstraps_one_point():
    low, high = wilson_interval(3000, 3000)
    assert high == 1.0 and low < 1.0
    assert low == pytest.approx(1 / (1 + 1.959963984540054 ** 2 / 3000))  # closed form at p = 1
    assert round(low, 4) == 0.9987  # the value the module's docstring quotes
    boot = bootstrap(np.mean, [np.ones(3000)], n=200)
    assert boot["low"] == boot["high"] == 1.0  # what Wilson is there to replace
    assert wilson_interval(0, 30)[0] == 0.0 and 0 < wilson_interval(0, 30)[1] < 1


@pytest.mark.parametrize("k, n, level", [(-1, 5, 0.95), (6, 5, 0.95), (1, 0, 0.95), (1.5, 5, 0.95), (1, 5, 1.0)])
def test_wilson_refuses_what_is_not_a_proportion(k, n, level):
    with pytest.raises(ValueError):
        wilson_interval(k, n, level)


# --- paired permutation test ---

# Darwin's Zea mays, as analysed by Fisher (The Design of Experiments, 1935, section 21): differences
# in eighths of an inch between 15 cross- and self-fertilised pairs; 863 of the 2^15 sign
# arrangements give a sum at least as large as the observed 314, so the two-sided p is 1726 / 32768.
ZEA_MAYS = np.array([49, -67, 8, 16, 6, 23, 28, 41, 14, 29, 56, 24, 75, 60, -48])


def _enumerated_p(d: np.ndarray) -> float:
    """The exact two-sided p of a sign-flip test of mean(d), by listing all 2^n sign vectors."""
    signs = np.array(list(product([1, -1], repeat=len(d))))
    null = (signs * d).mean(axis=1)
    return float(np.mean(np.abs(null) >= abs(d.mean()) - 1e-12))


def test_permutation_reproduces_fishers_exact_example():
    r = paired_permutation_test(ZEA_MAYS, np.zeros(15), n_resamples=2 ** 15)
    assert r["exact"] and r["n"] == 15 and r["n_resamples"] == 2 ** 15
    assert r["observed"] == pytest.approx(314 / 15)
    assert r["p_value"] == pytest.approx(1726 / 32768) == pytest.approx(_enumerated_p(ZEA_MAYS))


def test_permutation_is_exact_for_small_n_and_pairs_by_index():
    rng = np.random.default_rng(4)
    real, generated = rng.normal(0, 1, 9), rng.normal(0, 1, 9)
    generated = real + 0.6 + rng.normal(0, 0.5, 9)
    r = paired_permutation_test(real, generated)
    assert r["exact"] and r["observed"] == pytest.approx(np.mean(real - generated))
    assert r["p_value"] == pytest.approx(_enumerated_p(real - generated))
    # unpaired, the same values would look alike: pairing is what the test uses
    assert r["p_value"] < 0.05 < sps.ttest_ind(real, generated).pvalue


def test_permutation_sampled_matches_scipy_with_the_same_seed_and_the_exact_value():
    rng = np.random.default_rng(5)
    a, b = rng.normal(0, 1, 16), rng.normal(0.3, 1, 16)
    r = paired_permutation_test(a, b, n_resamples=5000, seed=11)
    ref = sps.permutation_test((a, b), lambda x, y, axis: np.mean(x - y, axis=axis), permutation_type="samples",
                               n_resamples=5000, rng=np.random.default_rng(11))
    assert not r["exact"] and r["p_value"] == pytest.approx(ref.pvalue)
    assert r["p_value"] == pytest.approx(_enumerated_p(a - b), abs=4 * 0.5 / np.sqrt(5000))
    assert r == paired_permutation_test(a, b, n_resamples=5000, seed=11)
    median = paired_permutation_test(a, b, n_resamples=5000, statistic=lambda x, y: float(np.median(x - y)))
    assert median["observed"] == pytest.approx(np.median(a - b))


def test_permutation_refuses_unpaired_or_missing():
    with pytest.raises(ValueError, match="paired"):
        paired_permutation_test([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        paired_permutation_test([1.0, np.nan], [1.0, 2.0])


# --- Holm ---

def test_holm_textbook_example():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    # capped at 1, monotone in the sorted order, one test unchanged, empty stays empty
    assert holm([0.5, 0.4, 0.3]) == pytest.approx([0.9, 0.9, 0.9])
    assert holm([0.2, 0.9]) == pytest.approx([0.4, 0.9])
    assert holm([0.6, 0.7, 0.01]) == pytest.approx([1.0, 1.0, 0.03])
    assert holm([0.02]) == pytest.approx([0.02]) and holm([]).size == 0
    p = np.random.default_rng(0).uniform(0, 0.2, 12)
    adjusted = holm(p)
    assert (adjusted >= p).all() and (np.diff(adjusted[np.argsort(p)]) >= 0).all()


@pytest.mark.parametrize("bad", [[0.1, np.nan], [0.1, 1.2], [-0.1], [[0.1, 0.2]]])
def test_holm_refuses_what_is_not_a_p_value(bad):
    with pytest.raises(ValueError):
        holm(bad)


# --- BCa: the reference is scipy.stats.bootstrap(method="BCa") ---

def test_bca_one_group_is_scipys():
    x = np.random.default_rng(0).exponential(size=40)
    r = bca_interval(np.mean, [x], n=2000, seed=3)
    ref = sps.bootstrap((x,), np.mean, n_resamples=2000, method="BCa", batch=BCA_BATCH,
                        rng=np.random.default_rng(3))
    assert (r["low"], r["high"]) == pytest.approx((ref.confidence_interval.low, ref.confidence_interval.high))
    assert r["method"] == "BCa" and r["note"] is None and r["estimate"] == pytest.approx(x.mean())
    pct = bootstrap(np.mean, [x], n=2000, seed=3)
    assert r["low"] > pct["low"]  # a right-skewed mean: BCa moves the interval up


def test_bca_resamples_within_each_group_and_matches_scipys_two_sample():
    rng = np.random.default_rng(2)
    a, b = rng.normal(0, 1, 30), rng.normal(1, 2, 12)
    seen = set()

    def diff(x, y):
        seen.add((len(x), len(y), set(x) <= set(a), set(y) <= set(b)))
        return float(np.mean(y) - np.mean(x))

    r = bca_interval(diff, [a, b], n=300, seed=1)
    assert seen == {(30, 12, True, True), (29, 12, True, True), (30, 11, True, True)}  # + jackknife
    ref = sps.bootstrap((a, b), lambda x, y: np.mean(y) - np.mean(x), n_resamples=300, method="BCa",
                        batch=BCA_BATCH, rng=np.random.default_rng(1))  # same batches, same draws
    assert (r["low"], r["high"]) == pytest.approx((ref.confidence_interval.low, ref.confidence_interval.high))
    assert r["low"] < r["estimate"] < r["high"]


def test_bca_rows_of_a_two_column_group_stay_together():
    rows = np.column_stack([np.arange(20.0), np.arange(20.0) * 10])
    r = bca_interval(lambda g: float(np.all(g[:, 1] == g[:, 0] * 10)), [rows], n=50)
    assert r["estimate"] == r["low"] == r["high"] == 1.0 and "every one of the 50 resamples" in r["note"]


def test_bca_degenerate_gives_the_estimate_and_says_so():
    r = bca_interval(lambda a, b: float(np.mean(a) - np.mean(b) + 1), [np.ones(10), np.ones(5)], n=100)
    assert r["low"] == r["high"] == r["estimate"] == 1.0 and "BCa is undefined" in r["note"]


def test_bca_falls_back_to_the_percentile_interval_when_only_the_correction_is_undefined():
    # the maximum of [5, 5, 1, 2, 3]: every leave-one-out maximum is 5, so the jackknife acceleration
    # is 0 / 0, while a resample without either 5 has a smaller maximum
    r = bca_interval(np.max, [np.array([5.0, 5.0, 1.0, 2.0, 3.0])], n=500, seed=0)
    assert r["method"] == "percentile" and "percentile interval" in r["note"]
    assert (r["low"], r["high"]) == pytest.approx(tuple(np.percentile(r["values"], [2.5, 97.5])))
    assert r["low"] < r["high"] == r["estimate"] == 5.0


@pytest.mark.parametrize("kwargs, groups", [({"n": 0}, [np.ones(3)]), ({"level": 0.0}, [np.ones(3)]),
                                            ({}, [np.ones(3), np.ones(1)]), ({}, [])])
def test_bca_refuses_what_it_cannot_resample(kwargs, groups):
    with pytest.raises(ValueError):
        bca_interval(np.mean, groups, **kwargs)
