"""The statistics against scipy and against values computed by hand or published."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy import stats as sst
from scipy.spatial.distance import jensenshannon

from modeldeploy.analysis import stats

INF = math.inf
SELDON = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, INF]


def cumulative(bounds: list[float], counts: list[float]) -> list[tuple[float, float]]:
    return list(zip(bounds, np.cumsum(counts).tolist()))


# --- histogram_quantile ----------------------------------------------------------------

def test_quantile_interpolates_linearly_within_the_bucket() -> None:
    # 100 observations: 50 in (0, 0.1], 40 in (0.1, 0.2], 10 in (0.2, +Inf).
    b = [(0.1, 50), (0.2, 90), (INF, 100)]
    assert stats.histogram_quantile(0.5, b) == pytest.approx(0.1)  # rank 50 ends the first bucket
    assert stats.histogram_quantile(0.7, b) == pytest.approx(0.1 + 0.1 * (70 - 50) / 40)  # 0.15
    assert stats.histogram_quantile(0.25, b) == pytest.approx(0.05)  # first bucket starts at 0


def test_quantile_in_the_inf_bucket_is_the_highest_finite_bound() -> None:
    assert stats.histogram_quantile(0.99, [(0.1, 50), (0.2, 90), (INF, 100)]) == 0.2


def test_quantile_nan_without_inf_bucket_or_observations_like_promql() -> None:
    assert math.isnan(stats.histogram_quantile(0.5, [(0.1, 5), (0.2, 10)]))
    assert math.isnan(stats.histogram_quantile(0.5, [(0.1, 0), (INF, 0)]))
    assert stats.histogram_quantile(1.5, [(0.1, 1), (INF, 1)]) == INF
    assert stats.histogram_quantile(-0.5, [(0.1, 1), (INF, 1)]) == -INF


def test_quantile_repairs_non_monotonic_counts_and_merges_duplicate_bounds() -> None:
    # increase() extrapolates each bucket separately, so 0.2 can come out below 0.1.
    assert stats.histogram_quantile(0.5, [(0.1, 50.4), (0.2, 50.0), (INF, 100)]) == pytest.approx(
        stats.histogram_quantile(0.5, [(0.1, 50.4), (0.2, 50.4), (INF, 100)]))
    assert stats.normalise_buckets([(0.1, 2), (0.1, 3), (INF, 10)]) == [(0.1, 5.0), (INF, 10.0)]


@given(st.lists(st.integers(0, 50), min_size=15, max_size=15), st.floats(0.01, 0.99))
def test_quantile_lies_in_the_bucket_holding_the_rank(counts: list[int], q: float) -> None:
    b = cumulative(SELDON, counts)
    total = sum(counts)
    value = stats.histogram_quantile(q, b)
    if total == 0:
        assert math.isnan(value)
        return
    i = next(i for i, (_, c) in enumerate(b) if c >= q * total)
    lo = 0.0 if i == 0 else SELDON[i - 1]
    hi = SELDON[i] if i < len(SELDON) - 1 else SELDON[-2]
    assert lo - 1e-12 <= value <= hi + 1e-12


# --- Fisher, Wilson, Newcombe ------------------------------------------------------------

@settings(max_examples=200)
@given(st.integers(1, 300), st.integers(1, 300), st.data())
def test_fisher_greater_equals_scipy(n1: int, n2: int, data: st.DataObject) -> None:
    x1, x2 = data.draw(st.integers(0, n1)), data.draw(st.integers(0, n2))
    expected = sst.fisher_exact([[x1, n1 - x1], [x2, n2 - x2]], alternative="greater").pvalue
    assert stats.fisher_greater(x1, n1, x2, n2) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_fisher_on_a_zero_error_baseline_matches_hand_computation() -> None:
    # 0 vs k errors at 500 each: P = C(500,k)/C(1000,k), about 2^-k.
    for k in (5, 8):
        exact = math.comb(500, k) / math.comb(1000, k)
        assert stats.fisher_greater(k, 500, 0, 500) == pytest.approx(exact, rel=1e-9)
    assert stats.fisher_greater(5, 500, 0, 500) == pytest.approx(0.0309, abs=1e-4)
    assert stats.fisher_greater(8, 500, 0, 500) == pytest.approx(0.0038, abs=1e-4)


def test_wilson_interval_published_value() -> None:
    # Newcombe (1998), Statistics in Medicine 17:857, table I: 81/263 -> 0.2553 to 0.3662.
    lo, hi = stats.wilson_interval(81, 263, 0.95)
    assert (lo, hi) == pytest.approx((0.2553, 0.3662), abs=1e-4)


@pytest.mark.parametrize(("x1", "n1", "x2", "n2", "lower", "upper"), [
    # Newcombe (1998), Statistics in Medicine 17:873, table II, method 10.
    (56, 70, 48, 80, 0.0524, 0.3339),
    (9, 10, 3, 10, 0.1705, 0.8090),
    (5, 56, 0, 29, -0.0381, 0.1926),
    (0, 10, 0, 20, -0.1611, 0.2775),
    (10, 10, 0, 20, 0.6791, 1.0000),
])
def test_newcombe_interval_published_values(x1: int, n1: int, x2: int, n2: int, lower: float, upper: float) -> None:
    d, lo, hi = stats.newcombe_interval(x1, n1, x2, n2, 0.95)
    assert d == pytest.approx(x1 / n1 - x2 / n2)
    assert (lo, hi) == pytest.approx((lower, upper), abs=1e-4)


# --- chi-square, JS, PSI -----------------------------------------------------------------

@settings(max_examples=100)
@given(st.lists(st.tuples(st.integers(20, 400), st.integers(20, 400)), min_size=2, max_size=12))
def test_chi2_equals_scipy_when_no_category_is_sparse(pairs: list[tuple[int, int]]) -> None:
    a, b = [x for x, _ in pairs], [y for _, y in pairs]
    expected = np.outer([sum(a), sum(b)], np.add(a, b)) / (sum(a) + sum(b))
    assume(expected.min() >= 5)
    stat, p, dof, _ = sst.chi2_contingency([a, b], correction=False)
    got = stats.chi2_homogeneity(a, b)
    assert (got.statistic, got.p_value, got.dof) == (pytest.approx(stat), pytest.approx(p, abs=1e-12), dof)


def test_chi2_hand_computed() -> None:
    # [[10, 20], [20, 10]]: expected 15 everywhere, chi2 = 4 * 25/15 = 6.667, 1 dof.
    got = stats.chi2_homogeneity([10, 20], [20, 10])
    assert got.statistic == pytest.approx(20 / 3)
    assert got.p_value == pytest.approx(0.009823, abs=1e-6)


def test_sparse_categories_are_pooled_not_dropped() -> None:
    # Classes 2-4 are rare; pooled into one category they still carry the shift.
    a, b = [500, 480, 3, 4, 4], [490, 470, 2, 4, 5]
    ma, mb = stats.merge_sparse(a, b)
    assert sum(ma) == sum(a) and sum(mb) == sum(b)
    assert (len(ma), ma[-1], mb[-1]) == (3, 11, 11)
    # A pooled rest that is still sparse joins the smallest real category.
    ma, mb = stats.merge_sparse([500, 100, 1], [500, 100, 2])
    assert (ma, mb) == ([500, 101], [500, 102])
    assert stats.merge_sparse([5, 0], [5, 0]) == ([5.0], [5.0])  # empty everywhere: dropped


def test_chi2_with_one_category_has_nothing_to_compare() -> None:
    assert stats.chi2_homogeneity([100], [50]).p_value == 1.0


@settings(max_examples=100)
@given(st.lists(st.tuples(st.integers(0, 100), st.integers(0, 100)), min_size=2, max_size=12))
def test_jensen_shannon_equals_scipy_and_is_bounded(pairs: list[tuple[int, int]]) -> None:
    a, b = [x for x, _ in pairs], [y for _, y in pairs]
    if sum(a) == 0 or sum(b) == 0:
        return
    got = stats.jensen_shannon(a, b)
    assert got == pytest.approx(float(jensenshannon(a, b)), abs=1e-9)
    assert got == pytest.approx(stats.jensen_shannon(b, a))
    assert 0 <= got <= math.sqrt(math.log(2)) + 1e-12


def test_jensen_shannon_extremes() -> None:
    assert stats.jensen_shannon([1, 2, 3], [10, 20, 30]) == pytest.approx(0.0, abs=1e-12)
    assert stats.jensen_shannon([1, 0], [0, 1]) == pytest.approx(math.sqrt(math.log(2)))


def test_psi_hand_computed() -> None:
    # (0.3-0.5) ln(0.3/0.5) + (0.7-0.5) ln(0.7/0.5) = 0.1022 + 0.0673 = 0.1695
    assert stats.psi([50, 50], [30, 70]) == pytest.approx(0.2 * math.log(5 / 3) + 0.2 * math.log(7 / 5))
    assert math.isfinite(stats.psi([100, 0], [50, 50]))


# --- latency tests -----------------------------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 30), min_size=6, max_size=6), st.lists(st.integers(0, 30), min_size=6, max_size=6))
def test_mann_whitney_equals_scipy_on_the_bucketed_values(cb: list[int], cc: list[int]) -> None:
    bounds = [0.01, 0.05, 0.1, 0.5, 1.0, INF]
    if sum(cb) == 0 or sum(cc) == 0:
        return
    values = [0.005, 0.03, 0.07, 0.3, 0.7, 2.0]  # one value per bucket: ties within buckets
    xb = np.repeat(values, cb)
    xc = np.repeat(values, cc)
    got = stats.mann_whitney_greater(cumulative(bounds, cb), cumulative(bounds, cc))
    if len(set(np.concatenate([xb, xc]))) == 1:
        assert got.p_value == 1.0
        return
    ref = sst.mannwhitneyu(xc, xb, alternative="greater", method="asymptotic", use_continuity=True)
    assert got.p_value == pytest.approx(ref.pvalue, rel=1e-7, abs=1e-12)
    assert got.superiority == pytest.approx(ref.statistic / (len(xb) * len(xc)))


def test_tail_test_counts_above_the_lower_bound_of_the_pooled_quantile_bucket() -> None:
    bounds = [0.05, 0.1, 0.25, INF]
    base = cumulative(bounds, [900, 90, 10, 0])   # 1000
    cand = cumulative(bounds, [700, 200, 100, 0])  # 1000
    t = stats.tail_test(0.99, base, cand)
    # pooled: 1600, 1890, 2000 -> rank 1980 falls in (0.1, 0.25]: count above 0.1.
    assert t.threshold == 0.1
    assert (t.baseline_over, t.candidate_over) == (10, 100)
    assert t.p_value == pytest.approx(sst.fisher_exact([[100, 900], [10, 990]], alternative="greater").pvalue)


def test_tail_test_with_buckets_that_differ_uses_the_common_bounds() -> None:
    base = [(0.1, 90), (0.2, 95), (INF, 100)]
    cand = [(0.1, 80), (0.15, 85), (0.2, 90), (INF, 100)]
    t = stats.tail_test(0.9, base, cand)
    assert t.threshold in (0.1, 0.2) and t.baseline_n == 100 and t.candidate_n == 100
