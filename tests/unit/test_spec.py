"""spec.parse: the whole spec, analysis included, validated once into typed values; the
custom-query policy; and the InvalidSpec report of the operator."""

from __future__ import annotations

import copy
import dataclasses
from datetime import datetime, timezone
from typing import Any

import pytest

from modeldeploy.analysis.kinds.custom import CustomMetric
from modeldeploy.analysis.kinds.latency import LatencyMetric
from modeldeploy.analyzer import Analyzer
from modeldeploy.schema import DEFAULTS
from modeldeploy.spec import Spec, SpecError, Strategy, parse, parse_object
from modeldeploy.state import iso
from modeldeploy.validation import CONDITION, invalid_spec_status

from .rollout_sim import set_path

MINIMAL: dict[str, Any] = {"model": {"name": "digits", "version": "1.0.0", "uri": "file:///models/digits/1.0.0"}}
NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


def spec_with(path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(MINIMAL)
    set_path(doc, path.split("."), value)
    return doc


def test_defaults_come_from_one_table() -> None:
    s = parse(MINIMAL)
    assert s.strategy == Strategy()
    assert s.strategy.steps == tuple(DEFAULTS["strategy.canary.steps"])
    assert (s.strategy.step_duration, s.strategy.progress_deadline, s.strategy.readiness_grace) == (60.0, 600.0, 30.0)
    assert (s.strategy.ab_max_duration, s.strategy.ab_confidence, s.strategy.shadow_duration) == (1800.0, 0.95, None)
    a = s.analysis
    assert (a.interval, a.window, a.min_samples, a.failure_limit, a.inconclusive_limit, a.error_limit) == (
        30.0, "1m", 100, 2, 6, 4)
    assert not a.has_metrics and s.paused is False and s.model.replicas == 1


def test_the_analysis_is_typed_in_the_spec() -> None:
    s = parse(spec_with("analysis", {"interval": "10s", "metrics": [{"name": "p99", "latency": {"maxMs": 250}}]}))
    assert isinstance(s, Spec) and s.analysis.has_metrics
    assert s.analysis.metrics == (LatencyMetric("p99", max_ms=250.0),)
    assert s.analysis.interval == 10.0 and s.analysis.window == "1m"
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.analysis.interval = 1.0  # type: ignore[misc]


def test_readiness_grace_is_parsed() -> None:
    assert parse(spec_with("strategy", {"readinessGrace": "2m"})).strategy.readiness_grace == 120.0


def test_an_empty_shadow_means_a_shadow_of_the_default_duration() -> None:
    assert parse(spec_with("strategy", {"shadow": {}})).strategy.shadow_duration == 120.0


@pytest.mark.parametrize("path", [
    "strategy.progressDeadline", "strategy.readinessGrace", "strategy.shadow.duration", "strategy.canary.stepDuration",
    "analysis.interval", "analysis.window",
])
@pytest.mark.parametrize("value", ["0s", "0m", "0ms", "500ms"])
def test_durations_below_a_second_are_refused_with_the_minimum(path: str, value: str) -> None:
    with pytest.raises(SpecError, match=rf"^spec\.{path.replace('.', r'.')}: .*at least 1s"):
        parse(spec_with(path, value))


def test_a_duration_with_a_trailing_newline_is_refused() -> None:
    # The API server's pattern is anchored at the string's end; Python's `$` is not.
    with pytest.raises(SpecError, match=r"^spec\.analysis\.interval: .*not a duration"):
        parse(spec_with("analysis.interval", "30s\n"))


def test_ab_max_duration_zero_is_refused() -> None:
    doc = spec_with("strategy", {"type": "ABTest", "abTest": {"maxDuration": "0s"}})
    with pytest.raises(SpecError, match=r"^spec\.strategy\.abTest\.maxDuration: '0s' .*at least 1s and at most 720h"):
        parse(doc)


def test_a_lone_100_says_what_to_write_instead() -> None:
    with pytest.raises(SpecError, match=r"^spec\.strategy\.canary\.steps: .*\[50, 100\].*command=promote"):
        parse(spec_with("strategy.canary", {"steps": [100]}))
    assert parse(spec_with("strategy.canary", {"steps": [50, 100]})).strategy.steps == (50, 100)


@pytest.mark.parametrize(("path", "value", "words"), [
    ("model.uri", "s3://models/digits\nrm -rf", "must be a URI"),
    ("model.uri", "s3://models/my model", "no spaces"),
    ("model.image", "nginx:latest; curl evil", "must be an image reference"),
    ("model.image", "Registry/UPPER:1", "must be an image reference"),
    ("model.sha256", "a" * 64 + "\n", "64 lowercase hexadecimal"),
    ("model.version", "1.0.0\n", "valid label value"),
    ("model.name", "Digits", "DNS label"),
    ("model.replicas", 101, "from 1 to 100"),
    ("strategy.abTest", {"confidence": 1.0}, "at most 0.9999"),
    ("strategy.type", "BlueGreen", "Canary or ABTest"),
])
def test_patterns_are_anchored_and_ranges_stated(path: str, value: Any, words: str) -> None:
    doc = spec_with(path, value)
    if path.startswith("strategy.abTest"):
        doc["strategy"]["type"] = "ABTest"
    with pytest.raises(SpecError, match=rf"^spec\.{path.split('.')[0]}"):
        parse(doc)
    with pytest.raises(SpecError) as e:
        parse(doc)
    assert words in str(e.value)


def test_good_images_and_uris() -> None:
    for image in ("modeldeploy/model-server:0.1.0", "localhost:5000/ml/server", "ghcr.io/org/x@sha256:" + "a" * 64):
        assert parse(spec_with("model.image", image)).model.image == image
    assert parse(spec_with("model.uri", "https://example.com/m?v=1&x=%20")).model.uri.startswith("https://")


def test_metadata_name_must_be_a_dns_label() -> None:
    ok = {"metadata": {"name": "digits-v2"}, "spec": MINIMAL}
    assert parse_object(ok).model.name == "digits"
    with pytest.raises(SpecError, match=r"^metadata\.name: 'digits\.v2' must be a DNS-1123 label.*no dots"):
        parse_object({"metadata": {"name": "digits.v2"}, "spec": MINIMAL})


CUSTOM = {"metrics": [{"name": "agreement", "query": 'sum(x{namespace="{{namespace}}"})', "min": 0.7}]}
QUERIES = {"queries": {"errors": 'sum by (code) (x{predictor_name="{{predictor}}"})'}}


@pytest.mark.parametrize(("analysis", "field"), [(CUSTOM, r"spec\.analysis\.metrics\[0\]\.query"),
                                                 (QUERIES, r"spec\.analysis\.queries")])
def test_custom_queries_are_an_admin_opt_in(analysis: dict, field: str) -> None:
    with pytest.raises(SpecError, match=rf"^{field}: per-object PromQL is disabled.*analysis\.allowCustomQueries=true"):
        parse(spec_with("analysis", analysis), allow_custom_queries=False)
    parsed = parse(spec_with("analysis", analysis), allow_custom_queries=True)
    assert parsed.analysis.queries or isinstance(parsed.analysis.metrics[0], CustomMetric)


def test_the_operator_takes_the_policy_from_its_environment() -> None:
    assert Analyzer.from_env({}).allow_custom_queries is False
    assert Analyzer.from_env({"MODELDEPLOY_ALLOW_CUSTOM_QUERIES": "false"}).allow_custom_queries is False
    assert Analyzer.from_env({"MODELDEPLOY_ALLOW_CUSTOM_QUERIES": "true"}).allow_custom_queries is True


def test_invalid_spec_status_names_the_field_with_a_condition() -> None:
    error = SpecError("spec.analysis.interval: '0s' is out of range; it must be at least 1s")
    ready = {"type": "Ready", "status": "True", "reason": "Available", "message": "x", "lastTransitionTime": "t"}
    patch = invalid_spec_status({"conditions": [ready]}, 7, error, NOW)
    assert patch is not None and "spec.analysis.interval" in patch["message"] and patch["observedGeneration"] == 7
    assert patch["conditions"][0] == ready
    assert patch["conditions"][1] == {"type": CONDITION, "status": "True", "reason": CONDITION,
                                      "message": patch["message"], "lastTransitionTime": iso(NOW),
                                      "observedGeneration": 7}
    assert invalid_spec_status(patch, 7, error, NOW) is None  # reported once
    again = invalid_spec_status(patch, 8, error, NOW.replace(hour=9))
    assert again is not None and again["conditions"][1]["lastTransitionTime"] == iso(NOW)
