"""Anytime-valid analysis: the statistics against exact values, and type-I error under
optional stopping measured on seeded A/A streams looked at many times.

The type-I tests are the point of the method: a check looked at after every interval
must fail an identical candidate *ever* with probability at most alpha. They use alpha
0.05 so that 300 seeded rollouts of 40 looks resolve the rate (binomial sd ~1.3 %), and
allow alpha + 0.03: a correct method sits well below alpha, a per-look test re-run 40
times lands far above (the last test shows that the harness can tell the difference).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate
from scipy import stats as sst

from modeldeploy.analysis import binned
from modeldeploy.analysis import sequential as seq
from modeldeploy.analysis.reward import compare_rewards
from modeldeploy.analysis import sequential_checks as sc
from modeldeploy.analysis import stats
from modeldeploy.verdicts import Outcome

BOUNDS = [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10, math.inf]
LOOKS = 40
RUNS = 300
ALPHA = 0.05
TOLERANCE = 0.03


# --- the statistics ---------------------------------------------------------------------

def test_beta_binomial_e_value_is_the_mixture_integral() -> None:
    x, n, p0 = 7, 40, 0.1
    numeric, _ = integrate.quad(lambda p: p ** x * (1 - p) ** (n - x) * sst.beta.pdf(p, 0.5, 0.5), 0, 1)
    assert seq.beta_binomial_log_e(x, n, p0) == pytest.approx(math.log(numeric / (p0 ** x * (1 - p0) ** (n - x))))
    above, _ = integrate.quad(lambda p: p ** x * (1 - p) ** (n - x) * sst.beta.pdf(p, 0.5, 0.5), p0, 1)
    above /= sst.beta.sf(p0, 0.5, 0.5)
    assert seq.beta_binomial_log_e_above(x, n, p0) == pytest.approx(math.log(above / (p0 ** x * (1 - p0) ** (n - x))))


def test_error_share_evidence_is_the_average_over_rate_ratios() -> None:
    x, n, p0 = 6, 11, 0.1
    odds0 = p0 / (1 - p0)
    ratios = [k * odds0 / (1 + k * odds0) for k in seq.ERROR_RATIOS]
    mean_lr = sum((p / p0) ** x * ((1 - p) / (1 - p0)) ** (n - x) for p in ratios) / len(ratios)
    assert seq.ratio_mixture_log_e_above(x, n, p0) == pytest.approx(math.log(mean_lr))
    assert seq.ERROR_RATIOS[0] == pytest.approx(2) and seq.ERROR_RATIOS[-1] == pytest.approx(32)
    # 6 of 11 errors from a candidate with 10 % of traffic (its rate ~10x): the ratio grid
    # weighs this more than Jeffreys' prior on the share, which leans to "all errors".
    assert seq.ratio_mixture_log_e_above(x, n, p0) > seq.beta_binomial_log_e_above(x, n, p0) + 0.3
    assert seq.ratio_mixture_log_e_above(0, 0, p0) == 0.0
    assert seq.ratio_mixture_log_e_above(1, 3, 0.0) == math.inf


def test_one_sided_normal_mixture_is_the_half_normal_integral() -> None:
    s, v, rho = 30.0, 200.0, 40.0
    f = lambda lam: math.exp(lam * s - lam * lam * v / 2) * 2 * sst.norm.pdf(lam, 0, 1 / math.sqrt(rho))  # noqa: E731
    numeric, _ = integrate.quad(f, 0, np.inf)
    assert seq.one_sided_log_e(s, v, rho) == pytest.approx(math.log(numeric), rel=1e-6)


def test_confidence_sequence_is_the_set_of_unrejected_values() -> None:
    lo, hi = seq.beta_binomial_cs(3, 60, 0.01)
    assert 0 < lo < 3 / 60 < hi < 1
    for p, inside in ((lo * 1.01, True), (hi * 0.99, True), (lo * 0.9, False), (hi * 1.1, False)):
        assert (seq.beta_binomial_log_e(3, 60, p) < math.log(100)) == inside
    assert seq.beta_binomial_cs(0, 0, 0.01) == (0.0, 1.0)
    # A smaller alpha never gives a narrower sequence, and more data (same rate) a narrower one.
    assert seq.beta_binomial_cs(3, 60, 0.001)[1] > hi
    assert seq.beta_binomial_cs(30, 600, 0.01)[1] < hi


def test_average_of_e_values() -> None:
    assert seq.average_e([math.log(2), math.log(4)]) == pytest.approx(math.log(3))
    assert seq.average_e([]) == 0.0


def test_one_sided_bounds_are_the_ends_of_the_unrejected_sets() -> None:
    hi = seq.upper_bound(1, 200, 0.04)
    assert seq.beta_binomial_log_e_below(1, 200, hi) == pytest.approx(math.log(25), abs=1e-4)
    e = [seq.beta_binomial_log_e_below(1, 200, hi * f) for f in (0.99, 1.01)]
    assert e[0] < math.log(25) < e[1]
    lo = seq.lower_bound(5, 1000, 0.01)
    assert 0 < lo < 0.005
    assert seq.beta_binomial_log_e_above(5, 1000, lo, seq.RARE) == pytest.approx(math.log(100), abs=1e-3)
    assert seq.upper_bound(1, 200, 0.04) < seq.beta_binomial_cs(1, 200, 0.04, seq.RARE)[1]  # one side is cheaper
    assert seq.upper_bound(0, 0, 0.05) == 1.0 and seq.lower_bound(0, 10, 0.05) == 0.0


def _expected(median: float, sigma: float, n: float) -> list[tuple[float, float]]:
    return _hist(_bucket_p(median, sigma) * n)


def test_a_slow_down_is_measured_without_the_buckets_bias() -> None:
    # Latencies around 120 ms with sigma 0.3 sit in Seldon's 100-250 ms bucket: a bucket's
    # middle reads x1.3 as x1.20, below a 25 % tolerance, so that test could never fail it.
    base, cand = _expected(0.12, 0.3, 1e6), _expected(0.156, 0.3, 1e6)
    shift = binned.fit_shift(BOUNDS, stats.bucket_counts(base), stats.bucket_counts(cand))
    assert shift.delta == pytest.approx(math.log(1.3), abs=0.002) and shift.sigma == pytest.approx(0.3, abs=0.002)
    m = sc.Margins.of(0.25, sc.DEFAULT_LATENCY_PASS_MARGIN, 0.005)
    r = sc.latency("p99", _expected(0.12, 0.3, 1e5), _expected(0.156, 0.3, 1e5), m)
    assert r.outcome == Outcome.FAIL and r.estimate == pytest.approx(0.3, abs=0.02), r.message
    r = sc.latency("p99", _expected(0.12, 0.3, 1e5), _expected(0.132, 0.3, 1e5), m)  # +10 %: within it
    assert r.outcome == Outcome.PASS, r.message


def test_a_step_is_passed_at_the_weight_it_leads_to() -> None:
    # 0 errors in 60 candidate requests: not enough to show "at most 2 points worse", enough
    # for 8 points, the same harm to users at 25 % of traffic.
    counts_b, counts_c = {"200": 535, "500": 3}, {"200": 60}
    full = sc.Margins.of(None, sc.DEFAULT_ERROR_PASS_MARGIN, 0.004)
    quarter = sc.Margins.of(None, sc.DEFAULT_ERROR_PASS_MARGIN, 0.004, exposure=0.25)
    assert sc.error_rate("errors", counts_b, counts_c, 0.1, counts_b, counts_c, full).outcome == Outcome.INCONCLUSIVE
    r = sc.error_rate("errors", counts_b, counts_c, 0.1, counts_b, counts_c, quarter)
    assert r.outcome == Outcome.PASS and r.pass_margin == pytest.approx(0.08), r.message
    assert "at the 25% of traffic a pass leads to" in r.message


def test_errors_need_no_minimum_and_a_clean_baseline_is_no_special_case() -> None:
    m = sc.Margins.of(None, sc.DEFAULT_ERROR_PASS_MARGIN, 0.01)
    r = sc.error_rate("errors", {"200": 540}, {"200": 48, "500": 12}, 0.1, {"200": 540}, {"200": 48, "500": 12}, m)
    assert r.outcome == Outcome.FAIL and r.e_value is not None and r.e_value >= 100
    assert "12 of 12 errors" in r.message


def test_errors_with_a_routing_share_the_counts_contradict_is_an_error() -> None:
    m = sc.Margins.of(None, sc.DEFAULT_ERROR_PASS_MARGIN, 0.01)
    counts_b, counts_c = {"200": 500}, {"200": 500}
    r = sc.error_rate("errors", counts_b, counts_c, 0.1, counts_b, counts_c, m)
    assert r.outcome == Outcome.ERROR and "not the 10% it is routed" in r.message


# --- type-I error under optional stopping, and power --------------------------------------

def _bucket_p(median: float, sigma: float) -> np.ndarray:
    cdf = sst.norm.cdf((np.log(BOUNDS[:-1]) - math.log(median)) / sigma)
    return np.diff(np.concatenate([[0.0], cdf, [1.0]]))


def _hist(counts: np.ndarray) -> list[tuple[float, float]]:
    return list(zip(BOUNDS, np.cumsum(counts).astype(float)))


def _latency_ever_fails(rng: np.random.Generator, factor: float, per_look: int, margin: float | None) -> bool:
    median, sigma = math.exp(rng.uniform(math.log(0.005), math.log(0.2))), rng.uniform(0.3, 0.8)
    pb, pc = _bucket_p(median, sigma), _bucket_p(median * factor, sigma)
    cb, cc = np.zeros(len(BOUNDS)), np.zeros(len(BOUNDS))
    m = sc.Margins.of(margin, sc.DEFAULT_LATENCY_PASS_MARGIN, ALPHA)
    fitted = False
    for _ in range(LOOKS):
        nc = rng.binomial(per_look, 0.1)
        cb += rng.multinomial(per_look - nc, pb)
        cc += rng.multinomial(nc, pc)
        # As the operator: the fixed-sample test spends its part of alpha at the first look that fits.
        if sc.latency("p99", _hist(cb), _hist(cc), m, first_look=not fitted).outcome == Outcome.FAIL:
            return True
        fitted = fitted or min(cb.sum(), cc.sum()) >= sc.MIN_OBSERVATIONS
    return False


def _errors_ever_fail(rng: np.random.Generator, rate_c: float, per_look: int) -> bool:
    eb = ec = nb = nc = 0
    m = sc.Margins.of(None, sc.DEFAULT_ERROR_PASS_MARGIN, ALPHA)
    for _ in range(LOOKS):
        n_c = rng.binomial(per_look, 0.1)
        nb, nc = nb + per_look - n_c, nc + n_c
        eb, ec = eb + rng.binomial(per_look - n_c, 0.005), ec + rng.binomial(n_c, rate_c)
        counts_b, counts_c = {"200": nb - eb, "500": eb}, {"200": nc - ec, "500": ec}
        if sc.error_rate("errors", counts_b, counts_c, 0.1, counts_b, counts_c, m).outcome == Outcome.FAIL:
            return True
    return False


def _outputs_ever_fail(rng: np.random.Generator, js: float, per_look: int) -> bool:
    shares = rng.dirichlet(np.full(10, 50.0))
    cand = shares.copy()
    if js:
        cand = 0.7 * shares
        cand[int(rng.integers(10))] += 0.3
    cb, cc = np.zeros(10), np.zeros(10)
    for _ in range(LOOKS):
        n_c = rng.binomial(per_look, 0.1)
        cb += rng.multinomial(per_look - n_c, shares)
        cc += rng.multinomial(n_c, cand)
        b = {str(k): v for k, v in enumerate(cb)}
        c = {str(k): v for k, v in enumerate(cc)}
        # JS limit 0: only the sequential evidence decides, the strictest case for type-I error.
        if sc.output_distribution("outputs", b, c, 0.0, ALPHA).outcome == Outcome.FAIL:
            return True
    return False


# A rollout of two steps (10 % then 50 % of traffic) during which everything changes
# between the steps, alike for both versions: the node twice as slow, another mix of inputs.
STEPS = ((0.1, 10), (0.5, 10))


def _latency_steps_ever_fail(rng: np.random.Generator, per_look: int, stratified: bool) -> bool:
    median, sigma = math.exp(rng.uniform(math.log(0.005), math.log(0.2))), rng.uniform(0.3, 0.8)
    m = sc.Margins.of(None, sc.DEFAULT_LATENCY_PASS_MARGIN, ALPHA)
    cb, cc, carried, fitted = np.zeros(len(BOUNDS)), np.zeros(len(BOUNDS)), (0.0, 0.0), False
    for i, (share, looks) in enumerate(STEPS):
        p = _bucket_p(median * (1 + i), sigma)
        sb, sc_ = np.zeros(len(BOUNDS)), np.zeros(len(BOUNDS))
        for _ in range(looks):
            nc = rng.binomial(per_look, share)
            b, c = rng.multinomial(per_look - nc, p), rng.multinomial(nc, p)
            cb, cc, sb, sc_ = cb + b, cc + c, sb + b, sc_ + c
            step = (_hist(sb), _hist(sc_)) if stratified else None
            r = sc.latency("p99", _hist(cb), _hist(cc), m, first_look=not fitted, step=step, carried=carried)
            if r.outcome == Outcome.FAIL:
                return True
            fitted = fitted or min(cb.sum(), cc.sum()) >= sc.MIN_OBSERVATIONS
        if stratified:  # what the rollout carries into the next step (state.CarriedEvidence)
            carried = (carried[0] + r.step_strata[""][0], carried[1] + r.step_strata[""][1])  # type: ignore[index]
    return False


def _outputs_steps_ever_fail(rng: np.random.Generator, per_look: int, stratified: bool) -> bool:
    carried: dict[str, tuple[float, float]] = {}
    cb, cc = np.zeros(10), np.zeros(10)
    for share, looks in STEPS:
        inputs = rng.dirichlet(np.full(10, 2.0))  # this hour's mix of users, the same for both
        sb, sc_ = np.zeros(10), np.zeros(10)
        for _ in range(looks):
            nc = rng.binomial(per_look, share)
            b, c = rng.multinomial(per_look - nc, inputs), rng.multinomial(nc, inputs)
            cb, cc, sb, sc_ = cb + b, cc + c, sb + b, sc_ + c
            d = {str(k): v for k, v in enumerate(cb)}, {str(k): v for k, v in enumerate(cc)}
            step = ({str(k): v for k, v in enumerate(sb)}, {str(k): v for k, v in enumerate(sc_)}) if stratified \
                else None
            r = sc.output_distribution("outputs", *d, 0.0, ALPHA, step=step, carried=carried)
            if r.outcome == Outcome.FAIL:
                return True
        if stratified:
            for k, (score, info) in (r.step_strata or {}).items():
                s0, i0 = carried.get(k, (0.0, 0.0))
                carried[k] = (s0 + score, i0 + info)
    return False


@pytest.mark.parametrize("trial", [_latency_steps_ever_fail, _outputs_steps_ever_fail])
def test_a_change_between_steps_fails_an_equal_candidate_only_when_the_steps_are_pooled(trial) -> None:  # type: ignore[no-untyped-def]
    """Simpson's paradox of a canary: the candidate's requests come mostly from the later
    steps, the baseline's from the earlier ones, so pooled counts read a change of the
    times as a change of the versions. Step by step (the operator's way) keeps alpha."""
    stratified, pooled = _rate(trial, 200, True), _rate(trial, 200, False)
    print(f"{trial.__name__}: false fails step by step {stratified:.1%}, pooled {pooled:.1%} (alpha {ALPHA:.0%})")
    assert stratified <= ALPHA + TOLERANCE
    assert pooled >= 0.5  # the harness can see the paradox


def _rate(trial, *args) -> float:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(20261202)
    return sum(trial(rng, *args) for _ in range(RUNS)) / RUNS


@pytest.mark.parametrize("per_look", [20, 600])  # 1 and 20 requests per second at 30 s looks
def test_latency_a_a_never_fails_more_often_than_alpha(per_look: int) -> None:
    assert _rate(_latency_ever_fails, 1.0, per_look, None) <= ALPHA + TOLERANCE


def test_latency_at_the_margin_fails_at_most_alpha() -> None:
    # 20 % slower with a tolerated 25 %: inside the null, and binned.
    assert _rate(_latency_ever_fails, 1.2, 600, 0.25) <= ALPHA + TOLERANCE


@pytest.mark.parametrize("per_look", [20, 600])
def test_errors_a_a_never_fail_more_often_than_alpha(per_look: int) -> None:
    assert _rate(_errors_ever_fail, 0.005, per_look) <= ALPHA + TOLERANCE


@pytest.mark.parametrize("per_look", [40, 600])
def test_outputs_a_a_never_fail_more_often_than_alpha(per_look: int) -> None:
    assert _rate(_outputs_ever_fail, 0.0, per_look) <= ALPHA + TOLERANCE


def test_clear_regressions_are_detected() -> None:
    assert _rate(_latency_ever_fails, 1.5, 600, None) >= 0.95
    assert _rate(_errors_ever_fail, 0.05, 600) >= 0.95
    assert _rate(_outputs_ever_fail, 0.2, 600) >= 0.95


def test_a_per_look_test_would_fail_this_harness() -> None:
    """The harness can see optional-stopping inflation: Fisher's test at 0.05 re-run at
    every look of an A/A stream fails far more often than 5 %."""
    rng = np.random.default_rng(7)
    fails = 0
    for _ in range(200):
        nb = nc = eb = ec = 0
        for _ in range(LOOKS):
            nb, nc = nb + 540, nc + 60
            eb, ec = eb + rng.binomial(540, 0.02), ec + rng.binomial(60, 0.02)
            if stats.fisher_greater(ec, nc, eb, nb) < ALPHA:
                fails += 1
                break
    assert fails / 200 > ALPHA + TOLERANCE


def _false_winner_rate(sequential: bool) -> float:
    """A/A reward streams (both 0.8 correct), compared after every 50 feedback per version."""
    rng = np.random.default_rng(11)
    wins = 0
    for _ in range(RUNS):
        rb = rc = n = 0
        for _ in range(LOOKS):
            n += 50
            rb, rc = rb + rng.binomial(50, 0.8), rc + rng.binomial(50, 0.8)
            if compare_rewards(rb, n, rc, n, confidence=1 - ALPHA, sequential=sequential).winner is not None:
                wins += 1
                break
    return wins / RUNS


def test_reward_confidence_sequence_names_a_false_winner_at_most_alpha() -> None:
    assert _false_winner_rate(sequential=True) <= ALPHA + TOLERANCE
    assert _false_winner_rate(sequential=False) > ALPHA + TOLERANCE  # the fixed-sample interval, re-checked


def test_reward_confidence_sequence_finds_a_clear_winner() -> None:
    r = compare_rewards(800, 1000, 900, 1000, confidence=0.95, sequential=True)
    assert r.winner == "candidate" and r.lower is not None and r.lower > 0
    assert "confidence sequence" in r.message


def test_reward_without_a_winner_keeps_collecting() -> None:
    r = compare_rewards(270, 300, 299, 300, confidence=0.999, sequential=True)
    assert r.winner is None and r.outcome == Outcome.INCONCLUSIVE and "no winner yet" in r.message
    assert "99.9% confidence sequence" in r.message
    assert compare_rewards(270, 300, 299, 300, confidence=0.999).outcome == Outcome.PASS  # fixed-sample: decided


def test_latency_in_one_bucket_keeps_collecting_and_says_why() -> None:
    hist = [(0.005, 0.0), (0.01, 300.0), (math.inf, 300.0)]
    r = sc.latency("p99", hist, [(0.005, 0.0), (0.01, 40.0), (math.inf, 40.0)],
                   sc.Margins.of(0.25, sc.DEFAULT_LATENCY_PASS_MARGIN, 0.005))
    assert r.outcome == Outcome.INCONCLUSIVE and r.collecting
    assert "between 5 and 10 ms, one histogram bucket" in r.message


def test_a_candidate_beyond_the_histogram_or_in_two_buckets_is_still_compared() -> None:
    m = sc.Margins.of(None, sc.DEFAULT_LATENCY_PASS_MARGIN, 0.005)
    base = _hist(np.array([0, 0, 150, 50] + [0] * 11))
    hung = _hist(np.array([0] * 14 + [25]))  # every request over 10 s
    assert sc.latency("p99", base, hung, m).outcome == Outcome.FAIL
    # Requests in two buckets only: the spread is not identified by the counts alone.
    slower = _hist(np.array([0, 0, 100, 100] + [0] * 11))
    r = sc.latency("p99", _hist(np.array([0, 0, 1500, 500] + [0] * 11)), slower, m, first_look=True)
    assert r.outcome == Outcome.FAIL and math.isfinite(r.upper or math.inf), r.message


def test_the_first_look_spends_part_of_alpha_on_a_fixed_sample_test() -> None:
    """With no tolerance, a slow-down clear to a z-test at share * alpha fails at the first
    look although the mixture alone is short of 1/alpha; at a later look the same counts
    need the mixture at 1 / ((1 - share) alpha). With a tolerance nothing is split."""
    m = sc.Margins.of(None, sc.DEFAULT_LATENCY_PASS_MARGIN, 0.0033)
    base, cand = _expected(0.05, 0.5, 540), _expected(0.065, 0.5, 60)  # x1.3, the first look at 20 req/s
    first = sc.latency("p99", base, cand, m, first_look=True)
    later = sc.latency("p99", base, cand, m)
    assert first.outcome == Outcome.FAIL and later.outcome == Outcome.INCONCLUSIVE, (first.message, later.message)
    assert (first.e_value or 0) >= 1 / 0.0033 > 2 * (later.e_value or math.inf)
    tolerant = sc.Margins.of(0.25, sc.DEFAULT_LATENCY_PASS_MARGIN, 0.0033)
    a = sc.latency("p99", base, cand, tolerant, first_look=True)
    assert a.e_value == sc.latency("p99", base, cand, tolerant).e_value
