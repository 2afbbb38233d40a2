"""The Prometheus provider's distinct outcomes, against a real Prometheus server."""

from __future__ import annotations

import http.server
import math
import threading
import time
from collections.abc import Iterator

import pytest

from modeldeploy.analysis import Target, analyse
from modeldeploy.providers import (
    MetricProvider,
    NoData,
    NotANumber,
    ProviderTimeout,
    ProviderUnreachable,
    QueryFailed,
    TooManySeries,
    by_label,
    one_value,
)
from modeldeploy.providers.prometheus import PrometheusProvider, parse_result
from modeldeploy.verdicts import Outcome
from sandbox.processes import free_port
from sandbox.prometheus import Prometheus

from .conftest import NAMESPACE, Exporter

pytestmark = pytest.mark.prometheus


@pytest.fixture
def provider(prometheus: Prometheus) -> PrometheusProvider:
    return PrometheusProvider(prometheus.url, timeout=5)


def test_is_a_metric_provider(provider: PrometheusProvider) -> None:
    assert isinstance(provider, MetricProvider) and provider.is_online()


def test_unreachable_is_reported_fast_and_distinctly() -> None:
    closed = PrometheusProvider(f"http://127.0.0.1:{free_port()}", timeout=5)
    t0 = time.monotonic()
    with pytest.raises(ProviderUnreachable, match=r"is unreachable: .*Connection refused") as e:
        closed.query("vector(1)")
    assert time.monotonic() - t0 < 2, "no retries with backoff"
    assert e.value.query == "vector(1)" and not closed.is_online()


def test_unreachable_provider_gives_error_verdicts_without_waiting_per_query() -> None:
    closed = PrometheusProvider(f"http://127.0.0.1:{free_port()}", timeout=5)
    spec = {"metrics": [{"name": "p99", "latency": {}}, {"name": "errors", "errorRate": {}},
                        {"name": "outputs", "outputDistribution": {}}]}
    result = analyse(spec, Target("ns", "digits", "v1", "v2"), closed)
    assert result.outcome == Outcome.ERROR
    assert [c.outcome for c in result.checks] == [Outcome.ERROR] * 3
    assert all("unreachable" in c.message for c in result.checks)


@pytest.fixture
def silent_server() -> Iterator[int]:
    """Accepts connections and answers nothing for 3 s: a hung Prometheus."""

    class Slow(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            time.sleep(3)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_timeout_is_distinct(silent_server: int) -> None:
    slow = PrometheusProvider(f"http://127.0.0.1:{silent_server}", timeout=0.5)
    t0 = time.monotonic()
    with pytest.raises(ProviderTimeout, match=r"did not answer within 0.5s"):
        slow.query("vector(1)")
    assert time.monotonic() - t0 < 2


def test_bad_promql_carries_prometheus_own_message(provider: PrometheusProvider) -> None:
    with pytest.raises(QueryFailed, match=r"HTTP 400, bad_data\): .*unclosed left parenthesis"):
        provider.query("sum(")


def test_no_data(provider: PrometheusProvider) -> None:
    samples = provider.query('modeldeploy_no_such_metric{predictor_name="x"}')
    assert samples == []
    with pytest.raises(NoData, match=r"no series matched: modeldeploy_no_such_metric"):
        one_value(samples, "modeldeploy_no_such_metric")


def test_nan(provider: PrometheusProvider) -> None:
    scalar = provider.query("0/0")
    assert len(scalar) == 1 and math.isnan(scalar[0].value)
    with pytest.raises(NotANumber):
        one_value(scalar, "0/0")
    vector = provider.query('label_replace(vector(0) / vector(0), "class", "a", "", "")')
    with pytest.raises(NotANumber, match=r"class='a' is NaN"):
        by_label(vector, "class", "q")


def test_more_than_one_series_is_an_error_never_a_pick(provider: PrometheusProvider, exporter: Exporter,
                                                       deployment: str, prometheus: Prometheus) -> None:
    exporter.declare(deployment=deployment, predictor="p1", codes=["200", "500"])
    prometheus.wait_for_scrape(exporter.instance, after=time.time() + 0.05)
    query = f'seldon_api_executor_server_requests_seconds_count{{deployment_name="{deployment}"}}'
    samples = provider.query(query)
    assert len(samples) == 2
    with pytest.raises(TooManySeries, match=r"2 series where one was expected"):
        one_value(samples, query)
    # Per-le, an unaggregated histogram has two series (two codes) per bucket.
    buckets = provider.query(f'seldon_api_executor_server_requests_seconds_bucket{{deployment_name="{deployment}"}}')
    with pytest.raises(TooManySeries, match=r"several series for le="):
        by_label(buckets, "le", "q")

    # Through analyse(): a per-object template that forgot `sum by (le)` is an Error.
    spec = {"queries": {"latency": 'seldon_api_executor_server_requests_seconds_bucket{'
                                   'deployment_name="{{deployment}}", predictor_name="{{predictor}}"}'},
            "metrics": [{"name": "p99", "latency": {}}, {"name": "c", "query": query, "max": 1}]}
    result = analyse(spec, Target(NAMESPACE, deployment, "p1", "p1"), provider)
    assert [c.outcome for c in result.checks] == [Outcome.ERROR, Outcome.ERROR]
    assert "several series for le=" in result.checks[0].message
    assert "2 series where one was expected" in result.checks[1].message


def test_parse_result_shapes() -> None:
    assert parse_result([1.0, "2.5"], "q")[0].value == 2.5
    assert parse_result([{"metric": {"a": "b"}, "value": [1.0, "+Inf"]}], "q")[0].value == math.inf
    with pytest.raises(QueryFailed, match="range vector"):
        parse_result([{"metric": {}, "values": [[1.0, "1"]]}], "q")
    with pytest.raises(QueryFailed, match="string"):
        parse_result([1.0, "hello"], "q")


def test_constructor_rejects_nonsense_timeout() -> None:
    with pytest.raises(ValueError):
        PrometheusProvider("http://127.0.0.1:9", timeout=0)
