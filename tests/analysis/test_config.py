"""``spec.analysis``: defaults, and errors that name the field."""

from __future__ import annotations

import pytest

from modeldeploy.analysis import AnalysisConfigError, parse_analysis
from modeldeploy.analysis.kinds.custom import CustomMetric
from modeldeploy.analysis.kinds.error_rate import ErrorRateMetric
from modeldeploy.analysis.kinds.latency import LatencyMetric
from modeldeploy.analysis.kinds.outputs import OutputMetric


def test_defaults() -> None:
    spec = parse_analysis({})
    assert (spec.interval, spec.window, spec.min_samples) == (30.0, "1m", 100)
    assert not spec.has_metrics
    assert (spec.failure_limit, spec.inconclusive_limit, spec.error_limit) == (2, 6, 4)
    assert spec.metrics == () and spec.queries is None
    assert parse_analysis(None) == spec


@pytest.mark.parametrize(("interval", "window"), [("10s", "1m"), ("30s", "1m"), ("45s", "90s"), ("1m", "2m"),
                                                  ("5m", "10m"), ("1m30s", "3m")])
def test_default_window_is_twice_the_interval_and_at_least_a_minute(interval: str, window: str) -> None:
    assert parse_analysis({"interval": interval}).window == window


def test_metric_defaults() -> None:
    spec = parse_analysis({"metrics": [
        {"name": "p99", "latency": {}},
        {"name": "errors", "errorRate": {}},
        {"name": "outputs", "outputDistribution": {}},
        {"name": "psi-only", "outputDistribution": {"maxPSI": 0.2}},
        {"name": "custom", "query": "sum(up)", "max": 1.0},
    ]})
    p99, errors, outputs, psi, custom = spec.metrics
    assert p99 == LatencyMetric("p99", quantile=0.99, max_ms=None, max_ratio=None, significance=0.0033)
    assert errors == ErrorRateMetric("errors", max=0.01, significance=0.0033)
    assert isinstance(outputs, OutputMetric) and outputs.js_limit == 0.05 and outputs.max_psi is None
    assert isinstance(psi, OutputMetric) and psi.js_limit is None and psi.max_psi == 0.2
    assert custom == CustomMetric("custom", "sum(up)", None, 1.0) and not custom.per_version


def test_the_design_example_parses() -> None:
    spec = parse_analysis({
        "interval": "30s", "window": "1m", "minSamples": 100, "failureLimit": 2, "inconclusiveLimit": 6,
        "errorLimit": 4,
        "queries": {"latency": 'sum by (le) (increase(x_bucket{p="{{predictor}}"}[{{window}}]))'},
        "metrics": [
            {"name": "p99", "latency": {"quantile": 0.99, "maxMs": 250, "maxRatioToBaseline": 1.25}},
            {"name": "errors", "errorRate": {"max": 0.01}},
            {"name": "outputs", "outputDistribution": {"test": "chiSquare", "maxJensenShannon": 0.1}},
            {"name": "custom", "query": 'sum(rate(x{p="{{predictor}}"}[{{window}}]))', "min": 0, "max": 1.0},
        ],
    })
    assert spec.metrics[0] == LatencyMetric("p99", 0.99, 250.0, 1.25, 0.0033)
    assert spec.metrics[3].per_version  # type: ignore[union-attr]
    assert spec.templates().latency.startswith("sum by (le) (increase(x_bucket")


@pytest.mark.parametrize(("analysis", "message"), [
    ({"interval": "soon"}, r"^spec\.analysis\.interval: 'soon' is not a duration"),
    ({"window": "1.5m"}, r"^spec\.analysis\.window: '1.5m' is not a Prometheus duration"),
    ({"minSamples": 0}, r"^spec\.analysis\.minSamples: must be a whole number"),
    ({"failureLimit": "2"}, r"^spec\.analysis\.failureLimit: "),
    ({"interval": "30s", "colour": "red"}, r"^spec\.analysis: unknown field\(s\) colour"),
    ({"metrics": {"name": "x"}}, r"^spec\.analysis\.metrics: must be a list"),
    ({"metrics": [{"name": "p99"}]}, r"^spec\.analysis\.metrics\[0\]: needs exactly one of"),
    ({"metrics": [{"name": "x", "latency": {}, "errorRate": {}}]}, r"^spec\.analysis\.metrics\[0\]: needs exactly one"),
    ({"metrics": [{"name": "bad name!", "latency": {}}]}, r"^spec\.analysis\.metrics\[0\]\.name: "),
    ({"metrics": [{"name": "p", "latency": {"quantile": 1.0}}]},
     r"^spec\.analysis\.metrics\[0\]\.latency\.quantile: 1\.0 is outside \(0, 1\)"),
    ({"metrics": [{"name": "p", "latency": {"quantile": 1.5}}]}, r"latency\.quantile: 1\.5 is outside"),
    ({"metrics": [{"name": "p", "latency": {"maxRatio": 1.2}}]}, r"latency: unknown field\(s\) maxRatio"),
    ({"metrics": [{"name": "p", "latency": {"maxMs": True}}]}, r"latency\.maxMs: must be a number"),
    ({"metrics": [{"name": "e", "errorRate": {"max": 2}}]}, r"errorRate\.max: 2 is outside \[0, 1\]"),
    ({"metrics": [{"name": "o", "outputDistribution": {"maxJensenShannon": 0.9}}]}, r"maxJensenShannon: 0\.9"),
    ({"metrics": [{"name": "o", "outputDistribution": {"test": "ks"}}]}, r"outputDistribution\.test: only chiSquare"),
    ({"metrics": [{"name": "o", "outputDistribution": {"significance": 0}}]}, r"significance: 0 is outside"),
    ({"metrics": [{"name": "c", "query": "sum(up)"}]}, r"^spec\.analysis\.metrics\[0\]: a query metric needs min"),
    ({"metrics": [{"name": "c", "query": "sum(up)", "min": 2, "max": 1}]}, r"min 2 is greater than max 1"),
    ({"metrics": [{"name": "c", "query": "up{x='{{pod}}'}", "max": 1}]}, r"metrics\[0\]\.query: unknown placeholder"),
    ({"metrics": [{"name": "a", "latency": {}}, {"name": "a", "errorRate": {}}]}, r"duplicate name\(s\) a"),
    ({"queries": {"outputs": "sum(x)"}}, r"^spec\.analysis\.queries\.outputs: needs \{\{predictor\}\}"),
    ({"queries": {"outputs": "x{p='{{predictor}}'}[{{windw}}]"}}, r"queries\.outputs: unknown placeholder"),
    ({"interval": "0s"}, r"^spec\.analysis\.interval: '0s' is out of range; it must be at least 1s and at most 720h"),
    ({"window": "0m"}, r"^spec\.analysis\.window: '0m' must be at least 1s and at most 720h"),
    ({"window": "30s1m"}, r"^spec\.analysis\.window: '30s1m' is not a Prometheus duration.*in that order"),
    ({"window": "1d"}, r"^spec\.analysis\.window: '1d' is not a Prometheus duration"),
    ({"failureLimit": 1001}, r"^spec\.analysis\.failureLimit: must be a whole number from 1 to 1000"),
    ({"metrics": [{"name": "P99", "latency": {}}]}, r"metrics\[0\]\.name: 'P99' must be a DNS label"),
    ({"metrics": [{"name": "p", "latency": {"maxRatioToBaseline": 0.9}}]}, r"maxRatioToBaseline: 0\.9 is outside \[1, inf\]"),
    ({"metrics": [{"name": "p", "latency": {}, "max": 1}]}, r"^spec\.analysis\.metrics\[0\]: min and max belong to a query"),
    ({"metrics": [{"name": "o", "outputDistribution": {"maxJensenShannon": 0.8326}}]},
     r"maxJensenShannon: 0\.8326 is outside \(0, 0\.8325\]"),
    ({"metrics": [{"name": "o", "outputDistribution": {"maxPSI": 0}}]}, r"maxPSI: 0 is outside \(0, inf\]"),
    ({"metrics": [{"name": "c", "query": "x" * 4097, "max": 1}]}, r"metrics\[0\]\.query: longer than 4096"),
    ({"metrics": [{"name": f"m{i}", "latency": {}} for i in range(21)]}, r"^spec\.analysis\.metrics: at most 20"),
])
def test_errors_name_the_field(analysis: dict, message: str) -> None:
    with pytest.raises(AnalysisConfigError, match=message):
        parse_analysis(analysis)


def test_window_takes_the_grammar_both_prometheus_and_the_crd_understand() -> None:
    assert parse_analysis({"window": "1m30s"}).window == "1m30s"
    assert parse_analysis({"window": "1500ms"}).window == "1500ms"
    assert parse_analysis({"interval": "1.5s"}).window == "1m"


def test_the_largest_jensen_shannon_gate_is_accepted() -> None:
    spec = parse_analysis({"metrics": [{"name": "o", "outputDistribution": {"maxJensenShannon": 0.8325}}]})
    assert spec.metrics[0].max_js == 0.8325  # type: ignore[union-attr]
