"""The hypergeometric tail (Fisher's test) against exact rational arithmetic and scipy, and
the operator's statistics without scipy.stats (a memory budget: see stats' docstring)."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sst

from modeldeploy.analysis import hypergeom, stats
from modeldeploy.analyzer import two_proportion_p


def exact_sf(x: int, total: int, successes: int, draws: int) -> Fraction:
    """P(X >= x) as a fraction of binomial coefficients: no rounding anywhere."""
    top = min(draws, successes)
    hits = sum(math.comb(successes, k) * math.comb(total - successes, draws - k) for k in range(max(x, 0), top + 1))
    return Fraction(hits, math.comb(total, draws))


def relative_error(value: float, num: int, den: int) -> float:
    """|value - num/den| / (num/den) in integers (a Fraction would reduce huge numbers by gcd)."""
    p, q = value.as_integer_ratio()
    return abs(p * den - num * q) / (num * q)


@settings(max_examples=300, deadline=None)
@given(st.integers(1, 3000), st.data())
def test_tail_equals_exact_rational_arithmetic(total: int, data: st.DataObject) -> None:
    successes, draws = data.draw(st.integers(0, total)), data.draw(st.integers(0, total))
    lo, hi = max(0, draws - (total - successes)), min(draws, successes)
    x = data.draw(st.integers(lo - 1, hi + 1))
    exact = exact_sf(x, total, successes, draws)
    got = hypergeom.sf(x, total, successes, draws)
    if exact < Fraction(1, 10**300):  # past double precision's range: only 0 or a denormal is right
        assert got < 1e-300
    else:
        assert float(abs(Fraction(got) - exact) / exact) < 1e-12, (got, float(exact))


@pytest.mark.parametrize(("x", "total", "successes", "draws"), [
    (200, 200_000, 350, 100_000),  # error counts at 100,000 requests per version
    (1_100, 200_000, 2_100, 100_000),  # the slowest 1 % of requests
    (3, 200_000, 10, 100_000),
    (55_100, 200_000, 110_000, 100_000),  # counts near the middle, where lgamma loses most
])
def test_one_table_at_busy_service_counts_is_exact_to_1e_13(x: int, total: int, successes: int, draws: int) -> None:
    # Differences of lgamma values near 1e6 are off by 1e-12 to 7e-10 on these; Loader's form is not.
    num = math.comb(successes, x) * math.comb(total - successes, draws - x)
    assert relative_error(math.exp(hypergeom.log_pmf(x, total, successes, draws)), num, math.comb(total, draws)) < 1e-13


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([10**4, 10**5, 10**6, 10**7]), st.sampled_from([1, 10, 100, 1000]), st.data())
def test_fisher_agrees_with_scipy_at_large_counts(n: int, rarity: int, data: st.DataObject) -> None:
    nb, nc = n, data.draw(st.integers(n // 10, n))
    rate = data.draw(st.floats(0.0, 1.0)) / rarity
    eb = min(nb, round(rate * nb))
    mean = (eb + data.draw(st.integers(0, n // rarity))) * nc / (nb + nc)
    ec = min(nc, max(0, int(mean + data.draw(st.floats(-8, 10)) * math.sqrt(mean + 1))))
    expected = sst.fisher_exact([[ec, nc - ec], [eb, nb - eb]], alternative="greater").pvalue
    # scipy (Boost) is itself off by up to ~2e-9 relative at ten million requests (measured
    # against exact integers), so this can only ask for that much.
    assert stats.fisher_greater(ec, nc, eb, nb) == pytest.approx(expected, rel=1e-8, abs=1e-300)


@given(st.floats(-40, 40), st.floats(0.5, 0.999999))
def test_normal_tail_and_quantile_are_scipy_stats_own(z: float, confidence: float) -> None:
    assert stats.normal_sf(z) == sst.norm.sf(z)
    q = sst.norm.ppf(0.5 + confidence / 2)  # the Wilson interval's z
    centre = (0.3 + q * q / 200) / (1 + q * q / 100)
    half = q * math.sqrt(0.3 * 0.7 / 100 + q * q / 40000) / (1 + q * q / 100)
    assert stats.wilson_interval(30, 100, confidence) == pytest.approx((centre - half, centre + half), rel=1e-15)


def test_two_proportion_p_is_the_pooled_z_test() -> None:
    class Result:
        baseline_rate, candidate_rate, n_baseline, n_candidate = 0.30, 0.36, 1000, 900

    pooled = (300 + 324) / 1900
    z = 0.06 / math.sqrt(pooled * (1 - pooled) * (1 / 1000 + 1 / 900))
    assert two_proportion_p(Result()) == pytest.approx(2 * sst.norm.sf(z), rel=1e-14)


def test_the_operators_statistics_do_not_import_scipy_stats() -> None:
    # scipy.stats costs the operator ~45 MB of resident memory; importing everything the
    # operator runs, analysis included, must not load it.
    code = ("import json, sys, modeldeploy.handlers, modeldeploy.analysis, modeldeploy.analysis.sequential_analyse; "
            "print(json.dumps(sorted(m for m in sys.modules if m.startswith('scipy'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert "scipy.special" in loaded  # what the analysis does use (the import really happened)
    assert not [m for m in loaded if m.startswith("scipy.stats")], loaded
