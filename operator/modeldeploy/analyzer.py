"""The verdict interface between the rollout and the analysis package.

The state machine only ever sees an `AnalysisResult`. With no metrics configured the
result is an empty Pass, so steps advance on time and Seldon readiness alone (the
documented no-analysis mode, like Flagger's skipAnalysis). Anything that goes wrong while
analysing becomes an Error verdict: it holds the weight and, past errorLimit, pauses; it
can never promote.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from . import providers, routers
from .providers import MetricProvider
from .routing import MetricSeries
from .state import OutputBins, Reward, Status, parse_time
from .spec import Spec
from .validation import allow_custom_queries
from .verdicts import SEQUENTIAL, AnalysisResult, CheckResult, Outcome

log = logging.getLogger("modeldeploy.analyzer")


def _error(message: str) -> AnalysisResult:
    return AnalysisResult.of([CheckResult("analysis", Outcome.ERROR, message)])


class Analyzer:
    def __init__(self, provider: MetricProvider | None, templates: Mapping[str, str] | None = None,
                 allow_custom_queries: bool = False) -> None:
        self.provider = provider
        # The provider's templates for the router's series (None: the Seldon defaults).
        self.templates = templates
        # Per-object PromQL (metrics[].query, analysis.queries) can read any namespace:
        # an admin opt-in (MODELDEPLOY_ALLOW_CUSTOM_QUERIES), enforced by spec.parse.
        self.allow_custom_queries = allow_custom_queries

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ, series: MetricSeries | None = None,
                 wrap: Callable[[MetricProvider], MetricProvider] | None = None) -> Analyzer:
        """The provider that MODELDEPLOY_METRIC_PROVIDER names (see `providers.from_env`;
        each reads its own settings), querying the router's `series` (default: MODELDEPLOY_ROUTER's), wrapped by `wrap`
        (metrics' instrumentation); MODELDEPLOY_ALLOW_CUSTOM_QUERIES=true lets objects
        bring their own PromQL."""
        allow = allow_custom_queries(env)
        configured = providers.from_env(env, series or routers.from_env(env).series)
        if configured is None:
            return cls(None, allow_custom_queries=allow)
        provider = wrap(configured.provider) if wrap else configured.provider
        return cls(provider, configured.templates, allow)

    def output_bins(self, spec: Spec, status: Status, namespace: str, name: str, now: datetime) -> OutputBins | None:
        """A regressor's bins fixed now from the stable version's outputs, when spec.model.output
        gives no bins and status has none yet for this rollout; else None."""
        from .analysis import Target, Templates
        from .analysis.kinds.outputs import OutputMetric
        from .analysis.output_bins import fix_bins

        out, started = spec.model.output, parse_time(status.rolloutStartedAt)
        if (out.kind != "regressor" or out.bins or status.outputBins is not None or self.provider is None
                or started is None or not status.stablePredictor or not status.stableVersion
                or not any(isinstance(m, OutputMetric) for m in spec.analysis.metrics)):
            return None

        try:
            base = Templates.from_mapping(self.templates, "operator templates") if self.templates else None
            target = Target(namespace, name, status.stablePredictor, status.candidatePredictor or "")
            return fix_bins(self.provider, spec.analysis.templates(base).outputs, target, status.stableVersion,
                            started, now)
        except Exception:  # noqa: BLE001 - the output check then waits; it must not crash the rollout
            log.exception("fixing the output bins of %s/%s failed", namespace, name)
            return None

    def analyse(self, spec: Spec, status: Status, namespace: str, name: str, now: datetime,
                fixed: OutputBins | None = None) -> AnalysisResult:
        """`fixed`: the bins `output_bins` fixed this tick (they are not in `status` yet)."""
        if not spec.analysis.has_metrics:
            return AnalysisResult.of([])
        if self.provider is None:
            return _error("metrics are configured but the operator has no Prometheus (set MODELDEPLOY_PROMETHEUS_URL)")
        from .analysis import Target, analyse
        from .analysis.sequential_analyse import Evidence

        target = Target(namespace=namespace, deployment=name, baseline=status.stablePredictor or "",
                        candidate=status.candidatePredictor or "")
        try:
            # One evaluation time for every query, so both versions see the same window;
            # spec.analysis was parsed and validated once, by spec.parse.
            return analyse(spec.analysis, target, self.provider, self.templates, at=now.timestamp(),
                           evidence=Evidence.of_status(status, now, spec.strategy.steps),
                           bins=_bins(spec, fixed or status.outputBins))
        except Exception as e:  # noqa: BLE001 - a bug or bad template must not crash the rollout
            log.exception("analysis of %s/%s failed", namespace, name)
            return _error(f"analysis failed: {e}")

    def rewards(self, spec: Spec, status: Status, namespace: str, name: str, now: datetime) -> Reward:
        """The A/B reward comparison over the whole test so far."""
        if self.provider is None:
            return Reward(Outcome.ERROR.value, "no Prometheus configured (MODELDEPLOY_PROMETHEUS_URL)")
        from .analysis import Target, Templates, measure_rewards

        started = parse_time(status.stepStartedAt) or now
        target = Target(namespace=namespace, deployment=name, baseline=status.stablePredictor or "",
                        candidate=status.candidatePredictor or "",
                        window=f"{max(1, int((now - started).total_seconds()))}s")
        try:
            templates = Templates.from_mapping(self.templates, "operator templates") if self.templates else None
            r = measure_rewards(target, self.provider, templates, min_samples=spec.strategy.ab_min_samples,
                                confidence=spec.strategy.ab_confidence, at=now.timestamp(),
                                sequential=spec.analysis.method == SEQUENTIAL, lookback_s=spec.analysis.interval)
        except Exception as e:  # noqa: BLE001 - an Error outcome holds the test, never decides it
            log.exception("reward comparison of %s/%s failed", namespace, name)
            return Reward(Outcome.ERROR.value, f"reward comparison failed: {e}")

        def rounded(value: float | None) -> float | None:
            return None if value is None else float(f"{value:.6g}")

        return Reward(r.outcome.value, r.message, r.winner, r.confidence, rounded(r.baseline_rate),
                      rounded(r.candidate_rate), rounded(r.n_baseline), rounded(r.n_candidate), rounded(r.difference),
                      rounded(r.lower), rounded(r.upper), rounded(two_proportion_p(r)))


def _bins(spec: Spec, fixed: OutputBins | None) -> tuple[float, ...] | None:
    """What the output counts are merged into: a regressor's spec bins, else the ones fixed
    from the stable version (() while they are not), None for a classifier."""
    out = spec.model.output
    if out.kind != "regressor":
        return None
    return out.bins or (fixed.edges if fixed else ())


def two_proportion_p(r: Any) -> float | None:
    """Two-sided pooled z-test p-value, shown beside the interval that decides."""
    if not r.n_baseline or not r.n_candidate or r.baseline_rate is None or r.candidate_rate is None:
        return None
    from .analysis.stats import normal_sf

    pooled = (r.baseline_rate * r.n_baseline + r.candidate_rate * r.n_candidate) / (r.n_baseline + r.n_candidate)
    se = (pooled * (1 - pooled) * (1 / r.n_baseline + 1 / r.n_candidate)) ** 0.5
    if se == 0:
        return 1.0
    return 2 * normal_sf(abs(r.candidate_rate - r.baseline_rate) / se)
