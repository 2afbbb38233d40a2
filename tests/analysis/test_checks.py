"""Each check's outcome on crafted counts, and the numbers it carries."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sst
from scipy.spatial.distance import jensenshannon

from modeldeploy.analysis import checks, stats
from modeldeploy.analysis.kinds.custom import CustomMetric
from modeldeploy.analysis.kinds.error_rate import ErrorRateMetric
from modeldeploy.analysis.kinds.latency import LatencyMetric
from modeldeploy.analysis.kinds.outputs import OutputMetric
from modeldeploy.providers import NoData, NotANumber, ProviderUnreachable, TooManySeries
from modeldeploy.verdicts import Outcome

INF = math.inf
BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, INF]
P99 = LatencyMetric("p99")


def hist(counts: dict[float, int]) -> list[tuple[float, float]]:
    """Cumulative Seldon buckets from {upper bound: count in that bucket}."""
    running, out = 0, []
    for le in BOUNDS:
        running += counts.get(le, 0)
        out.append((le, float(running)))
    return out


FAST = hist({0.025: 600, 0.05: 300, 0.075: 80, 0.1: 15, 0.25: 5})          # 1000 requests
SLOW = hist({0.025: 300, 0.05: 400, 0.075: 150, 0.1: 100, 0.25: 50})       # 1000, shifted up


# --- latency ----------------------------------------------------------------------------

def test_latency_fails_when_over_the_limit_and_significantly_slower() -> None:
    r = checks.latency(P99, FAST, SLOW, 100, "1m")
    assert r.outcome == Outcome.FAIL
    assert r.baseline == pytest.approx(1000 * stats.histogram_quantile(0.99, FAST))
    assert r.candidate == pytest.approx(1000 * stats.histogram_quantile(0.99, SLOW))
    assert r.threshold == pytest.approx(r.baseline)  # no limits configured: the baseline's p99
    assert (r.n_baseline, r.n_candidate) == (1000, 1000)
    assert r.p_value is not None and r.p_value < 1e-6
    assert r.statistic is not None and r.statistic > 0.5
    assert "over the limit and significantly slower" in r.message and "p99 " in r.message


def test_latency_passes_when_the_candidate_is_faster() -> None:
    r = checks.latency(P99, SLOW, FAST, 100, "1m")
    assert r.outcome == Outcome.PASS and "within the limit" in r.message


def test_latency_over_limit_but_not_significant_passes_small_noise() -> None:
    # 100 requests each, one slow request more in the candidate: p99 moves, nothing is significant.
    base = hist({0.025: 90, 0.05: 9, 0.25: 1})
    cand = hist({0.025: 89, 0.05: 9, 0.25: 2})
    r = checks.latency(P99, base, cand, 100, "1m")
    assert r.outcome == Outcome.PASS and "over the limit but not significantly slower" in r.message
    assert r.candidate > r.baseline  # type: ignore[operator]


def test_latency_max_ms_alone_tolerates_a_slower_candidate_under_the_slo() -> None:
    r = checks.latency(LatencyMetric("p99", max_ms=500), FAST, SLOW, 100, "1m")
    assert r.outcome == Outcome.PASS and r.threshold == 500
    r = checks.latency(LatencyMetric("p99", max_ms=150), FAST, SLOW, 100, "1m")
    assert r.outcome == Outcome.FAIL and r.threshold == 150


def test_latency_ratio_limit() -> None:
    ratio = stats.histogram_quantile(0.99, SLOW) / stats.histogram_quantile(0.99, FAST)
    assert checks.latency(LatencyMetric("p99", max_ratio=ratio * 1.01), FAST, SLOW, 100, "1m").outcome == Outcome.PASS
    assert checks.latency(LatencyMetric("p99", max_ratio=ratio * 0.99), FAST, SLOW, 100, "1m").outcome == Outcome.FAIL
    # Both limits: either one exceeded is enough, the tighter one is the threshold.
    r = checks.latency(LatencyMetric("p99", max_ms=1000, max_ratio=ratio * 0.99), FAST, SLOW, 100, "1m")
    assert r.outcome == Outcome.FAIL and r.threshold == pytest.approx(r.baseline * ratio * 0.99)


def test_latency_too_few_requests_is_inconclusive() -> None:
    few = hist({0.025: 60, 0.05: 39})
    r = checks.latency(P99, FAST, few, 100, "1m")
    assert r.outcome == Outcome.INCONCLUSIVE
    assert r.message == "too few requests in 1m: candidate 99 (minSamples 100)"
    assert (r.n_baseline, r.n_candidate) == (1000, 99)


def test_latency_without_inf_bucket_is_an_error() -> None:
    r = checks.latency(P99, FAST[:-1], SLOW[:-1], 100, "1m")
    assert r.outcome == Outcome.ERROR and "+Inf" in r.message


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 200), min_size=15, max_size=15))
def test_identical_versions_never_fail_latency(counts: list[int]) -> None:
    h = list(zip(BOUNDS, np.cumsum(counts).astype(float)))
    r = checks.latency(P99, h, h, 1, "1m")
    assert r.outcome in (Outcome.PASS, Outcome.INCONCLUSIVE)


# --- error rate ---------------------------------------------------------------------------

ERRORS = ErrorRateMetric("errors")


@pytest.mark.parametrize(("candidate_errors", "outcome"), [(6, Outcome.PASS), (8, Outcome.PASS), (9, Outcome.FAIL)])
def test_zero_error_baseline_needs_significance(candidate_errors: int, outcome: Outcome) -> None:
    r = checks.error_rate(ERRORS, {"200": 500}, {"200": 500 - candidate_errors, "500": candidate_errors}, 100, "1m")
    assert r.outcome == outcome
    assert r.baseline == 0 and r.candidate == pytest.approx(candidate_errors / 500)
    assert r.p_value == pytest.approx(math.comb(500, candidate_errors) / math.comb(1000, candidate_errors))
    # 6 errors: over max but could be chance; 8: over max and too many for chance.
    assert ("not significantly higher" in r.message) == (outcome == Outcome.PASS)


def test_error_rate_under_max_passes_even_if_significant() -> None:
    r = checks.error_rate(ERRORS, {"200": 100000}, {"200": 99950, "500": 50}, 100, "1m")
    assert r.p_value < 1e-10 and r.outcome == Outcome.PASS and "within max" in r.message  # type: ignore[operator]


def test_error_rate_counts_5xx_and_grpc_server_codes_only() -> None:
    codes = {"200": 900, "404": 40, "400": 10, "500": 20, "503": 10, "Internal": 5, "InvalidArgument": 15}
    r = checks.error_rate(ERRORS, {"200": 1000}, codes, 100, "1m")
    assert r.n_candidate == 1000 and r.candidate == pytest.approx(35 / 1000)
    assert checks.is_error_code("Unavailable") and not checks.is_error_code("OK") and not checks.is_error_code("499")


def test_error_rate_too_few_is_inconclusive() -> None:
    assert checks.error_rate(ERRORS, {"200": 20}, {"200": 500}, 100, "1m").outcome == Outcome.INCONCLUSIVE


# --- output distribution ------------------------------------------------------------------

OUTPUTS = OutputMetric("outputs")
UNIFORM = {str(k): 100.0 for k in range(10)}


def test_outputs_fail_when_significant_and_large() -> None:
    shifted = {**UNIFORM, "3": 250.0, "7": 0.0}
    r = checks.output_distribution(OUTPUTS, UNIFORM, shifted, 100, "1m")
    assert r.outcome == Outcome.FAIL
    b, c = list(UNIFORM.values()), [shifted[k] for k in UNIFORM]
    assert r.candidate == pytest.approx(float(jensenshannon(b, c)))
    chi2, p, _, _ = sst.chi2_contingency([b, c], correction=False)
    assert (r.statistic, r.p_value) == (pytest.approx(chi2), pytest.approx(p))
    assert r.threshold == 0.05 and "class '3' 10.0% -> 23.8%" in r.message


def test_outputs_significant_but_tiny_shift_passes_at_big_traffic() -> None:
    base = {str(k): 100000.0 for k in range(10)}
    cand = {**base, "3": 104000.0}  # highly significant, JS ~0.006
    r = checks.output_distribution(OUTPUTS, base, cand, 100, "1m")
    assert r.p_value is not None and r.p_value < 1e-6
    assert r.outcome == Outcome.PASS and "below the effect limit" in r.message


def test_outputs_large_but_not_significant_shift_passes_at_small_traffic() -> None:
    base = {"a": 60.0, "b": 40.0}
    cand = {"a": 50.0, "b": 50.0}  # JS 0.07 but p ~ 0.16
    r = checks.output_distribution(OUTPUTS, base, cand, 100, "1m")
    assert r.candidate > 0.05 and r.p_value > 0.1 and r.outcome == Outcome.PASS  # type: ignore[operator]


def test_outputs_psi_gate_and_new_classes() -> None:
    cand = {**UNIFORM, "new": 200.0}
    r = checks.output_distribution(OutputMetric("o", max_psi=0.1), UNIFORM, cand, 100, "1m")
    assert r.outcome == Outcome.FAIL and r.message.startswith("outputs shifted: PSI ")
    assert r.candidate == pytest.approx(stats.psi(list(UNIFORM.values()) + [0], [*UNIFORM.values(), 200.0]))


def test_outputs_too_few_is_inconclusive() -> None:
    r = checks.output_distribution(OUTPUTS, UNIFORM, {"1": 10.0}, 100, "1m")
    assert r.outcome == Outcome.INCONCLUSIVE and "predictions" in r.message


# --- custom and query errors -------------------------------------------------------------

def test_custom_bounds() -> None:
    m = CustomMetric("c", "q", min=0.0, max=1.0)
    assert checks.custom(m, 0.5, 0.4).outcome == Outcome.PASS
    r = checks.custom(m, 1.5, 0.4)
    assert r.outcome == Outcome.FAIL and r.threshold == 1.0 and r.message == "1.5 (baseline 0.4) is above max 1"
    assert checks.custom(m, -0.1).outcome == Outcome.FAIL
    assert checks.custom(CustomMetric("c", "q", max=1.0), math.inf).outcome == Outcome.FAIL


@pytest.mark.parametrize(("error", "outcome"), [
    (NoData("no series matched: q", "q"), Outcome.INCONCLUSIVE),
    (NotANumber("NaN", "q"), Outcome.ERROR),
    (TooManySeries("2 series", "q"), Outcome.ERROR),
    (ProviderUnreachable("down", "q"), Outcome.ERROR),
])
def test_query_errors_map_to_inconclusive_or_error(error: Exception, outcome: Outcome) -> None:
    r = checks.from_query_error("p99", "candidate v2", error)  # type: ignore[arg-type]
    assert r.outcome == outcome and r.message.startswith("candidate v2: ")
