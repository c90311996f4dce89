"""Chapter 5's intervals and tests: metrics averaged over seeds, BCa stratified by class, paired differences."""

import numpy as np
import pytest
from scipy import stats
from sklearn import metrics as skm

from helpers.classify.metrics import (
    mcnemar,
    paired_difference_ci,
    paired_difference_test,
    seed_mean,
    seed_mean_ci,
)
from helpers.core.stats import BCA_BATCH


def _scores(seed=0, n_real=30, n_gen=20, decimals=2):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], [n_real, n_gen])
    p = np.round(np.clip(0.5 + (y - 0.5) * 0.4 + rng.normal(0, 0.25, len(y)), 0, 1), decimals)  # ties
    return y, p


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("decimals", [1, 3])
def test_one_seed_metrics_are_sklearns_ties_included(seed, decimals):
    y, p = _scores(seed, decimals=decimals)
    assert seed_mean("roc_auc", y, p) == pytest.approx(skm.roc_auc_score(y, p), abs=1e-12)
    assert seed_mean("average_precision", y, p) == pytest.approx(skm.average_precision_score(y, p), abs=1e-12)
    assert seed_mean("accuracy", y, p) == pytest.approx(skm.accuracy_score(y, p >= 0.5))


def test_several_seeds_give_the_mean_of_each_seeds_metric():
    y, a = _scores(1)
    _, b = _scores(2)
    both = np.column_stack([a, b])
    for metric, sk in (("roc_auc", skm.roc_auc_score), ("average_precision", skm.average_precision_score)):
        assert seed_mean(metric, y, both) == pytest.approx((sk(y, a) + sk(y, b)) / 2)
    with pytest.raises(ValueError, match="one class only"):
        seed_mean("roc_auc", np.ones(5, int), np.full(5, 0.7))
    with pytest.raises(ValueError, match="unknown metric"):
        seed_mean("f1", y, a)


def test_seed_mean_ci_is_scipys_bca_with_each_class_resampled_on_its_own():
    """A known case: the interval equals scipy.stats.bootstrap(method="BCa") on the two classes as
    two samples (real and generated drawn separately: stratified), with the same seed."""
    y, p = _scores(3)
    ours = seed_mean_ci(y, p, "roc_auc", n=500, seed=4)

    def auc(real, generated):  # the same AUC (numpy's, equal to sklearn's above): ties between a
        # resample and the estimate must not be decided by rounding
        return seed_mean("roc_auc", np.repeat([0, 1], [len(real), len(generated)]), np.r_[real, generated])

    ref = stats.bootstrap((p[y == 0], p[y == 1]), auc, vectorized=False, method="BCa", n_resamples=500,
                          batch=BCA_BATCH, rng=np.random.default_rng(4))
    assert ours["method"] == "BCa" and ours["estimate"] == pytest.approx(skm.roc_auc_score(y, p))
    assert (ours["low"], ours["high"]) == pytest.approx((ref.confidence_interval.low, ref.confidence_interval.high))
    assert ours["low"] < ours["estimate"] < ours["high"] <= 1


def test_seed_mean_ci_of_a_perfect_classifier_says_there_is_nothing_to_resample():
    y = np.repeat([0, 1], 10)
    out = seed_mean_ci(y, np.column_stack([y * 0.8 + 0.1, y * 0.6 + 0.2]), "average_precision", n=100)
    assert out["low"] == out["high"] == out["estimate"] == 1.0 and "BCa is undefined" in out["note"]


def test_paired_difference_ci_is_bca_of_the_per_image_differences_within_each_class():
    y, a = _scores(5)
    _, b = _scores(6)
    ours = paired_difference_ci(y, a, b, "accuracy", n=500, seed=1)
    diff = ((b >= 0.5) == y).astype(float) - ((a >= 0.5) == y).astype(float)
    ref = stats.bootstrap((diff[y == 0], diff[y == 1]), lambda r, g: np.r_[r, g].mean(), vectorized=False,
                          method="BCa", n_resamples=500, batch=BCA_BATCH, rng=np.random.default_rng(1))
    assert ours["estimate"] == pytest.approx(diff.mean())
    assert (ours["low"], ours["high"]) == pytest.approx((ref.confidence_interval.low, ref.confidence_interval.high))
    auc = paired_difference_ci(y, a, b, "roc_auc", n=300, seed=1)
    assert auc["estimate"] == pytest.approx(skm.roc_auc_score(y, b) - skm.roc_auc_score(y, a))
    assert auc["low"] <= auc["estimate"] <= auc["high"]
    with pytest.raises(ValueError, match="same images"):
        paired_difference_ci(y, a, b[:-1])


def test_paired_difference_test_with_one_seed_is_mcnemars_exact_test():
    """Ten images, A right on all, B wrong on five: swapping the pairs at random is exactly the fair
    coin on the five discordant images (p = 2 * 0.5 ** 5), McNemar's exact test."""
    y = np.repeat([0, 1], 5)
    a = np.where(y == 1, 0.9, 0.1)
    b = a.copy()
    b[[0, 1, 5, 6, 7]] = 1 - b[[0, 1, 5, 6, 7]]
    out = paired_difference_test(y, a, b, "accuracy", n_resamples=2000)
    assert out["exact"] and out["difference"] == pytest.approx(-0.5)
    assert out["p_value"] == pytest.approx(mcnemar((a >= 0.5) == y, (b >= 0.5) == y)["p_value"]) == pytest.approx(0.0625)
    same = paired_difference_test(y, a, a.copy(), "roc_auc", n_resamples=2000)
    assert same["difference"] == 0 and same["p_value"] == 1.0


def test_paired_difference_test_detects_a_real_gap_in_auc_with_seeds():
    y, a = _scores(7, n_real=60, n_gen=60)
    rng = np.random.default_rng(8)
    noisy = np.clip(np.column_stack([a + rng.normal(0, 0.5, len(a)) for _ in range(2)]), 0, 1)
    out = paired_difference_test(y, np.column_stack([a, a]), noisy, "roc_auc", n_resamples=999, seed=2)
    assert out["difference"] < 0 and out["p_value"] < 0.01 and not out["exact"]
