"""analyse() with a scripted provider: routing, caching, time and outcome mapping."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from modeldeploy.analysis import Target, analyse, parse_analysis
from modeldeploy.providers import ProviderUnreachable, Sample
from modeldeploy.verdicts import Outcome

BOUNDS = ["0.005", "0.01", "0.025", "0.05", "0.075", "0.1", "0.25", "0.5", "0.75", "1.0", "2.5", "5.0", "7.5",
          "10.0", "+Inf"]
TARGET = Target("models", "digits", "v1", "v2")
ALL = {"metrics": [{"name": "p99", "latency": {}}, {"name": "errors", "errorRate": {}},
                   {"name": "outputs", "outputDistribution": {}}]}


class Scripted:
    """Answers by metric family; records every query and its time."""

    def __init__(self, buckets: list[float], codes: dict[str, float], classes: dict[str, float],
                 fail: Exception | None = None) -> None:
        self.buckets, self.codes, self.classes, self.fail = buckets, codes, classes, fail
        self.calls: list[tuple[str, float | None]] = []

    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        self.calls.append((promql, at))
        if self.fail:
            raise self.fail
        if "_bucket" in promql:
            return [Sample({"le": le}, v) for le, v in zip(BOUNDS, self.buckets)]
        if "_count" in promql:
            return [Sample({"code": k}, v) for k, v in self.codes.items()]
        return [Sample({"class": k}, v) for k, v in self.classes.items()]

    def is_online(self) -> bool:
        return True


def cumulative(counts: list[int]) -> list[float]:
    out, running = [], 0.0
    for c in counts:
        running += c
        out.append(running)
    return out


HEALTHY = Scripted(cumulative([0, 0, 500, 300, 150, 40, 10, 0, 0, 0, 0, 0, 0, 0, 0]), {"200": 1000},
                   {str(k): 100.0 for k in range(10)})


def test_identical_versions_pass_and_every_query_uses_the_given_time() -> None:
    result = analyse(ALL, TARGET, HEALTHY, at=1234.5)
    assert result.outcome == Outcome.PASS, result.summary()
    assert {at for _, at in HEALTHY.calls} == {1234.5}
    assert any('predictor_name="v1"' in q for q, _ in HEALTHY.calls)
    assert any('predictor_name="v2"' in q for q, _ in HEALTHY.calls)


def test_each_distinct_query_is_asked_once() -> None:
    p = Scripted(HEALTHY.buckets, HEALTHY.codes, HEALTHY.classes)
    spec = {"metrics": [{"name": "p99", "latency": {}}, {"name": "p90", "latency": {"quantile": 0.9}}]}
    analyse(spec, TARGET, p)
    assert len(p.calls) == 2  # two versions, one histogram query each


def test_an_unreachable_provider_is_asked_once_per_analysis() -> None:
    p = Scripted([], {}, {}, fail=ProviderUnreachable("Prometheus at x is unreachable", "q"))
    result = analyse(ALL, TARGET, p)
    assert len(p.calls) == 1
    assert result.outcome == Outcome.ERROR and all(c.outcome == Outcome.ERROR for c in result.checks)
    assert result.checks[2].message.startswith("baseline v1: Prometheus at x is unreachable")


def test_no_metrics_pass_and_a_parsed_spec_is_accepted() -> None:
    assert analyse({}, TARGET, HEALTHY).outcome == Outcome.PASS
    assert analyse(parse_analysis(ALL), TARGET, HEALTHY).outcome == Outcome.PASS


def test_operator_templates_as_a_mapping_under_the_object_overrides() -> None:
    p = Scripted(HEALTHY.buckets, HEALTHY.codes, HEALTHY.classes)
    operator = {"latency": 'sum by (le) (op_bucket{p="{{predictor}}"})', "errors": 'sum by (code) (op{p="{{predictor}}"})'}
    spec = {**ALL, "queries": {"errors": 'sum by (code) (obj_count{p="{{predictor}}"})'}}
    analyse(spec, TARGET, p, operator)
    asked = {q for q, _ in p.calls}
    assert 'sum by (le) (op_bucket{p="v1"})' in asked and 'sum by (code) (obj_count{p="v2"})' in asked
    assert not any(q.startswith("sum by (code) (op{") for q in asked)


def test_target_window_overrides_the_spec_window() -> None:
    p = Scripted(HEALTHY.buckets, HEALTHY.codes, HEALTHY.classes)
    analyse(ALL, Target("models", "digits", "v1", "v2", window="45s"), p)
    assert all("offset 45s" in q for q, _ in p.calls)


def test_custom_query_nan_is_an_error_and_missing_baseline_is_tolerated() -> None:
    class P(Scripted):
        def query(self, promql: str, at: float | None = None) -> list[Sample]:
            if 'p="v2"' in promql:
                return [Sample({}, math.nan if "nan" in promql else 0.5)]
            return []

    p = P([], {}, {})
    r = analyse({"metrics": [{"name": "c", "query": 'x{p="{{predictor}}"}', "max": 1},
                             {"name": "n", "query": 'nan{p="{{predictor}}"}', "max": 1}]}, TARGET, p)
    c, n = r.checks
    assert c.outcome == Outcome.PASS and c.baseline is None and c.candidate == 0.5
    assert n.outcome == Outcome.ERROR and "NaN" in n.message


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 300), min_size=15, max_size=15), st.integers(0, 20),
       st.lists(st.integers(0, 300), min_size=2, max_size=10))
def test_a_version_compared_with_itself_never_fails(buckets: list[int], errors: int, classes: list[int]) -> None:
    p = Scripted(cumulative(buckets), {"200": float(sum(buckets)), "500": float(errors)},
                 {str(i): float(c) for i, c in enumerate(classes)})
    assert analyse({**ALL, "minSamples": 1}, TARGET, p).outcome != Outcome.FAIL
