"""One function per check: counts of both versions in, a `CheckResult` out.

Pure and deterministic. Each check follows the same rule, the point of this package:
**fail only when the candidate is over the configured limit AND the difference from
the baseline is statistically significant.** The limit alone would fail canaries on
noise at small n; the test alone would fail them on negligible differences at big n.
Too few samples for either version is Inconclusive, never Pass or Fail.

Numbers carried into `CheckResult` (and so into status and events):
latency in milliseconds; rates and shares as fractions; ``statistic`` is the test's
own statistic where one exists (chi-square), else the effect the limit is compared to
(rate difference, probability of superiority); ``p_value`` is what was compared with
``significance``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..providers import MetricQueryError
from ..verdicts import CheckResult, Outcome
from . import stats

if TYPE_CHECKING:  # the kind modules call these checks, so they import this module
    from .kinds.custom import CustomMetric
    from .kinds.error_rate import ErrorRateMetric
    from .kinds.latency import LatencyMetric
    from .kinds.outputs import OutputMetric

#: gRPC status names the Seldon executor reports that mean the server failed. Client
#: mistakes (InvalidArgument, NotFound, ...) and HTTP 4xx are not counted, as in
#: Flagger's request-success-rate: a client sending garbage is not the model's fault.
GRPC_SERVER_ERRORS = frozenset(
    {"Unknown", "DeadlineExceeded", "ResourceExhausted", "Internal", "Unavailable", "DataLoss"})


def is_error_code(code: str) -> bool:
    """HTTP 5xx or a gRPC server-side failure."""
    if code.isdigit():
        return int(code) >= 500
    return code in GRPC_SERVER_ERRORS


def _p(p: float) -> str:
    return f"{p:.2g}"


def _ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.2g} ms"


def _pct(x: float) -> str:
    return f"{x * 100:.2f}%" if x < 0.1 else f"{x * 100:.1f}%"


def too_few(name: str, what: str, n_baseline: int, n_candidate: int, min_samples: int,
            window: str) -> CheckResult | None:
    """Inconclusive when either version has fewer than `min_samples` in the window."""
    if n_baseline >= min_samples and n_candidate >= min_samples:
        return None
    short = [f"{v} {n}" for v, n in (("baseline", n_baseline), ("candidate", n_candidate)) if n < min_samples]
    return CheckResult(
        name, Outcome.INCONCLUSIVE,
        f"too few {what} in {window}: {', '.join(short)} (minSamples {min_samples})",
        n_baseline=n_baseline, n_candidate=n_candidate, threshold=float(min_samples),
    )


def from_query_error(name: str, version: str, error: MetricQueryError) -> CheckResult:
    """No data is Inconclusive (hold and wait); any other query problem is an Error."""
    outcome = Outcome.INCONCLUSIVE if error.inconclusive else Outcome.ERROR
    return CheckResult(name, outcome, f"{version}: {error}")


def latency(metric: LatencyMetric, baseline: stats.Buckets, candidate: stats.Buckets, min_samples: int,
            window: str) -> CheckResult:
    """Quantile over its limit(s) AND the candidate significantly slower.

    Two one-sided tests, Bonferroni-combined (p = 2 x the smaller): Mann-Whitney over
    all requests (a general slow-down) and Fisher on the requests above the bucket
    holding the pooled quantile (a slow-down confined to the tail). Limits: ``maxMs``
    and ``maxRatioToBaseline`` x the baseline's quantile, either one exceeded is enough;
    with neither configured the limit is the baseline's quantile itself.
    """
    name, q = metric.name, metric.quantile
    n_b, n_c = stats.histogram_total(baseline), stats.histogram_total(candidate)
    if math.isnan(n_b) or math.isnan(n_c):
        return CheckResult(name, Outcome.ERROR, 'the latency query returned no le="+Inf" bucket; it must return a '
                           "classic histogram, one series per le")
    nb, nc = int(round(n_b)), int(round(n_c))
    short = too_few(name, "requests", nb, nc, min_samples, window)
    if short:
        return short
    qb, qc = stats.histogram_quantile(q, baseline), stats.histogram_quantile(q, candidate)
    tail = stats.tail_test(q, baseline, candidate)
    ranks = stats.mann_whitney_greater(baseline, candidate)
    p = min(1.0, 2 * min(tail.p_value, ranks.p_value))
    ratio = metric.max_ratio if metric.max_ratio is not None else (1.0 if metric.max_ms is None else None)
    limits = [x for x in (metric.max_ms / 1000 if metric.max_ms is not None else None,
                          ratio * qb if ratio is not None else None) if x is not None]
    limit = min(limits)
    over = qc > limit
    significant = p < metric.significance
    label = f"p{q * 100:g}"
    values = (f"{label} {_ms(qc)} vs baseline {_ms(qb)}, limit {_ms(limit)}"
              + (f" ({ratio:g} x baseline)" if ratio is not None and limit == ratio * qb else ""))
    evidence = (f"p={_p(p)}; above {_ms(tail.threshold)}: {_pct(tail.candidate_over / max(nc, 1))} vs "
                f"{_pct(tail.baseline_over / max(nb, 1))}; P(slower)={ranks.superiority:.2f}")
    if over and significant:
        outcome, msg = Outcome.FAIL, f"{values}: over the limit and significantly slower ({evidence})"
    elif over:
        outcome, msg = Outcome.PASS, f"{values}: over the limit but not significantly slower ({evidence})"
    else:
        outcome, msg = Outcome.PASS, f"{values}: within the limit ({evidence})"
    return CheckResult(name, outcome, msg, baseline=qb * 1000, candidate=qc * 1000, threshold=limit * 1000,
                       n_baseline=nb, n_candidate=nc, statistic=ranks.superiority, p_value=p)


def error_rate(metric: ErrorRateMetric, baseline: Mapping[str, float], candidate: Mapping[str, float],
               min_samples: int, window: str) -> CheckResult:
    """Error rate over ``max`` AND significantly above the baseline's (one-sided Fisher).

    A baseline with no errors gets no special treatment: Fisher's exact test asks how
    likely the candidate's share of all errors is by chance, which is well defined when
    the baseline has none. At 500 requests each, 0 vs 8 errors (1.6 %) gives p = 0.0038 and
    0 vs 9 (1.8 %) p = 0.0019, so with ``max`` 0.01 and significance 0.0033 the first holds
    and the second fails.
    """
    name = metric.name
    nb, nc = int(round(sum(baseline.values()))), int(round(sum(candidate.values())))
    short = too_few(name, "requests", nb, nc, min_samples, window)
    if short:
        return short
    eb = int(round(sum(v for k, v in baseline.items() if is_error_code(k))))
    ec = int(round(sum(v for k, v in candidate.items() if is_error_code(k))))
    rb, rc = eb / nb, ec / nc
    p = stats.fisher_greater(ec, nc, eb, nb)
    values = f"error rate {_pct(rc)} ({ec}/{nc}) vs baseline {_pct(rb)} ({eb}/{nb}), max {_pct(metric.max)}"
    over, significant = rc > metric.max, p < metric.significance
    if over and significant:
        outcome, msg = Outcome.FAIL, f"{values}: over max and significantly higher (p={_p(p)})"
    elif over:
        outcome, msg = Outcome.PASS, f"{values}: over max but not significantly higher than baseline (p={_p(p)})"
    else:
        outcome, msg = Outcome.PASS, f"{values}: within max (p={_p(p)})"
    return CheckResult(name, outcome, msg, baseline=rb, candidate=rc, threshold=metric.max, n_baseline=nb,
                       n_candidate=nc, statistic=rc - rb, p_value=p)


def output_distribution(metric: OutputMetric, baseline: Mapping[str, float], candidate: Mapping[str, float],
                        min_samples: int, window: str) -> CheckResult:
    """Chi-square homogeneity significant AND the effect size over its limit.

    ``candidate`` carries the effect size compared with ``threshold`` (JS distance, or
    PSI when only ``maxPSI`` is configured); ``statistic`` is the chi-square statistic.
    The message names the class whose share moved most.
    """
    name = metric.name
    classes = sorted(set(baseline) | set(candidate))
    b = [baseline.get(k, 0.0) for k in classes]
    c = [candidate.get(k, 0.0) for k in classes]
    nb, nc = int(round(sum(b))), int(round(sum(c)))
    short = too_few(name, "predictions", nb, nc, min_samples, window)
    if short:
        return short
    chi2 = stats.chi2_homogeneity(b, c)
    js = stats.jensen_shannon(b, c)
    psi = stats.psi(b, c)
    gates = []
    if metric.js_limit is not None:
        gates.append(("JS", js, metric.js_limit))
    if metric.max_psi is not None:
        gates.append(("PSI", psi, metric.max_psi))
    effect_name, effect, limit = next((g for g in gates if g[1] > g[2]), gates[0])
    shift = effect > limit
    significant = chi2.p_value < metric.significance
    moved = max(classes, key=lambda k: abs(candidate.get(k, 0.0) / nc - baseline.get(k, 0.0) / nb))
    values = (f"{effect_name} {effect:.3f} (limit {limit:g}), chi-square {chi2.statistic:.1f} on {chi2.dof} dof "
              f"p={_p(chi2.p_value)}; class {moved!r} {_pct(baseline.get(moved, 0.0) / nb)} -> "
              f"{_pct(candidate.get(moved, 0.0) / nc)}")
    if shift and significant:
        outcome, msg = Outcome.FAIL, f"outputs shifted: {values}"
    elif shift:
        outcome, msg = Outcome.PASS, f"effect over limit but not significant: {values}"
    elif significant:
        outcome, msg = Outcome.PASS, f"significant but below the effect limit: {values}"
    else:
        outcome, msg = Outcome.PASS, f"no shift: {values}"
    return CheckResult(name, outcome, msg, candidate=effect, threshold=limit, n_baseline=nb, n_candidate=nc,
                       statistic=chi2.statistic, p_value=chi2.p_value)


def custom(metric: CustomMetric, candidate: float, baseline: float | None = None) -> CheckResult:
    """The candidate's value within [min, max]; the baseline's value is shown, not judged.

    A scalar has no sample size or variance to test, so this is the one check that
    compares with absolute bounds only, as Flagger's and Argo's metric checks do.
    """
    lo, hi = metric.min, metric.max
    shown = f"{candidate:.4g}" + (f" (baseline {baseline:.4g})" if baseline is not None else "")
    bounds = f"[{'-inf' if lo is None else f'{lo:g}'}, {'inf' if hi is None else f'{hi:g}'}]"
    if lo is not None and candidate < lo:
        return CheckResult(metric.name, Outcome.FAIL, f"{shown} is below min {lo:g}", baseline=baseline,
                           candidate=candidate, threshold=lo)
    if hi is not None and candidate > hi:
        return CheckResult(metric.name, Outcome.FAIL, f"{shown} is above max {hi:g}", baseline=baseline,
                           candidate=candidate, threshold=hi)
    return CheckResult(metric.name, Outcome.PASS, f"{shown} within {bounds}", baseline=baseline,
                       candidate=candidate, threshold=hi if hi is not None else lo)


#: What each of the output monitor's reasons means to the person reading the check.
UNREADABLE_REASONS = {
    "no_data": "responses carry no data.ndarray or data.tensor (jsonData, strData or binData)",
    "empty": "responses carry no values",
    "shape": "responses are not one row per request (or one value per row for a regressor)",
    "not_numeric": "responses are not numbers",
    "not_a_label": "a classifier returned one non-integer number per row: set spec.model.output.kind: regressor "
                   "with bins",
    "bad_config": "the output monitor is misconfigured (see its log)",
}


def outputs_unreadable(name: str, unreadable: Mapping[str, Mapping[str, float]]) -> CheckResult | None:
    """Inconclusive when the output monitor could not read some responses of a version.

    `unreadable` maps "baseline <predictor>" / "candidate <predictor>" to counts by reason.
    The model served those responses normally; what it predicted is unknown, and counts
    of the readable rest could be any subset, so they are not compared.
    """
    parts = []
    for version, by_reason in unreadable.items():
        bad = {r: int(round(n)) for r, n in by_reason.items() if n >= 0.5}
        for reason, n in sorted(bad.items(), key=lambda kv: -kv[1]):
            parts.append(f"{version}: {n} response(s) unreadable ({reason}: "
                         f"{UNREADABLE_REASONS.get(reason, 'see the monitor log')})")
    if not parts:
        return None
    return CheckResult(name, Outcome.INCONCLUSIVE,
                       "outputs not judged: the output monitor could not read what the model returned; the model "
                       "still served these requests. " + "; ".join(parts))
