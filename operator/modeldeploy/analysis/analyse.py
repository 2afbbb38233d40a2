"""The entry point the operator calls once per analysis interval.

Pure except through the provider: the verdict depends only on ``spec.analysis``, the
target, the provider's answers and the evaluation time, which the caller passes (the
operator's clock), so the same inputs always give the same verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from ..providers import MetricProvider, MetricQueryError
from ..verdicts import SEQUENTIAL, AnalysisResult, CheckResult
from . import checks, output_bins
from .config import AnalysisSpec, CustomMetric, ErrorRateMetric, LatencyMetric, Metric, OutputMetric, parse_analysis
from .query import QuerySession, Target
from .sequential_analyse import Evidence, analyse_sequential, unreadable_outputs
from .templates import CLASS_LABEL, CODE_LABEL, Templates, prometheus_seconds


def analyse(
    analysis: Mapping[str, Any] | AnalysisSpec,
    target: Target,
    provider: MetricProvider,
    templates: Templates | Mapping[str, str] | None = None,
    *,
    at: float | None = None,
    evidence: Evidence | None = None,
    bins: tuple[float, ...] | None = None,
) -> AnalysisResult:
    """Compare candidate with baseline on every configured metric.

    `analysis` is the parsed ``spec.analysis`` (the operator passes the one `spec.parse`
    made; a raw mapping is parsed here, for scripts and tests); `templates` the
    operator's configured templates (a `Templates`, or a mapping of the templates it
    replaces; None: the Seldon defaults), under the object's own ``queries``; `at` the
    Unix time to evaluate at (None: Prometheus' now — pass the operator's clock so both
    versions and all checks see the same window); `evidence` where the rollout is, for
    ``method: sequential`` (without it, as for scripts comparing two windows, the window
    method runs); `bins` a regressor's bin edges, into which both versions' output counts
    are merged (`output_bins.merge`; ``()``: not fixed yet, the output check waits;
    None: counts are compared as they come, a classifier's classes).

    Query problems become per-check outcomes (no data: Inconclusive; unreachable,
    timeout, NaN, several series, bad PromQL: Error). Configuration problems — a bad
    spec, a template with an unknown placeholder, a name or window that is not safe to
    put into PromQL — raise `AnalysisConfigError`, naming the field: retrying cannot
    fix them, so they must not look like a flaky metric.
    """
    spec = analysis if isinstance(analysis, AnalysisSpec) else parse_analysis(analysis)
    base = Templates.from_mapping(templates, "operator templates") if isinstance(templates, Mapping) else templates
    if spec.method == SEQUENTIAL and evidence is not None:
        # Cumulative evidence: no `since`, a Pass rests on the whole rollout by design.
        return analyse_sequential(spec, target, provider, evidence, base, at=at, bins=bins)
    tmpl = spec.templates(base)
    session = QuerySession(provider, target.validated(spec.window), at)
    # The verdict rests on data from `since` on: a rollout step counts it only when that
    # lies inside the step.
    since = None if at is None else datetime.fromtimestamp(at - prometheus_seconds(session.target.window or spec.window),
                                                           timezone.utc)
    return AnalysisResult.of([_run(metric, spec, tmpl, session, bins) for metric in spec.metrics], since)


def _per_version(name: str, session: QuerySession, fetch: Callable[[str], Any]) -> tuple[Any, Any] | CheckResult:
    """Fetch one measurement for both versions; a query problem becomes the check's result."""
    out = []
    for version, predictor in (("baseline", session.target.baseline), ("candidate", session.target.candidate)):
        try:
            out.append(fetch(predictor))
        except MetricQueryError as e:
            return checks.from_query_error(name, f"{version} {predictor}", e)
    return out[0], out[1]


def _run(metric: Metric, spec: AnalysisSpec, tmpl: Templates, session: QuerySession,
         bins: tuple[float, ...] | None) -> CheckResult:
    window = session.target.window or spec.window
    if isinstance(metric, LatencyMetric):
        got = _per_version(metric.name, session, lambda p: session.histogram(tmpl.latency, p))
        return got if isinstance(got, CheckResult) else checks.latency(metric, *got, spec.min_samples, window)
    if isinstance(metric, ErrorRateMetric):
        got = _per_version(metric.name, session, lambda p: session.by(tmpl.errors, p, CODE_LABEL))
        return got if isinstance(got, CheckResult) else checks.error_rate(metric, *got, spec.min_samples, window)
    if isinstance(metric, OutputMetric):
        if unreadable := unreadable_outputs(metric.name, session):
            return unreadable
        got = _per_version(metric.name, session, lambda p: session.by(tmpl.outputs, p, CLASS_LABEL))
        if isinstance(got, CheckResult):
            return got
        base_counts, cand_counts = got
        if bins == ():
            return output_bins.pending(metric.name, base_counts, cand_counts, None)
        if bins is not None:
            base_counts, cand_counts = output_bins.merge(base_counts, bins), output_bins.merge(cand_counts, bins)
        return checks.output_distribution(metric, base_counts, cand_counts, spec.min_samples, window)
    assert isinstance(metric, CustomMetric)
    t = session.target
    try:
        candidate = session.value(metric.query, t.candidate)
    except MetricQueryError as e:
        return checks.from_query_error(metric.name, f"candidate {t.candidate}", e)
    baseline = None
    if metric.per_version:
        try:
            baseline = session.value(metric.query, t.baseline)
        except MetricQueryError:
            pass  # shown for context only; the verdict is about the candidate
    return checks.custom(metric, candidate, baseline)
