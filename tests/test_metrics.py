"""The evaluation metrics agree with scikit-learn, handle one-class sets, and the paired test is exact."""

from math import comb

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn import metrics as skm

from helpers.classify.metrics import binary_metrics, bootstrap_ci, mcnemar, roc_points
from helpers.core.stats import bca_interval

# Ties on purpose: three images at exactly 0.5 (predicted generated: p >= threshold) and two at 0.8.
Y_TIES = np.array([0, 0, 1, 1, 0, 1, 1, 0, 0, 1, 0, 1])
P_TIES = np.array([0.1, 0.5, 0.5, 0.9, 0.5, 0.2, 0.8, 0.3, 0.8, 0.7, 0.05, 0.95])


def _check_against_sklearn(y, p, threshold=0.5):
    m = binary_metrics(y, p, threshold)
    pred = (p >= threshold).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
    assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (tn, fp, fn, tp)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y, pred, zero_division=0))
    assert m["recall"] == pytest.approx(skm.recall_score(y, pred))
    assert m["f1"] == pytest.approx(skm.f1_score(y, pred, zero_division=0))
    assert m["roc_auc"] == pytest.approx(skm.roc_auc_score(y, p))
    assert m["average_precision"] == pytest.approx(skm.average_precision_score(y, p))
    assert m["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred))
    assert m["accuracy_real"] == pytest.approx(tn / (tn + fp))
    assert m["accuracy_generated"] == pytest.approx(tp / (tp + fn))
    assert m["n_real"] == (y == 0).sum() and m["n_generated"] == (y == 1).sum() and m["n"] == len(y)
    assert m["note"] is None
    return m


def test_metrics_agree_with_sklearn_with_ties():
    m = _check_against_sklearn(Y_TIES, P_TIES)
    # by hand: 0.5 counts as generated, so the real images at 0.5, 0.5 and 0.8 are false positives
    assert (m["tn"], m["fp"], m["fn"], m["tp"]) == (3, 3, 1, 5)
    assert 0.5 < m["roc_auc"] < 1


def test_metrics_agree_with_sklearn_at_another_threshold():
    _check_against_sklearn(Y_TIES, P_TIES, threshold=0.75)


def test_perfect_separation():
    y = np.array([0, 0, 0, 1, 1, 1])
    p = np.array([0.0, 0.2, 0.49, 0.51, 0.9, 1.0])
    m = _check_against_sklearn(y, p)
    assert m["accuracy"] == m["roc_auc"] == m["average_precision"] == m["balanced_accuracy"] == 1.0
    assert (m["fp"], m["fn"]) == (0, 0)


def test_all_scores_tied():
    y = np.array([0, 1, 0, 1])
    m = _check_against_sklearn(y, np.full(4, 0.5))
    assert m["roc_auc"] == 0.5 and m["accuracy_real"] == 0.0 and m["accuracy_generated"] == 1.0


def test_generated_only_reports_accuracy_and_refuses_two_class_metrics():
    m = binary_metrics([1, 1, 1, 1], [0.9, 0.8, 0.3, 0.6])
    assert m["accuracy"] == m["accuracy_generated"] == 0.75
    assert m["accuracy_real"] is None and m["n_real"] == 0 and m["n_generated"] == 4
    for key in ("balanced_accuracy", "roc_auc", "average_precision", "precision", "recall", "f1"):
        assert m[key] is None
    assert "both classes" in m["note"] and "balanced accuracy" in m["note"] and "ROC-AUC" in m["note"]
    assert (m["tp"], m["fn"], m["tn"], m["fp"]) == (3, 1, 0, 0)


def test_real_only():
    m = binary_metrics([0, 0], [0.1, 0.7])
    assert m["accuracy"] == m["accuracy_real"] == 0.5 and m["accuracy_generated"] is None
    assert m["roc_auc"] is None and "only real images" in m["note"]


@pytest.mark.parametrize("y,p,match", [
    ([0, 1], [0.5], "one length"),
    ([], [], "empty"),
    ([0, 2], [0.1, 0.2], "0 \\(real\\) or 1"),
    ([0, 1], [0.1, np.nan], "NaN"),
    ([0, 1], [0.1, 1.5], "within"),
])
def test_bad_inputs_are_refused(y, p, match):
    with pytest.raises(ValueError, match=match):
        binary_metrics(y, p)


def test_roc_points_are_sklearns():
    pts = roc_points(Y_TIES, P_TIES)
    fpr, tpr, thr = skm.roc_curve(Y_TIES, P_TIES)
    assert np.allclose(pts["fpr"], fpr) and np.allclose(pts["tpr"], tpr) and np.allclose(pts["threshold"], thr)
    with pytest.raises(ValueError, match="one class"):
        roc_points([1, 1], [0.2, 0.3])


def _pairs(a_only, b_only, both, neither):
    a = [True] * a_only + [False] * b_only + [True] * both + [False] * neither
    b = [False] * a_only + [True] * b_only + [True] * both + [False] * neither
    return np.array(a), np.array(b)


def test_mcnemar_exact_on_known_counts():
    # 1 vs 6 discordant: two-sided exact p = 2 * (C(7,0) + C(7,1)) / 2^7 = 0.125
    r = mcnemar(*_pairs(1, 6, 90, 3))
    assert (r["a_only"], r["b_only"], r["both"], r["neither"], r["n"]) == (1, 6, 90, 3, 100)
    assert r["p_value"] == pytest.approx(0.125)
    assert r["accuracy_a"] == pytest.approx(0.91) and r["accuracy_b"] == pytest.approx(0.96)
    # 10 vs 2: 2 * (1 + 12 + 66) / 4096
    assert mcnemar(*_pairs(10, 2, 5, 0))["p_value"] == pytest.approx(2 * sum(comb(12, k) for k in range(3)) / 4096)
    # symmetric in the two models, 1 with no discordant pair, capped at 1 when balanced
    assert mcnemar(*_pairs(6, 1, 0, 0))["p_value"] == pytest.approx(0.125)
    assert mcnemar(*_pairs(0, 0, 5, 5))["p_value"] == 1.0
    assert mcnemar(*_pairs(3, 3, 0, 0))["p_value"] == 1.0


def test_mcnemar_refuses_unpaired():
    with pytest.raises(ValueError, match="paired"):
        mcnemar([True, False], [True])


def test_bootstrap_ci_is_seeded_and_brackets_the_estimate():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 100)
    p = np.clip(0.5 + (y - 0.5) * 0.4 + rng.normal(0, 0.2, 200), 0, 1)
    a = bootstrap_ci(y, p, "accuracy", n=300, seed=3)
    assert a == bootstrap_ci(y, p, "accuracy", n=300, seed=3)
    assert a["low"] <= a["estimate"] <= a["high"] and a["low"] < a["high"]
    assert a["estimate"] == pytest.approx(binary_metrics(y, p)["accuracy"])
    auc = bootstrap_ci(y, p, "roc_auc", n=200, seed=0, level=0.9)
    assert auc["low"] <= auc["estimate"] <= auc["high"] <= 1 and auc["level"] == 0.9
    custom = bootstrap_ci(y, p, lambda yy, pp: float(np.mean(pp)), n=50)
    assert custom["estimate"] == pytest.approx(p.mean())


def test_bootstrap_ci_refuses_what_it_cannot_compute():
    with pytest.raises(ValueError, match="need both classes"):
        bootstrap_ci([1, 1, 1], [0.2, 0.8, 0.9], "roc_auc", n=10)
    with pytest.raises(ValueError, match="unknown metric"):
        bootstrap_ci([0, 1], [0.2, 0.8], "auc", n=10)
    # one class: its accuracy still has an interval
    one = bootstrap_ci([1, 1, 1, 1], [0.2, 0.8, 0.9, 0.7], "accuracy", n=100)
    assert one["estimate"] == 0.75 and 0 <= one["low"] <= one["high"] <= 1


def _wilson_ref(k, n, level=0.95):
    """The reference: scipy.stats.binomtest's Wilson interval."""
    ci = binomtest(k, n).proportion_ci(confidence_level=level, method="wilson")
    return ci.low, ci.high


def test_wilson_intervals_on_no_error_are_not_a_single_point():
    y = np.repeat([0, 1], [40, 60])
    m = binary_metrics(y, np.where(y == 1, 0.9, 0.1))
    assert m["accuracy"] == m["accuracy_real"] == m["accuracy_generated"] == 1.0  # unchanged
    for key, n in (("accuracy", 100), ("accuracy_real", 40), ("accuracy_generated", 60)):
        assert m[f"{key}_high"] == 1.0 and m[f"{key}_low"] < 1.0
        assert (m[f"{key}_low"], m[f"{key}_high"]) == pytest.approx(_wilson_ref(n, n))
    assert m["accuracy_interval"] == "Wilson score, 95%"
    # the percentile bootstrap on the same set: the single point Wilson replaces
    boot = bootstrap_ci(y, np.where(y == 1, 0.9, 0.1), "accuracy", n=200)
    assert boot["low"] == boot["high"] == 1.0 and boot["method"] == "percentile"


def test_wilson_intervals_use_the_confusion_counts():
    m = binary_metrics(Y_TIES, P_TIES, level=0.9)  # tn, fp, fn, tp = 3, 3, 1, 5
    assert (m["accuracy_low"], m["accuracy_high"]) == pytest.approx(_wilson_ref(8, 12, 0.9))
    assert (m["accuracy_real_low"], m["accuracy_real_high"]) == pytest.approx(_wilson_ref(3, 6, 0.9))
    assert (m["accuracy_generated_low"], m["accuracy_generated_high"]) == pytest.approx(_wilson_ref(5, 6, 0.9))
    assert m["accuracy_interval"] == "Wilson score, 90%"
    one = binary_metrics([1, 1, 1, 1], [0.9, 0.8, 0.3, 0.6])
    assert one["accuracy_real_low"] is None and one["accuracy_real_high"] is None
    assert (one["accuracy_generated_low"], one["accuracy_generated_high"]) == pytest.approx(_wilson_ref(3, 4))


def test_bootstrap_ci_bca_is_stratified_bca_of_the_metric():
    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], [60, 40])
    p = np.clip(0.5 + (y - 0.5) * 0.5 + rng.normal(0, 0.2, 100), 0, 1)
    r = bootstrap_ci(y, p, "roc_auc", n=400, seed=2, method="bca")
    assert r["method"] == "BCa" and r["note"] is None and r["metric"] == "roc_auc"
    assert r["estimate"] == pytest.approx(skm.roc_auc_score(y, p)) and r["low"] < r["estimate"] < r["high"] <= 1
    # the same interval as bca_interval on the two classes (one group each: stratified)
    classes = [np.column_stack([y[y == c], p[y == c]]) for c in (0, 1)]
    ref = bca_interval(lambda *g: skm.roc_auc_score(np.concatenate(g)[:, 0], np.concatenate(g)[:, 1]),
                       classes, n=400, seed=2)
    assert (r["low"], r["high"]) == pytest.approx((ref["low"], ref["high"]))
    pct = bootstrap_ci(y, p, "roc_auc", n=400, seed=2)
    assert pct["method"] == "percentile" and pct["note"] is None and (pct["low"], pct["high"]) != (r["low"], r["high"])


def test_bootstrap_ci_bca_on_no_error_says_so_and_unknown_methods_are_refused():
    y = np.repeat([0, 1], 10)
    r = bootstrap_ci(y, np.where(y == 1, 0.9, 0.1), "roc_auc", n=100, method="bca")
    assert r["low"] == r["high"] == r["estimate"] == 1.0 and "BCa is undefined" in r["note"]
    with pytest.raises(ValueError, match="unknown method"):
        bootstrap_ci(y, np.where(y == 1, 0.9, 0.1), "accuracy", n=10, method="BCa-ish")
