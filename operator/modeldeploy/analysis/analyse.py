"""The entry point the operator calls once per analysis interval.

Pure except through the provider: the verdict depends only on ``spec.analysis``, the
target, the provider's answers and the evaluation time, which the caller passes (the
operator's clock), so the same inputs always give the same verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any

from ..providers import MetricProvider
from ..verdicts import SEQUENTIAL, AnalysisResult
from .config import AnalysisSpec, parse_analysis
from .kinds import KINDS
from .kinds.base import WindowLook
from .query import QuerySession, Target
from .sequential_analyse import Evidence, analyse_sequential
from .templates import Templates, prometheus_seconds


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
    session = QuerySession(provider, target.validated(spec.window), at, spec.interval)
    # The verdict rests on data from `since` on: a rollout step counts it only when that
    # lies inside the step.
    window = session.target.window or spec.window
    since = None if at is None else datetime.fromtimestamp(at - prometheus_seconds(window), timezone.utc)
    look = WindowLook(tmpl, session, spec.min_samples, window, bins)
    return AnalysisResult.of([KINDS[m.kind].window(m, look) for m in spec.metrics], since)
