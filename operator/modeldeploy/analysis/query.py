"""One analysis' conversation with the metric provider.

Renders templates for a `Target`, evaluates every query at the same instant (so the
two versions are compared over the same window), asks each distinct query once, and
stops asking once the provider is known to be down: without that, an unreachable
Prometheus would cost a full timeout per query, and an analysis has a dozen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..providers import (
    MetricProvider,
    MetricQueryError,
    ProviderTimeout,
    ProviderUnreachable,
    QueryFailed,
    Sample,
    by_label,
    one_value,
)
from .templates import LE_LABEL, format_duration, prometheus_seconds, render, validate_value


@dataclass(frozen=True)
class Target:
    """What to compare: two predictors of one SeldonDeployment.

    ``window`` overrides ``spec.analysis.window`` when set, e.g. to "time since this
    step began" so that a window never mixes two traffic weights, or to the whole A/B
    test so far.
    """

    namespace: str
    deployment: str
    baseline: str
    candidate: str
    window: str | None = None

    def validated(self, default_window: str) -> Target:
        """This target with its window filled in; AnalysisConfigError names a bad field."""
        window = self.window or default_window
        validate_value("target.namespace", "namespace", self.namespace)
        validate_value("target.deployment", "deployment", self.deployment)
        validate_value("target.baseline", "predictor", self.baseline)
        validate_value("target.candidate", "predictor", self.candidate)
        validate_value("target.window" if self.window else "spec.analysis.window", "window", window)
        return Target(self.namespace, self.deployment, self.baseline, self.candidate, window)


class QuerySession:
    def __init__(self, provider: MetricProvider, target: Target, at: float | None = None,
                 lookback_s: float | None = None) -> None:
        """`lookback_s`: how old a counter's last sample before the window may be to give
        its value at the window's start (`templates.window_count`): the analysis interval;
        never more than the window."""
        assert target.window, "use Target.validated() first"
        self.provider = provider
        self.target = target
        self.at = at
        window_s = prometheus_seconds(target.window)
        self.lookback = format_duration(min(lookback_s, window_s)) if lookback_s else target.window
        self._cache: dict[str, list[Sample] | MetricQueryError] = {}
        self._down: MetricQueryError | None = None

    def render(self, template: str, predictor: str) -> str:
        t = self.target
        return render(template, {"namespace": t.namespace, "deployment": t.deployment, "predictor": predictor,
                                 "window": t.window or "", "lookback": self.lookback})

    def samples(self, template: str, predictor: str) -> list[Sample]:
        promql = self.render(template, predictor)
        cached = self._cache.get(promql)
        if cached is None:
            if self._down is not None:
                cached = type(self._down)(str(self._down), promql)
            else:
                try:
                    cached = self.provider.query(promql, self.at)
                except MetricQueryError as e:
                    cached = e
                    if isinstance(e, (ProviderUnreachable, ProviderTimeout)):
                        self._down = e
            self._cache[promql] = cached
        if isinstance(cached, MetricQueryError):
            raise cached
        return cached

    def value(self, template: str, predictor: str) -> float:
        return one_value(self.samples(template, predictor), self.render(template, predictor))

    def by(self, template: str, predictor: str, label: str) -> dict[str, float]:
        return by_label(self.samples(template, predictor), label, self.render(template, predictor))

    def histogram(self, template: str, predictor: str) -> list[tuple[float, float]]:
        """(le, count) pairs; an ``le`` that is not a number is a broken query."""
        out = []
        for le, count in self.by(template, predictor, LE_LABEL).items():
            try:
                bound = float(le)
            except ValueError:
                raise QueryFailed(f"le={le!r} is not a number", self.render(template, predictor)) from None
            if math.isnan(bound):
                raise QueryFailed("le=NaN", self.render(template, predictor))
            out.append((bound, count))
        return out
