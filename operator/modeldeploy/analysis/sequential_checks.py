"""Sequential checks: counts accumulated since the rollout began in, a `CheckResult` out.

The anytime-valid counterpart of `checks` (see `sequential` for the statistics). Each
check measures an *increase* of the candidate over the baseline and decides it against
two margins:

* **Fail** when the confidence sequence at level ``alpha`` lies entirely above
  ``margin`` (the tolerated increase; 0 when none is configured: any increase that is
  shown fails). P(an acceptable candidate ever fails) <= alpha, however many looks.
* **Pass** when the confidence sequence at level ``beta`` lies entirely below
  ``pass_margin`` (non-inferiority shown; equal to ``margin`` when one is configured,
  else a default that a step can show in a few hundred requests).
* otherwise **Inconclusive, collecting**: not missing data - the rollout holds the
  weight without counting towards inconclusiveLimit, and the next look has more data.

The numbers go into status: ``estimate``/``lower``/``upper`` are the increase and its
confidence sequence (latency: relative, 0.25 = 25 % slower; errors: a difference of
rates; outputs: Jensen-Shannon distance, no interval), ``e_value`` the evidence against
"within the margin" with ``threshold`` = 1/alpha, ``p_value`` the always-valid p-value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from scipy import special

from ..verdicts import SEQUENTIAL, CheckResult, Outcome
from . import binned
from . import sequential as seq
from . import stats
from .checks import is_error_code

DEFAULT_BETA = 0.05
#: Without a configured margin a step passes once the increase is shown to be below these.
DEFAULT_LATENCY_PASS_MARGIN = 0.20
DEFAULT_ERROR_PASS_MARGIN = 0.02
#: The error pass test's beta spent on the candidate's bound; the rest on the baseline's.
PASS_SPLIT = 0.8
#: Mixture tuning: 1 / (the effect the test should find fastest)^2, in the test's units.
LATENCY_EFFECT = 0.25  # log-latency: ~ +28 %, when no tolerance is set
SHARE_RHO = 1 / 0.05 ** 2  # an output class's share: 5 points
#: Without a tolerance, this share of the latency check's alpha goes to a fixed-sample test
#: at the rollout's first look that can fit (a bad candidate is met there; Wald's SPRT told the true
#: +30 % decides there in 55 % of runs, while no Gaussian mixture - not even one centred on
#: the true effect - does so in more than half: `benchmarks/latency_looks.py`); the rest
#: to the mixture at every look. Union bound: alpha in all.
FIRST_LOOK_SHARE = 0.5
#: The Gaussian mixture is asymptotic: below this many candidate observations it only collects.
MIN_OBSERVATIONS = 20


@dataclass(frozen=True)
class Margins:
    """The tolerated increase (Fail above it) and the increase a step must be shown below.

    ``scale`` widens the pass margin for a step that leads to a partial weight: users
    then get the candidate on a share w of requests, so a candidate increase of
    ``passing / w`` raises what they see by ``passing`` (for latency, in log terms: the
    blend's geometric mean). Promotion (w = 1) always needs the full margin.
    """

    fail: float
    passing: float
    alpha: float
    beta: float = DEFAULT_BETA
    scale: float = 1.0

    @classmethod
    def of(cls, margin: float | None, default_pass: float, alpha: float, beta: float = DEFAULT_BETA,
           exposure: float = 1.0) -> Margins:
        scale = 1.0 / min(max(exposure, 0.01), 1.0)
        if margin is None:
            return cls(0.0, default_pass, alpha, beta, scale)
        return cls(margin, margin, alpha, beta, scale)

    def at_exposure(self) -> str:
        if self.scale <= 1.0:
            return ""
        return f" (the tolerance at the {1 / self.scale:.0%} of traffic a pass leads to)"


def _pct(x: float) -> str:
    return f"{x * 100:+.1f}%" if abs(x) < 10 else f"x{1 + x:.0f}"


def _pts(x: float) -> str:
    return f"{x * 100:+.2f} points"


def _e(log_e: float) -> str:
    e = math.exp(min(log_e, 700.0))
    return f"{e:.3g}"


def _collecting(name: str, what: str, nb: int, nc: int, need: int) -> CheckResult:
    return CheckResult(name, Outcome.INCONCLUSIVE,
                       f"collecting: {nc} candidate and {nb} baseline {what} so far; the test needs {need} of each "
                       "before it can decide (the rollout holds its weight meanwhile)",
                       n_baseline=nb, n_candidate=nc, method=SEQUENTIAL)


# --- latency ----------------------------------------------------------------------------

def _latency_rho(margin_log: float) -> float:
    """Tune the mixture to the effect that matters: with no tolerance a slow-down of ~28 %,
    with one a step a quarter of the tolerance beyond it (power concentrated near the
    margin, where the decision is hard; larger slow-downs are found anyway)."""
    effect = LATENCY_EFFECT if margin_log <= 0 else max(margin_log / 4, 0.02)
    return 1 / effect ** 2


def _latency_log_e(d: float, info: float, fail_log: float, alpha: float,
                   first_look: bool) -> tuple[float, float, str]:
    """(log e-value against "within the margin", the alpha left to the mixture, a note on
    the first-look test for the message: empty when it did not run).

    With no tolerance, the average of two e-values (Vovk & Wang 2021): with weight
    FIRST_LOOK_SHARE an all-or-nothing one, 1 / (share alpha) when a one-sided z-test at
    level share * alpha rejects at the first look and 0 otherwise (its mean is at most 1:
    the test's size), and the mixture with the rest. The average reaches 1/alpha when
    either does its part, so P(ever) <= share alpha + (1 - share) alpha. With a tolerance
    a 60-request test cannot show an increase beyond it, so all of alpha stays with the
    mixture.
    """
    rho = _latency_rho(fail_log)
    log_mix = seq.one_sided_log_e(info * (d - fail_log), info, rho) if info > 0 else 0.0
    share = FIRST_LOOK_SHARE if fail_log <= 0 else 0.0
    if share <= 0:
        return log_mix, alpha, ""
    log_rest = math.log1p(-share) + log_mix
    if not first_look or info <= 0:
        return log_rest, alpha * (1 - share), ""
    z, z_crit = (d - fail_log) * math.sqrt(info), -float(special.ndtri(share * alpha))
    if z > z_crit:
        top = max(log_rest, -math.log(alpha))
        log_e = top + math.log1p(math.exp(min(log_rest, -math.log(alpha)) - top))
        return log_e, alpha * (1 - share), f"; first-look test z = {z:.2f} > {z_crit:.2f} (at alpha {share * alpha:.3g})"
    return log_rest, alpha * (1 - share), f"; first-look test z = {z:.2f} (fails above {z_crit:.2f})"


def _shift_stratum(baseline: stats.Buckets, candidate: stats.Buckets) -> tuple[float, float]:
    """(score, information) of one step's fitted log slow-down: delta / var and 1 / var;
    (0, 0) while the step has too few requests, or all in one bucket, to fit."""
    n_b, n_c = stats.histogram_total(baseline), stats.histogram_total(candidate)
    if math.isnan(n_b) or math.isnan(n_c) or min(n_b, n_c) < MIN_OBSERVATIONS:
        return 0.0, 0.0
    base, cand = stats.common_buckets(baseline, candidate)
    counts_b, counts_c = stats.bucket_counts(base), stats.bucket_counts(cand)
    if sum(1 for b, c in zip(counts_b, counts_c) if b > 0 or c > 0) < 2:
        return 0.0, 0.0
    shift = binned.fit_shift([le for le, _ in base], counts_b, counts_c)
    if not 0 < shift.var < math.inf:
        return 0.0, 0.0
    return shift.delta / shift.var, 1.0 / shift.var


def latency(name: str, baseline: stats.Buckets, candidate: stats.Buckets, margins: Margins,
            quantile: float = 0.99, first_look: bool = False,
            step: tuple[stats.Buckets, stats.Buckets] | None = None,
            carried: tuple[float, float] = (0.0, 0.0)) -> CheckResult:
    """Is the candidate slower than the baseline by more than the margin (a ratio)?

    The effect is the candidate's slow-down fitted from the whole histograms
    (`binned.fit_shift`: interval-censored maximum likelihood, sandwich variance), so a
    slow-down anywhere in the body of the distribution counts, every request counts, and
    coarse buckets do not bias it. The quantile is shown for context, not tested on its
    own: a p99 needs thousands of requests before it means anything; under a uniform
    slow-down it moves by the same ratio as the fitted one. ``first_look``: no earlier
    look of this rollout had MIN_OBSERVATIONS per version (`Evidence.fitted_before`), so the
    fixed-sample test of `_latency_log_e` runs at most once, at the first look that fits.

    Stratified by step: ``step`` is this step's pair of histograms (``baseline`` and
    ``candidate`` are the rollout's, for the counts and quantiles shown), fitted on its
    own and added to the ``carried`` (score, information) of the earlier steps: inverse-
    variance weights, one estimate. Pooling the steps instead compares the candidate's
    requests, most from the later steps where it has more of the traffic, with the
    baseline's, most from the earlier ones: when latency changes from step to step (the
    load each version carries changes with its weight; the cluster's load changes with
    the hour) that measures the steps, not the versions. Without ``step``, one stratum.
    """
    n_b, n_c = stats.histogram_total(baseline), stats.histogram_total(candidate)
    if math.isnan(n_b) or math.isnan(n_c):
        return CheckResult(name, Outcome.ERROR, 'the latency query returned no le="+Inf" bucket; it must return a '
                           "classic histogram, one series per le")
    nb, nc = int(round(n_b)), int(round(n_c))
    if min(nb, nc) < MIN_OBSERVATIONS:
        return _collecting(name, "requests", nb, nc, MIN_OBSERVATIONS)
    base, cand = stats.common_buckets(baseline, candidate)
    counts_b, counts_c = stats.bucket_counts(base), stats.bucket_counts(cand)
    used = {i for i, c in enumerate(counts_b) if c > 0} | {i for i, c in enumerate(counts_c) if c > 0}
    if len(used) == 1:
        return _one_bucket(name, base, used.pop(), nb, nc)
    stratified = step is not None
    if step is None:
        step, carried = (baseline, candidate), (0.0, 0.0)
    this = _shift_stratum(*step)
    strata = {"": this} if stratified else None
    score, info = carried[0] + this[0], carried[1] + this[1]
    if info <= 0:
        return CheckResult(name, Outcome.INCONCLUSIVE,
                           f"collecting: this step has too few requests of each version to compare yet ({nc} "
                           f"candidate and {nb} baseline in the rollout); the test compares the versions step by "
                           "step", n_baseline=nb, n_candidate=nc, method=SEQUENTIAL, step_strata=strata)
    d = score / info
    fail_log = math.log1p(margins.fail)
    pass_log = math.log1p(margins.passing) * margins.scale
    passing = math.expm1(pass_log)
    rho_fail, rho_pass = _latency_rho(fail_log), 1 / max(pass_log, 0.02) ** 2
    log_e, alpha_mix, first_note = _latency_log_e(d, info, fail_log, margins.alpha, first_look)
    log_e_pass = seq.one_sided_log_e(-info * (d - pass_log), info, rho_pass)
    r_fail = seq.mixture_radius(info, alpha_mix, rho_fail)
    r_pass = seq.mixture_radius(info, margins.beta, rho_pass)
    outcome = (Outcome.FAIL if log_e >= math.log(1 / margins.alpha) else
               Outcome.PASS if log_e_pass >= math.log(1 / margins.beta) else Outcome.INCONCLUSIVE)
    est, lo, hi = math.expm1(d), math.expm1(d - r_fail), math.expm1(min(d + r_fail, 700.0))
    upper_pass = math.expm1(min(d + r_pass, 700.0))
    qb, qc = stats.histogram_quantile(quantile, base), stats.histogram_quantile(quantile, cand)
    label = f"p{quantile * 100:g}"
    shown = (f"slow-down {_pct(est)} vs baseline, {1 - alpha_mix:.2%} confidence sequence "
             f"[{_pct(lo)}, {_pct(hi)}]; e-value {_e(log_e)} (fails at {1 / margins.alpha:g}){first_note}; "
             f"{label} {qc * 1000:.0f} ms vs {qb * 1000:.0f} ms; {nc}/{nb} requests")
    if outcome == Outcome.FAIL:
        msg = f"slower than tolerated ({_pct(margins.fail)}): {shown}"
    elif outcome == Outcome.PASS:
        msg = (f"shown at most {_pct(passing)} slower{margins.at_exposure()} ({1 - margins.beta:.0%} bound "
               f"{_pct(upper_pass)}): {shown}")
    else:
        msg = (f"collecting: passes once the {1 - margins.beta:.0%} upper bound ({_pct(upper_pass)}) is below "
               f"{_pct(passing)}{margins.at_exposure()}, fails once the lower bound is above {_pct(margins.fail)}: "
               f"{shown}")
    return CheckResult(name, outcome, msg, baseline=qb * 1000, candidate=qc * 1000, threshold=1 / margins.alpha,
                       n_baseline=nb, n_candidate=nc, statistic=est, p_value=min(1.0, math.exp(-log_e)),
                       method=SEQUENTIAL, e_value=math.exp(min(log_e, 700.0)), alpha=margins.alpha, estimate=est,
                       lower=lo, upper=hi, margin=margins.fail, pass_margin=passing, step_strata=strata)


def _one_bucket(name: str, base: stats.Buckets, i: int, nb: int, nc: int) -> CheckResult:
    """Every request of both versions in one bucket: the histograms cannot compare them."""
    bounds = [le for le, _ in base]
    lo, hi = (bounds[i - 1] if i else 0.0), bounds[i]
    where = f"above {lo * 1000:g} ms" if math.isinf(hi) else f"between {lo * 1000:g} and {hi * 1000:g} ms"
    return CheckResult(name, Outcome.INCONCLUSIVE,
                       f"collecting: all {nc} candidate and {nb} baseline requests took {where}, one histogram "
                       "bucket, so no slow-down within it can be seen; the check decides once requests fall in "
                       "more than one bucket (give the latency histogram finer buckets around the model's "
                       "latency to decide sooner)", n_baseline=nb, n_candidate=nc, method=SEQUENTIAL)


# --- errors -----------------------------------------------------------------------------

def _codes(counts: Mapping[str, float]) -> tuple[int, int]:
    n = int(round(sum(counts.values())))
    return n, int(round(sum(v for k, v in counts.items() if is_error_code(k))))


def share_of_errors_null(share: float, margin: float, baseline_rate_lower: float) -> float:
    """The largest share of errors the candidate can have while within the margin.

    With routing share w, rates p_c and p_b, an error comes from the candidate with
    probability theta = w p_c / (w p_c + (1 - w) p_b). "p_c <= p_b + m" bounds theta by
    w (p_b + m) / (w (p_b + m) + (1 - w) p_b), which decreases in p_b, so a lower
    confidence bound on p_b gives a bound that holds whenever that confidence bound does.
    """
    if margin <= 0:
        return share
    top = share * (baseline_rate_lower + margin)
    return top / (top + (1 - share) * baseline_rate_lower) if top > 0 else 1.0


def error_rate(name: str, step_baseline: Mapping[str, float], step_candidate: Mapping[str, float], share: float,
               baseline: Mapping[str, float], candidate: Mapping[str, float], margins: Margins,
               carried_log_e: float = 0.0) -> CheckResult:
    """Is the candidate's error rate higher than the baseline's by more than the margin (points)?

    Fail - errors are rare, so the baseline's unknown rate would cost the two-sample test
    most of its power. Instead, conditional on the errors seen during this step (constant
    routing share w), each error came from the candidate with probability theta, which is
    w when the rates are equal (Lindon & Malek 2022: the multinomial count test with known
    allocation). The failure is the evidence against "theta is at most the largest theta
    the margin allows" crossing 1/alpha, mixed over candidate rates 2-32 times the largest
    rate the margin allows (`sequential.ERROR_RATIOS`); it needs no minimum count and no special case for a baseline
    without errors. The step's observed request split is checked against
    w first (an Error if they disagree: the test's premise would be false). The share is
    constant only within a step, so the test restarts with each one and the rollout
    multiplies the steps' e-values (`carried_log_e`: the earlier steps', from
    `state.CarriedEvidence`): one anytime-valid test over the rollout, at the full alpha.
    The result's `step_log_e` is this step's part, which the next step carries.

    Pass - from all counts since the rollout began (`baseline`, `candidate`): the
    candidate's one-sided upper confidence sequence minus the baseline's lower one (at
    0.8 and 0.2 of beta) lies below the pass margin (widened by `Margins.scale` for a
    partial weight).
    Two-sample, so valid across the steps' different weights.
    """
    nb, eb = _codes(baseline)
    nc, ec = _codes(candidate)
    snb, seb = _codes(step_baseline)
    snc, sec = _codes(step_candidate)
    if nb == 0 or nc == 0:
        return _collecting(name, "requests", nb, nc, 1)
    alpha_theta = margins.alpha / 2 if margins.fail > 0 else margins.alpha
    # With a margin, the null share of errors depends on the baseline's rate: its lower
    # confidence sequence over the whole rollout (one sequence, alpha/2: a union bound).
    rate_lower = seq.beta_binomial_cs(eb, nb, margins.alpha / 2)[0] if margins.fail > 0 else 0.0
    theta0 = share_of_errors_null(share, margins.fail, rate_lower)
    errors = sec + seb
    # Without a routing share in (0, 1) (a candidate taken out of routing while unready)
    # the step's errors cannot be attributed: no failure test until the share is back.
    step_log_e = seq.ratio_mixture_log_e_above(sec, errors, theta0) if 0 < share < 1 else 0.0
    if snb + snc > 0 and 0 < share < 1:
        lo_w, hi_w = seq.beta_binomial_cs(snc, snb + snc, margins.alpha)
        if not lo_w <= share <= hi_w:
            # The step's evidence rests on a premise the counts contradict: carried only
            # where it speaks for the candidate (min(E, 1) is still an e-value).
            return CheckResult(name, Outcome.ERROR,
                               f"the candidate served {snc / (snb + snc):.1%} of this step's {snb + snc} requests, "
                               f"not the {share:.0%} it is routed; the error test relies on the routing share "
                               "(check for a second route to one version, or retries)",
                               n_baseline=snb, n_candidate=snc, method=SEQUENTIAL, step_log_e=min(step_log_e, 0.0))
    log_e = carried_log_e + step_log_e
    lo, hi = seq.difference_cs(ec, nc, eb, nb, margins.alpha)
    # Non-inferiority is one-sided: the candidate's upper and the baseline's lower bound,
    # so nothing is spent on the side that cannot block a pass; most of beta goes to the
    # candidate, whose few requests are what limits the bound (union bound: beta in all).
    hi_pass = (seq.upper_bound(ec, nc, margins.beta * PASS_SPLIT)
               - seq.lower_bound(eb, nb, margins.beta * (1 - PASS_SPLIT)))
    passing = margins.passing * margins.scale
    outcome = (Outcome.FAIL if log_e >= math.log(1 / alpha_theta) else
               Outcome.PASS if hi_pass < passing else Outcome.INCONCLUSIVE)
    rb, rc = eb / nb, ec / nc
    e = math.exp(min(log_e, 700.0))
    shown = (f"error rate {rc:.2%} ({ec}/{nc}) vs baseline {rb:.2%} ({eb}/{nb}), increase {_pts(rc - rb)}, "
             f"{1 - margins.alpha:.1%} confidence sequence [{_pts(lo)}, {_pts(hi)}]; this step the candidate "
             f"made {sec} of {errors} errors with {share:.0%} of traffic, e-value {e:.3g} ("
             + (f"this step {_e(step_log_e)} x earlier steps {_e(carried_log_e)}; " if carried_log_e else "")
             + f"fails at {1 / alpha_theta:g})")
    if outcome == Outcome.FAIL:
        msg = f"higher than tolerated ({_pts(margins.fail)}): {shown}"
    elif outcome == Outcome.PASS:
        msg = (f"shown at most {_pts(passing)} higher{margins.at_exposure()} ({1 - margins.beta:.0%} bound "
               f"{_pts(hi_pass)}): {shown}")
    else:
        msg = (f"collecting: passes once the {1 - margins.beta:.0%} upper bound ({_pts(hi_pass)}) is below "
               f"{_pts(passing)}{margins.at_exposure()}: {shown}")
    return CheckResult(name, outcome, msg, baseline=rb, candidate=rc, threshold=1 / alpha_theta, n_baseline=nb,
                       n_candidate=nc, statistic=rc - rb, p_value=min(1.0, 1 / e), method=SEQUENTIAL, e_value=e,
                       alpha=margins.alpha, estimate=rc - rb, lower=lo, upper=hi, margin=margins.fail,
                       pass_margin=passing, step_log_e=step_log_e)


# --- outputs ----------------------------------------------------------------------------

def _share_strata(baseline: Mapping[str, float], candidate: Mapping[str, float],
                  classes: list[str]) -> dict[str, tuple[float, float]]:
    """Per class, (score, information) of one step's difference of shares (candidate minus
    baseline) with the pooled variance: a score test, since under "same distribution" the
    pooled variance is the right one, while a version's own p(1 - p) shrinks exactly when
    its share is low by chance, which would overstate the evidence. (0, 0) while the step
    has too few predictions of either version."""
    nb, nc = sum(baseline.values()), sum(candidate.values())
    if min(nb, nc) < MIN_OBSERVATIONS:
        return {k: (0.0, 0.0) for k in classes}
    out = {}
    for k in classes:
        xb, xc = baseline.get(k, 0.0), candidate.get(k, 0.0)
        pooled = (xb + xc + 0.5) / (nb + nc + 1)
        var = max(pooled * (1 - pooled), 1e-6) * (1 / nc + 1 / nb)
        out[k] = ((xc / nc - xb / nb) / var, 1 / var)
    return out


def output_distribution(name: str, baseline: Mapping[str, float], candidate: Mapping[str, float],
                        js_limit: float, alpha: float,
                        step: tuple[Mapping[str, float], Mapping[str, float]] | None = None,
                        carried: Mapping[str, tuple[float, float]] | None = None) -> CheckResult:
    """Has the distribution of predicted classes shifted? A guard: it fails or passes.

    Evidence: for every class, a Gaussian-mixture e-value for "the class's share is the
    same in both versions"; their average is one e-value for "same distribution" (valid
    whatever the dependence between classes, at a cost of log K). Fail needs that e-value
    over 1/alpha AND the Jensen-Shannon distance over `js_limit`, so that a negligible
    shift that big traffic makes detectable does not fail a canary; requiring both keeps
    the false-fail probability <= alpha. There is no non-inferiority pass: showing that
    two distributions are within JS 0.05 of each other takes tens of thousands of
    predictions, so the other checks decide when a step has seen enough.

    Stratified by step like `latency`: ``step`` is this step's pair of counts and
    ``carried`` the earlier steps' (score, information) per class; ``baseline`` and
    ``candidate`` (the rollout's) give the counts and the distance shown. Pooled, a
    change of inputs from step to step (the hour's mix of users) would read as a shift
    of the candidate, which has more of the later steps' traffic. Without ``step``, one
    stratum.
    """
    classes = sorted(set(baseline) | set(candidate))
    b = [baseline.get(k, 0.0) for k in classes]
    c = [candidate.get(k, 0.0) for k in classes]
    nb, nc = int(round(sum(b))), int(round(sum(c)))
    if min(nb, nc) < MIN_OBSERVATIONS:
        return _collecting(name, "predictions", nb, nc, MIN_OBSERVATIONS)
    stratified = step is not None
    if step is None:
        step, carried = (baseline, candidate), None
    # The step's classes are among the rollout's: its window lies inside the rollout's.
    this = _share_strata(step[0], step[1], classes)
    earlier = carried or {}
    strata = this if stratified else None
    summed = {k: (this.get(k, (0.0, 0.0))[0] + earlier.get(k, (0.0, 0.0))[0],
                  this.get(k, (0.0, 0.0))[1] + earlier.get(k, (0.0, 0.0))[1]) for k in sorted(set(this) | set(earlier))}
    if all(info <= 0 for _, info in summed.values()):
        return CheckResult(name, Outcome.INCONCLUSIVE,
                           f"collecting: this step has too few predictions of each version to compare yet ({nc} "
                           f"candidate and {nb} baseline in the rollout); the test compares the versions step by "
                           "step", n_baseline=nb, n_candidate=nc, method=SEQUENTIAL, step_strata=strata)
    log_es = {k: seq.two_sided_log_e(score, info, SHARE_RHO) for k, (score, info) in summed.items()}
    moved = max(log_es, key=lambda k: (log_es[k], k))
    log_e = seq.average_e(list(log_es.values()))
    js = stats.jensen_shannon(b, c)
    shown = (f"JS distance {js:.3f} (limit {js_limit:g}); e-value {_e(log_e)} (fails at {1 / alpha:g}); "
             f"class {moved!r} {baseline.get(moved, 0.0) / nb:.1%} -> {candidate.get(moved, 0.0) / nc:.1%}; "
             f"{nc}/{nb} predictions")
    if log_e >= math.log(1 / alpha) and js > js_limit:
        outcome, msg = Outcome.FAIL, f"outputs shifted: {shown}"
    elif log_e >= math.log(1 / alpha):
        outcome, msg = Outcome.PASS, f"a shift is shown but it is below the JS limit: {shown}"
    else:
        outcome, msg = Outcome.PASS, f"no evidence of a shift: {shown}"
    return CheckResult(name, outcome, msg, candidate=js, threshold=1 / alpha, n_baseline=nb, n_candidate=nc,
                       statistic=js, p_value=min(1.0, math.exp(-log_e)), method=SEQUENTIAL,
                       e_value=math.exp(min(log_e, 700.0)), alpha=alpha, estimate=js, margin=js_limit,
                       step_strata=strata)
