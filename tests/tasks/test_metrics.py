"""Each metric against values worked out by hand."""

import numpy as np
import pytest

from agentladder.tasks.metrics import (
    Metric,
    accuracy,
    bootstrap_ci,
    confusion,
    macro_f1,
    mcnemar_exact,
    mean,
    mean_metric,
    normalise_answer,
    numbers_equal,
    paired_test,
    precision_recall_f1,
    token_f1,
)


def test_accuracy():
    assert accuracy(["a", "b", "c", "d"], ["a", "x", "c", "y"]) == 0.5
    with pytest.raises(ValueError):
        accuracy([1], [1, 2])


def test_precision_recall_f1():
    # TP = 2 (rows 0, 1), FP = 1 (row 2), FN = 1 (row 3), TN = 1 (row 4)
    pred = [True, True, True, False, False]
    gold = [True, True, False, True, False]
    p, r, f1 = precision_recall_f1(pred, gold)
    assert p == pytest.approx(2 / 3) and r == pytest.approx(2 / 3) and f1 == pytest.approx(2 / 3)
    assert precision_recall_f1([False, False], [False, False]) == (0.0, 0.0, 0.0)


def test_macro_f1():
    # class a: TP 1, FP 1, FN 1 -> P 1/2, R 1/2, F1 1/2
    # class b: TP 1, FP 1, FN 0 -> P 1/2, R 1,   F1 2/3
    # class c: TP 0, FP 0, FN 1 -> F1 0          macro = (1/2 + 2/3 + 0) / 3 = 7/18
    pred = ["a", "b", "b", "a"]
    gold = ["a", "b", "a", "c"]
    assert macro_f1(pred, gold) == pytest.approx(7 / 18)


def test_token_f1_and_normalisation():
    assert normalise_answer("The  Cat, sat!") == "cat sat"
    # pred "cat sat on mat" vs gold "the cat sat": common {cat, sat} = 2; P 2/4, R 2/2 -> F1 2/3
    assert token_f1("cat sat on mat", "the cat sat") == pytest.approx(2 / 3)
    assert token_f1("", "") == 1.0 and token_f1("x", "") == 0.0 and token_f1("dog", "cat") == 0.0


def test_numbers_equal_is_relative():
    assert numbers_equal(0.05, 0.05 * (1 + 5e-7))
    assert not numbers_equal(0.05, 0.0501)
    assert numbers_equal(3000, 3000.0) and numbers_equal(0, 0) and not numbers_equal(0, 1e-12)


def test_confusion_skips_unknown_truth():
    pred = [True, False, True, False, True]
    gold = [True, True, False, False, None]
    assert confusion(pred, gold) == {"tp": 1, "fn": 1, "fp": 1, "tn": 1}


def test_mean_metric_leaves_out_none():
    m = mean_metric([1, 0, None, 1, True])
    assert m.value == pytest.approx(0.75) and m.n == 4
    assert mean([None, None]) is None
    assert mean_metric([None]) == Metric(None, None, None, 0)
    assert str(Metric(0.5, 0.25, 0.75, 4)) == "0.500 [0.250, 0.750]"


def test_bootstrap_ci_against_a_reference_loop():
    values = [1, 0, 1, 1, 0, 1, 0, 1, 1, 1]
    low, high = bootstrap_ci(values, n_resamples=500, seed=3)
    # The same resamples drawn the slow way, then numpy's percentiles.
    rng = np.random.default_rng(3)
    idx = rng.integers(0, len(values), size=(500, len(values)))
    means = [np.mean([values[i] for i in row]) for row in idx]
    assert low == pytest.approx(np.percentile(means, 2.5)) and high == pytest.approx(np.percentile(means, 97.5))
    assert low <= 0.7 <= high
    assert bootstrap_ci([0.4] * 20) == (pytest.approx(0.4), pytest.approx(0.4))
    assert bootstrap_ci([]) == (None, None)


def test_bootstrap_ci_with_a_statistic_over_pairs():
    pairs = [("a", "a"), ("b", "b"), ("a", "b"), ("b", "b")]
    low, high = bootstrap_ci(pairs, lambda rows: macro_f1([p for p, _ in rows], [t for _, t in rows]), n_resamples=200)
    assert 0 <= low <= high <= 1


def test_mcnemar_exact_by_hand():
    # b = 6 gained, c = 0 lost: 2 * P(X <= 0), X ~ Bin(6, 1/2) = 2 / 64
    assert mcnemar_exact(6, 0) == 2 / 64 == mcnemar_exact(0, 6)
    # b = 8, c = 1: 2 * (C(9,0) + C(9,1)) / 2^9 = 2 * 10 / 512
    assert mcnemar_exact(8, 1) == pytest.approx(20 / 512)
    # b = 7, c = 1: 2 * 9 / 256 = 0.0703 (not below 0.05); balanced counts give 1
    assert mcnemar_exact(7, 1) == pytest.approx(18 / 256) and mcnemar_exact(5, 5) == 1.0 and mcnemar_exact(0, 0) == 1.0
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 2)


def test_mcnemar_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for b, c in [(6, 0), (8, 1), (12, 3), (11, 3), (40, 25), (3, 9), (1, 1)]:
        assert mcnemar_exact(b, c) == pytest.approx(stats.binomtest(min(b, c), b + c, 0.5).pvalue, rel=1e-12)


def test_paired_test_counts_only_rows_both_sides_score():
    before = [True, True, False, False, False, None, True]
    after = [True, False, True, True, False, True, None]
    t = paired_test(before, after, n_resamples=500)
    assert (t.gained, t.lost, t.n) == (2, 1, 5) and t.gain == pytest.approx(1 / 5)
    assert t.p == mcnemar_exact(2, 1) == 1.0
    low, high = t.gain_ci
    assert low <= t.gain <= high
    with pytest.raises(ValueError, match="same rows"):
        paired_test([True], [True, False])
