"""The provider factory: configuration picks the provider, the provider reads its own
settings and brings the templates for the router's series; the analyzer gets it typed
and whole (wrapped once, never replaced)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from modeldeploy import providers
from modeldeploy.analysis import templates
from modeldeploy.analyzer import Analyzer
from modeldeploy.providers import MetricProvider, Sample
from modeldeploy.providers.prometheus import PrometheusProvider
from modeldeploy.routers import seldon_v1
from modeldeploy.spec import parse
from modeldeploy.state import Status

URL = {"MODELDEPLOY_PROMETHEUS_URL": "http://127.0.0.1:9"}  # never queried here
DEFAULTS = {"latency": templates.DEFAULT_LATENCY, "errors": templates.DEFAULT_ERRORS,
            "outputs": templates.DEFAULT_OUTPUTS, "reward": templates.DEFAULT_REWARD,
            "feedback": templates.DEFAULT_FEEDBACK}


def test_without_its_url_there_is_no_provider_and_an_unknown_one_is_named() -> None:
    assert providers.from_env({}, seldon_v1.SERIES) is None
    assert Analyzer.from_env({}).provider is None
    with pytest.raises(ValueError, match="MODELDEPLOY_METRIC_PROVIDER: unknown provider 'datadog'; known: prometheus"):
        providers.from_env({"MODELDEPLOY_METRIC_PROVIDER": "datadog"}, seldon_v1.SERIES)


def test_prometheus_reads_its_settings_and_brings_the_routers_default_templates() -> None:
    configured = providers.from_env({**URL, "MODELDEPLOY_PROMETHEUS_TIMEOUT": "2.5"}, seldon_v1.SERIES)
    assert configured is not None and isinstance(configured.provider, PrometheusProvider)
    assert configured.provider.timeout == 2.5 and configured.provider.url == URL["MODELDEPLOY_PROMETHEUS_URL"]
    assert dict(configured.templates) == DEFAULTS
    # Another data plane's metric names flow into the defaults.
    other = replace(seldon_v1.SERIES, predictions_counter="my_predictions_total")
    got = providers.from_env(URL, other)
    assert got is not None and "my_predictions_total" in got.templates["outputs"]


def test_the_queries_file_replaces_templates_and_must_be_a_map(tmp_path: Path) -> None:
    f = tmp_path / "queries.yaml"
    f.write_text("outputs: 'sum by (class) (mine{p=\"{{predictor}}\"})'\n")
    configured = providers.from_env({**URL, "MODELDEPLOY_QUERIES_FILE": str(f)}, seldon_v1.SERIES)
    assert configured is not None
    assert configured.templates["outputs"].startswith("sum by (class) (mine")
    assert configured.templates["latency"] == templates.DEFAULT_LATENCY
    f.write_text("- latency\n")
    with pytest.raises(ValueError, match="MODELDEPLOY_QUERIES_FILE: .* must hold a YAML map"):
        providers.from_env({**URL, "MODELDEPLOY_QUERIES_FILE": str(f)}, seldon_v1.SERIES)


class Feedback:
    """100 feedback calls per version; the candidate earns twice the reward."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        self.queries.append(promql)
        cand = 'predictor_name="v2"' in promql
        if "feedback_reward" in promql:
            return [Sample({}, 80.0 if cand else 40.0)]
        return [Sample({}, 100.0)]

    def is_online(self) -> bool:
        return True


def test_the_analyzer_wraps_the_provider_once_and_rewards_use_its_templates() -> None:
    wrapped: list[MetricProvider] = []

    def wrap(p: MetricProvider) -> MetricProvider:
        wrapped.append(p)
        return p

    analyzer = Analyzer.from_env(URL, wrap=wrap)
    assert wrapped == [analyzer.provider] and analyzer.templates == DEFAULTS
    # With configured templates (a mapping) the reward comparison reads through them.
    fake = Feedback()
    analyzer = Analyzer(fake, DEFAULTS)
    spec = parse({"model": {"name": "m", "version": "2", "uri": "s3://b/m"},
                  "strategy": {"type": "ABTest", "abTest": {"minSamples": 50}}})
    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    status = Status(stablePredictor="v1", candidatePredictor="v2", stepStartedAt=(now - timedelta(minutes=5))
                    .strftime("%Y-%m-%dT%H:%M:%SZ"))
    out = analyzer.rewards(spec, status, "ns", "d", now)
    assert (out.nBaseline, out.nCandidate, out.candidateRate) == (100, 100, 0.8), out
    assert fake.queries and all("modeldeploy_feedback" in q for q in fake.queries)  # the model server's pair
