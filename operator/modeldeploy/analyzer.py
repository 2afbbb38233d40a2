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
from datetime import datetime
from collections.abc import Mapping
from typing import Any

from .rollout import Status
from .spec import Spec
from .verdicts import AnalysisResult, CheckResult, Outcome

log = logging.getLogger("modeldeploy.analyzer")


def _error(message: str) -> AnalysisResult:
    return AnalysisResult.of([CheckResult("analysis", Outcome.ERROR, message)])


class Analyzer:
    def __init__(self, provider: Any | None, templates: Mapping[str, str] | None = None) -> None:
        self.provider = provider
        self.templates = templates

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Analyzer:
        """The Prometheus server from MODELDEPLOY_PROMETHEUS_URL (none: metrics are Errors).

        Credentials come from the environment, which the chart fills from a Secret:
        MODELDEPLOY_PROMETHEUS_TOKEN (bearer), or MODELDEPLOY_PROMETHEUS_USERNAME and
        MODELDEPLOY_PROMETHEUS_PASSWORD (basic); MODELDEPLOY_PROMETHEUS_TIMEOUT in seconds.
        """
        url = env.get("MODELDEPLOY_PROMETHEUS_URL")
        if not url:
            return cls(None)
        from .providers.prometheus import PrometheusProvider

        token = env.get("MODELDEPLOY_PROMETHEUS_TOKEN")
        user, password = env.get("MODELDEPLOY_PROMETHEUS_USERNAME"), env.get("MODELDEPLOY_PROMETHEUS_PASSWORD")
        return cls(PrometheusProvider(
            url, timeout=float(env.get("MODELDEPLOY_PROMETHEUS_TIMEOUT", "5")),
            headers={"Authorization": f"Bearer {token}"} if token else None,
            auth=(user, password) if user and password else None,
        ))

    def analyse(self, spec: Spec, status: Status, namespace: str, name: str, now: datetime) -> AnalysisResult:
        if not spec.analysis.has_metrics:
            return AnalysisResult.of([])
        if self.provider is None:
            return _error("metrics are configured but the operator has no Prometheus (set MODELDEPLOY_PROMETHEUS_URL)")
        from .analysis import Target, analyse

        target = Target(namespace=namespace, deployment=name, baseline=status.stablePredictor or "",
                        candidate=status.candidatePredictor or "")
        try:
            # One evaluation time for every query, so both versions see the same window.
            return analyse(spec.analysis.raw, target, self.provider, self.templates, at=now.timestamp())
        except Exception as e:  # noqa: BLE001 - a bug or bad template must not crash the rollout
            log.exception("analysis of %s/%s failed", namespace, name)
            return _error(f"analysis failed: {e}")
