"""PromQL templates: values are validated and escaped, injection attempts are rejected."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modeldeploy.analysis import AnalysisConfigError, Target, Templates, analyse
from modeldeploy.analysis.query import QuerySession
from modeldeploy.analysis.templates import (
    DEFAULT_LATENCY,
    escape_label_value,
    format_duration,
    prometheus_seconds,
    render,
)
from modeldeploy.providers import Sample

GOOD = {"namespace": "models", "deployment": "digits", "predictor": "digits-2-0-0", "window": "1m", "lookback": "30s"}

INJECTIONS = [
    'x"} or vector(1) #',
    'x"}[5m]) or on() vector(1) or (up{a="',
    "x\\",
    'x"',
    "x\ny",
    "Digits",  # upper case is not a Kubernetes name either
    "x{{window}}",
    "-x",
    "a" * 254,
    "",
]


class Recorder:
    """A provider that must never be reached by an unsafe query."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        self.queries.append(promql)
        return []

    def is_online(self) -> bool:
        return True


@pytest.mark.parametrize("field", ["namespace", "deployment", "predictor"])
@pytest.mark.parametrize("value", INJECTIONS)
def test_names_that_could_inject_promql_are_rejected_with_the_field_named(field: str, value: str) -> None:
    with pytest.raises(AnalysisConfigError, match=rf"^target\.{field}: .*DNS-1123"):
        render(DEFAULT_LATENCY, {**GOOD, field: value})


@pytest.mark.parametrize("field", ["window", "lookback"])
@pytest.mark.parametrize("window", ["1m] or vector(1) #", "1m]", "5", "1.5m", "m", "0s", "1s1m", "-1m", "1m ",
                                    "{{window}}"])
def test_windows_that_are_not_prometheus_durations_are_rejected(field: str, window: str) -> None:
    with pytest.raises(AnalysisConfigError, match=rf"^target\.{field}: .*not a Prometheus duration"):
        render(DEFAULT_LATENCY, {**GOOD, field: window})


def test_analyse_rejects_an_unsafe_target_before_any_query() -> None:
    provider = Recorder()
    spec = {"metrics": [{"name": "p99", "latency": {}}]}
    with pytest.raises(AnalysisConfigError, match=r"^target\.candidate: "):
        analyse(spec, Target("models", "digits", "v1", 'v2"} or vector(1) #'), provider)
    with pytest.raises(AnalysisConfigError, match=r"^target\.window: "):
        analyse(spec, Target("models", "digits", "v1", "v2", window="1m] or vector(1)"), provider)
    with pytest.raises(AnalysisConfigError, match=r"^spec\.analysis\.window: "):
        analyse({**spec, "window": "1m]"}, Target("models", "digits", "v1", "v2"), provider)
    assert provider.queries == []


def test_a_good_target_renders_the_expected_promql() -> None:
    sel = ('seldon_api_executor_server_requests_seconds_bucket{namespace="models", deployment_name="digits", '
           'predictor_name="digits-2-0-0", service=~"predictions|/seldon.protos.Seldon/Predict"}')
    existed = f"last_over_time({sel}[1h] offset 1m)"
    start = (f"last_over_time({sel}[30s] offset 1m) or (min_over_time({sel}[1m]) and {existed}) "
             f"or ({sel} * 0 unless {existed})")
    assert render(DEFAULT_LATENCY, GOOD) == f"sum by (le) (clamp_min({sel} - ({start}), 0))"
    assert "a.b-c" in render(DEFAULT_LATENCY, {**GOOD, "deployment": "a.b-c"})  # subdomains are fine


@pytest.mark.parametrize("field", ["predictor", "deployment", "namespace", "window"])
def test_a_trailing_newline_is_refused(field: str) -> None:
    # Python's `$` also matches before a final newline, which once let "name\n" through.
    with pytest.raises(AnalysisConfigError):
        render(DEFAULT_LATENCY, {**GOOD, field: GOOD[field] + "\n"})


@given(st.text(max_size=80))
def test_any_accepted_value_lands_inside_its_string_literal(value: str) -> None:
    try:
        promql = render(DEFAULT_LATENCY, {**GOOD, "predictor": value})
    except AnalysisConfigError:
        return
    # Accepted: the matcher holds exactly the value and the query's structure is intact.
    assert set(re.findall(r'predictor_name="([^"\\]*)"', promql)) == {value}
    sentinel = "zzzsentinelzzz"
    assert promql == render(DEFAULT_LATENCY, {**GOOD, "predictor": sentinel}).replace(sentinel, value)


def test_values_are_substituted_once_never_re_expanded() -> None:
    template = 'up{a="{{predictor}}", b="{{window}}"}'
    assert render(template, {**GOOD, "predictor": "p"}) == 'up{a="p", b="1m"}'


def test_escaping_covers_the_promql_string_metacharacters() -> None:
    assert escape_label_value('a"b\\c\nd') == 'a\\"b\\\\c\\nd'


def test_templates_reject_unknown_placeholders_and_missing_predictor() -> None:
    with pytest.raises(AnalysisConfigError, match=r"^queries\.latency: unknown placeholder\(s\) \{\{pod\}\}"):
        Templates(latency="sum(x{pod='{{pod}}', p='{{predictor}}'})")
    with pytest.raises(AnalysisConfigError, match=r"^queries\.outputs: needs \{\{predictor\}\}"):
        Templates().merged({"outputs": 'sum by (class) (x{ns="{{namespace}}"})'})
    with pytest.raises(AnalysisConfigError, match=r"^queries: unknown query latncy"):
        Templates().merged({"latncy": "x"})


def test_operator_templates_then_object_overrides() -> None:
    operator = Templates.from_mapping({"outputs": 'sum by (class) (mine{p="{{predictor}}"}[{{window}}])'})
    assert operator.latency == DEFAULT_LATENCY
    per_object = operator.merged({"latency": 'sum by (le) (lat_bucket{p="{{predictor}}"})'})
    assert per_object.outputs.startswith("sum by (class) (mine") and per_object.latency.startswith("sum by (le) (lat")


def test_durations() -> None:
    assert prometheus_seconds("1h30m") == 5400 and prometheus_seconds("250ms") == 0.25
    assert [format_duration(s) for s in (60, 90, 7200, 0.5, 45)] == ["1m", "90s", "2h", "500ms", "45s"]


@pytest.mark.parametrize(("lookback_s", "expected"), [(30.0, "30s"), (120.0, "1m"), (None, "1m")])
def test_the_lookback_is_the_analysis_interval_capped_at_the_window(lookback_s: float | None, expected: str) -> None:
    # Longer than the window, a later look's start could reach back across a scrape gap.
    session = QuerySession(Recorder(), Target("models", "digits", "v1", "v2", window="1m"), lookback_s=lookback_s)
    assert f"[{expected}] offset 1m)" in session.render(DEFAULT_LATENCY, "v2")
