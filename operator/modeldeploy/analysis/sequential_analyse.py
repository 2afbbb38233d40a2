"""The sequential analysis of one look: query cumulative counts, run the sequential checks.

Which counts, and why:

* latency and outputs: everything since the rollout began (`Evidence.since_rollout_s`).
  Their tests are two-sample (each version's requests are a sample of that version), so
  weight changes between steps do not bias them and evidence keeps accumulating across
  steps: a later step starts with all the earlier evidence instead of from nothing.
* errors: the failure test conditions on the routing share, which is constant only within
  a step, so it reads the counts since the step began (`since_step_s`) and spends alpha
  across steps (80 % at the first, then a fifth of the rest at each: the total stays <= alpha);
  its pass test is two-sample and uses the counts since the rollout began.

Pure except through the provider, like `analyse`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..providers import MetricProvider, MetricQueryError
from ..state import PROGRESSING, Status, parse_time
from ..verdicts import SEQUENTIAL, AnalysisResult, CheckResult
from . import checks, output_bins
from . import sequential_checks as sc
from .config import (
    DEFAULT_MAX_JENSEN_SHANNON,
    AnalysisSpec,
    CustomMetric,
    ErrorRateMetric,
    LatencyMetric,
    Metric,
    OutputMetric,
)
from .query import QuerySession, Target
from .templates import (
    CLASS_LABEL,
    CODE_LABEL,
    REASON_LABEL,
    UNREADABLE_OUTPUTS,
    Templates,
    format_duration,
)


@dataclass(frozen=True)
class Evidence:
    """Where the rollout is: the two evidence windows and the candidate's routing share."""

    since_rollout_s: float
    since_step_s: float
    share: float  # the candidate's share of requests in this step (0.5 for a shadow: both serve all)
    step: int = 0  # index of the step, for spending alpha across steps
    exposure: float = 1.0  # the candidate's share of users once this step passes (1: promotion)

    @classmethod
    def of_status(cls, status: Status, now: datetime, steps: Sequence[int] = ()) -> Evidence:
        """From the rollout's status: the windows start at rolloutStartedAt and stepStartedAt.

        With the canary's `steps`, a pass of a step that leads to another step is judged at
        that step's weight (`sequential_checks.Margins`); a shadow, an A/B test and the last
        step lead to promotion and are judged at 100 %.
        """
        rollout_start = parse_time(status.rolloutStartedAt) or now
        step_start = parse_time(status.stepStartedAt) or now
        share = 0.5 if status.shadow else status.candidateWeight / 100
        exposure = 1.0
        if steps and not status.shadow and status.phase == PROGRESSING:
            exposure = next((w for w in sorted(steps) if w > status.candidateWeight), 100) / 100
        return cls((now - rollout_start).total_seconds(), (now - step_start).total_seconds(), share, status.step,
                   exposure)

    def step_alpha(self, alpha: float) -> float:
        """Alpha for a test that restarts at every step: 80 % at the first, where a bad
        candidate is met, then a fifth of the rest at each later one (the sum is alpha)."""
        return alpha * 0.8 * 0.2 ** self.step


def _window(seconds: float) -> str:
    return format_duration(max(1, int(seconds)))


def analyse_sequential(spec: AnalysisSpec, target: Target, provider: MetricProvider, evidence: Evidence,
                       templates: Templates | None = None, *, at: float | None = None,
                       beta: float = sc.DEFAULT_BETA, bins: tuple[float, ...] | None = None) -> AnalysisResult:
    """Every configured metric, decided sequentially against its ``maxIncrease``;
    `bins` as for `analyse.analyse`."""
    tmpl = spec.templates(templates)
    rollout = QuerySession(provider, Target(target.namespace, target.deployment, target.baseline, target.candidate,
                                            _window(evidence.since_rollout_s)).validated(spec.window), at)
    step = QuerySession(provider, Target(target.namespace, target.deployment, target.baseline, target.candidate,
                                         _window(evidence.since_step_s)).validated(spec.window), at)
    custom = QuerySession(provider, target.validated(spec.window), at)
    return AnalysisResult.of([_run(m, tmpl, rollout, step, custom, evidence, beta, bins) for m in spec.metrics])


def _both(name: str, session: QuerySession, fetch: Callable[[QuerySession, str], Any]) -> tuple[Any, Any] | CheckResult:
    out = []
    for version, predictor in (("baseline", session.target.baseline), ("candidate", session.target.candidate)):
        try:
            out.append(fetch(session, predictor))
        except MetricQueryError as e:
            return checks.from_query_error(name, f"{version} {predictor}", e)
    return out[0], out[1]


def unreadable_outputs(name: str, session: QuerySession) -> CheckResult | None:
    """Inconclusive when the output monitor could not read responses of either version.

    Asked before the outputs themselves: a model whose every response is unreadable has
    no output counts at all, and "no data" would not say why. A predictor without the
    monitor has no such series (none unreadable); any other query problem is left to the
    outputs query, which meets it too and reports it.
    """
    if UNREADABLE_OUTPUTS is None:
        return None
    counts = {}
    for version, predictor in (("baseline", session.target.baseline), ("candidate", session.target.candidate)):
        try:
            counts[f"{version} {predictor}"] = session.by(UNREADABLE_OUTPUTS, predictor, REASON_LABEL)
        except MetricQueryError:
            counts[f"{version} {predictor}"] = {}
    return checks.outputs_unreadable(name, counts)


def _run(metric: Metric, tmpl: Templates, rollout: QuerySession, step: QuerySession, custom: QuerySession,
         ev: Evidence, beta: float, bins: tuple[float, ...] | None) -> CheckResult:
    if isinstance(metric, LatencyMetric):
        got = _both(metric.name, rollout, lambda s, p: s.histogram(tmpl.latency, p))
        if isinstance(got, CheckResult):
            return got
        m = sc.Margins.of(metric.max_increase, sc.DEFAULT_LATENCY_PASS_MARGIN, metric.significance, beta,
                          ev.exposure)
        return sc.latency(metric.name, *got, m, metric.quantile)
    if isinstance(metric, ErrorRateMetric):
        whole = _both(metric.name, rollout, lambda s, p: s.by(tmpl.errors, p, CODE_LABEL))
        if isinstance(whole, CheckResult):
            return whole
        this = _both(metric.name, step, lambda s, p: s.by(tmpl.errors, p, CODE_LABEL))
        if isinstance(this, CheckResult):
            return this
        m = sc.Margins.of(metric.max_increase, sc.DEFAULT_ERROR_PASS_MARGIN, ev.step_alpha(metric.significance), beta,
                          ev.exposure)
        return sc.error_rate(metric.name, this[0], this[1], ev.share, whole[0], whole[1], m)
    if isinstance(metric, OutputMetric):
        if unreadable := unreadable_outputs(metric.name, rollout):
            return unreadable
        got = _both(metric.name, rollout, lambda s, p: s.by(tmpl.outputs, p, CLASS_LABEL))
        if isinstance(got, CheckResult):
            return got
        base_counts, cand_counts = got
        if bins == ():
            return output_bins.pending(metric.name, base_counts, cand_counts, SEQUENTIAL)
        if bins is not None:
            base_counts, cand_counts = output_bins.merge(base_counts, bins), output_bins.merge(cand_counts, bins)
        # PSI has no sequential test here; a PSI-only metric keeps the default JS limit.
        limit = metric.js_limit if metric.js_limit is not None else DEFAULT_MAX_JENSEN_SHANNON
        return sc.output_distribution(metric.name, base_counts, cand_counts, limit, metric.significance)
    assert isinstance(metric, CustomMetric)
    t = custom.target  # a scalar has no sample size to accumulate: judged over spec.analysis.window
    try:
        candidate = custom.value(metric.query, t.candidate)
    except MetricQueryError as e:
        return checks.from_query_error(metric.name, f"candidate {t.candidate}", e)
    return checks.custom(metric, candidate)
