"""The CRD rejects bad ModelDeployments at apply time, naming the field and the fix, and
fills in defaults for good ones. Every case runs against the real API server."""

from __future__ import annotations

import copy
import json

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modeldeploy import GROUP, PLURAL, VERSION

VALID = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "ModelDeployment",
    "metadata": {"name": "digits"},
    "spec": {"model": {"name": "digits", "version": "1.0.0", "uri": "file:///models/digits/1.0.0"}},
}


CUSTOM = {"graph": {"name": "digits"},
          "componentSpecs": [{"spec": {"containers": [{"name": "digits", "image": "registry.example.com/ml/digits:1"}]}}]}


def with_(path: str, value):
    doc = copy.deepcopy(VALID)
    node = doc
    keys = path.split(".")
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    if value is _DELETE:
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = value
    return doc


_DELETE = object()

# (id, object, field named in the error, words of the message)
INVALID = [
    ("steps-not-ending-at-100", with_("spec.strategy.canary", {"steps": [10, 50]}),
     "spec.strategy.canary.steps", "the last step must be 100"),
    ("steps-not-ascending", with_("spec.strategy.canary", {"steps": [50, 25, 100]}),
     "spec.strategy.canary.steps", "strictly ascending"),
    ("steps-duplicated", with_("spec.strategy.canary", {"steps": [10, 10, 100]}),
     "spec.strategy.canary.steps", "strictly ascending"),
    ("step-weight-over-100", with_("spec.strategy.canary", {"steps": [10, 150]}),
     "spec.strategy.canary.steps[1]", "less than or equal to 100"),
    ("step-weight-zero", with_("spec.strategy.canary", {"steps": [0, 100]}),
     "spec.strategy.canary.steps[0]", "greater than or equal to 1"),
    ("empty-steps", with_("spec.strategy.canary", {"steps": []}),
     "spec.strategy.canary.steps", "at least 1 item"),
    ("bad-step-duration", with_("spec.strategy.canary", {"stepDuration": "five minutes"}),
     "spec.strategy.canary.stepDuration", "must be a duration such as 30s"),
    ("bad-interval", with_("spec.analysis", {"interval": "10"}),
     "spec.analysis.interval", "must be a duration such as 30s"),
    ("bad-shadow-duration", with_("spec.strategy.shadow", {"duration": "-1m"}),
     "spec.strategy.shadow.duration", "must be a duration"),
    ("version-not-a-label", with_("spec.model.version", "2.0.0+build/7"),
     "spec.model.version", "must be a valid label value"),
    ("version-too-long", with_("spec.model.version", "1" * 64),
     "spec.model.version", "may not be more than 63"),
    ("two-strategies", with_("spec.strategy", {"canary": {"steps": [50, 100]}, "abTest": {"split": 50}}),
     "spec.strategy", "set either strategy.canary or strategy.abTest, not both"),
    ("canary-on-an-abtest", with_("spec.strategy", {"type": "ABTest", "canary": {"steps": [50, 100]}}),
     "spec.strategy", "set type: Canary"),
    ("abtest-split-100", with_("spec.strategy", {"type": "ABTest", "abTest": {"split": 100}}),
     "spec.strategy.abTest.split", "less than or equal to 99"),
    ("unknown-strategy-type", with_("spec.strategy", {"type": "BlueGreen"}),
     "spec.strategy.type", "supported values"),
    ("failure-limit-zero", with_("spec.analysis", {"failureLimit": 0}),
     "spec.analysis.failureLimit", "greater than or equal to 1"),
    ("inconclusive-limit-negative", with_("spec.analysis", {"inconclusiveLimit": -3}),
     "spec.analysis.inconclusiveLimit", "greater than or equal to 1"),
    ("min-samples-zero", with_("spec.analysis", {"minSamples": 0}),
     "spec.analysis.minSamples", "greater than or equal to 1"),
    ("missing-uri", with_("spec.model.uri", _DELETE), "spec.model.uri", "is required"),
    # The predictor template (issue 14).
    ("predictor-with-neither", with_("spec.predictor", {"protocol": "seldon"}), "spec.predictor",
     "set either spec.predictor.implementation"),
    ("predictor-with-both", with_("spec.predictor", {**CUSTOM, "implementation": "SKLEARN_SERVER"}), "spec.predictor",
     "not both"),
    ("prepackaged-lowercase", with_("spec.predictor", {"implementation": "sklearn"}), "spec.predictor.implementation",
     "e.g. SKLEARN_SERVER"),
    ("secret-on-a-graph", with_("spec.predictor", {**CUSTOM, "envSecretRefName": "s3-creds"}),
     "spec.predictor.envSecretRefName", "set it on the node"),
    ("node-named-like-the-monitor", with_("spec.predictor", {**CUSTOM, "graph": {"name": "modeldeploy-monitor"}}),
     "spec.predictor.graph.name", "rename this node"),
    ("node-type-unknown", with_("spec.predictor", {**CUSTOM, "graph": {"name": "digits", "type": "MODELL"}}),
     "spec.predictor.graph.type", "supported values"),
    ("container-image-junk", with_("spec.predictor", {"graph": CUSTOM["graph"], "componentSpecs": [
        {"spec": {"containers": [{"name": "digits", "image": "repo/x:1 ; sh"}]}}]}),
     "spec.predictor.componentSpecs[0].spec.containers[0].image", "must be an image reference"),
    ("version-parameter-unnamed", with_("spec.predictor", {**CUSTOM, "versionIn": {"field": "parameter"}}),
     "spec.predictor.versionIn.parameter", "is required with field: parameter"),
    ("version-in-nowhere", with_("spec.predictor", {**CUSTOM, "versionIn": {"field": "tag"}}),
     "spec.predictor.versionIn.field", "supported values"),
    ("sha256-with-a-template", with_("spec", {"model": {**VALID["spec"]["model"], "sha256": "a" * 64},
                                              "predictor": {"implementation": "SKLEARN_SERVER"}}),
     "spec.model", "belong to modeldeploy's own model server"),
    ("uri-missing-for-a-prepackaged-server", with_("spec", {"model": {"name": "digits", "version": "1.0.0"},
                                                            "predictor": {"implementation": "SKLEARN_SERVER"}}),
     "spec.model.uri", "unless spec.predictor.versionIn.field is imageTag"),
    ("bins-not-increasing", with_("spec.model.output", {"bins": [100, 50]}), "spec.model.output.bins",
     "strictly increasing"),
    ("bins-on-a-classifier", with_("spec.model.output", {"kind": "classifier", "bins": [1, 2]}),
     "spec.model.output.bins", "are for kind: regressor"),
    ("uri-without-scheme", with_("spec.model.uri", "/models/digits"),
     "spec.model.uri", "must be a URI with scheme"),
    ("bad-sha256", with_("spec.model.sha256", "abc123"), "spec.model.sha256", "64 lowercase hexadecimal"),
    ("model-name-uppercase", with_("spec.model.name", "Digits"), "spec.model.name", "must be a DNS label"),
    ("replicas-zero", with_("spec.model.replicas", 0), "spec.model.replicas", "greater than or equal to 1"),
    ("metric-with-two-kinds", with_("spec.analysis", {"metrics": [
        {"name": "p99", "latency": {"maxMs": 200}, "errorRate": {"max": 0.01}}]}),
     "spec.analysis.metrics[0]", "exactly one of latency, errorRate, outputDistribution or query"),
    ("metric-names-duplicated", with_("spec.analysis", {"metrics": [
        {"name": "p99", "latency": {"maxMs": 200}}, {"name": "p99", "errorRate": {"max": 0.01}}]}),
     "spec.analysis.metrics[1]", "Duplicate value"),
    ("quantile-out-of-range", with_("spec.analysis", {"metrics": [{"name": "p", "latency": {"quantile": 1.5}}]}),
     "spec.analysis.metrics[0].latency.quantile", "between 0 and 1"),
    ("error-rate-over-1", with_("spec.analysis", {"metrics": [{"name": "e", "errorRate": {"max": 5}}]}),
     "spec.analysis.metrics[0].errorRate.max", "must be a fraction from 0 to 1"),
    ("query-without-bounds", with_("spec.analysis", {"metrics": [{"name": "q", "query": "vector(1)"}]}),
     "spec.analysis.metrics[0]", "a query metric needs min, max or both"),
    ("abtest-on-a-canary", with_("spec.strategy", {"abTest": {"split": 50}}),
     "spec.strategy", "set type: ABTest, or remove abTest"),
    ("name-too-long", with_("metadata.name", "d" * 41), "metadata.name", "may not be more than 40"),
    # The kinds of mistake the API server used to accept (issue 12).
    *[(f"zero-{path.rsplit('.', 1)[-1]}", with_(path, "0s"), path, "at least 1s and at most 720h")
      for path in ("spec.analysis.interval", "spec.strategy.progressDeadline", "spec.strategy.readinessGrace",
                   "spec.strategy.canary.stepDuration", "spec.strategy.shadow.duration")],
    ("zero-ab-max-duration", with_("spec.strategy", {"type": "ABTest", "abTest": {"maxDuration": "0m"}}),
     "spec.strategy.abTest.maxDuration", "at least 1s"),
    ("zero-window", with_("spec.analysis", {"window": "0m"}), "spec.analysis.window", "at least 1s"),
    ("window-units-out-of-order", with_("spec.analysis", {"window": "30s1m"}), "spec.analysis.window", "in that order"),
    ("lone-100", with_("spec.strategy.canary", {"steps": [100]}), "spec.strategy.canary.steps", "e.g. [50, 100]"),
    ("js-above-its-maximum", with_("spec.analysis", {"metrics": [{"name": "o", "outputDistribution": {
        "maxJensenShannon": 0.9}}]}), "spec.analysis.metrics[0].outputDistribution.maxJensenShannon", "at most 0.8325"),
    ("psi-zero", with_("spec.analysis", {"metrics": [{"name": "o", "outputDistribution": {"maxPSI": 0}}]}),
     "spec.analysis.metrics[0].outputDistribution.maxPSI", "greater than 0"),
    ("confidence-1", with_("spec.strategy", {"type": "ABTest", "abTest": {"confidence": 1}}),
     "spec.strategy.abTest.confidence", "at most 0.9999"),
    ("query-unknown-placeholder", with_("spec.analysis", {"metrics": [{"name": "q", "query": "x{p='{{pod}}'}",
                                                                         "max": 1}]}),
     "spec.analysis.metrics[0].query", "unknown placeholder"),
    ("query-min-above-max", with_("spec.analysis", {"metrics": [{"name": "q", "query": "vector(1)", "min": 2, "max": 1}]}),
     "spec.analysis.metrics[0]", "min must not be greater than max"),
    ("min-on-a-latency-check", with_("spec.analysis", {"metrics": [{"name": "p", "latency": {}, "min": 1}]}),
     "spec.analysis.metrics[0]", "min and max belong to a query metric only"),
    ("template-without-predictor", with_("spec.analysis", {"queries": {"errors": "sum by (code) (x)"}}),
     "spec.analysis.queries.errors", "needs {{predictor}}"),
    ("image-with-trailing-junk", with_("spec.model.image", "repo/server:1.0 ; sh"), "spec.model.image",
     "must be an image reference"),
    ("uri-with-a-newline", with_("spec.model.uri", "s3://models/digits\nx"), "spec.model.uri", "no spaces"),
    ("name-with-dots", with_("metadata.name", "digits.v2"), "metadata.name", "DNS-1123 label"),
]


@pytest.mark.parametrize("doc,field,words", [pytest.param(d, f, w, id=i) for i, d, f, w in INVALID])
def test_invalid_model_deployment_is_rejected(api, crds, namespace, doc, field, words) -> None:
    with pytest.raises(ApiException) as err:
        client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, doc)
    assert err.value.status == 422
    message = json.loads(err.value.body)["message"]
    assert field in message, message
    assert words in message, message


def test_valid_minimal_object_gets_defaults(api, crds, namespace) -> None:
    obj = client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, VALID)
    spec = obj["spec"]
    assert spec["strategy"]["type"] == "Canary"
    assert "canary" not in spec["strategy"]  # its defaults apply in the operator (and to a given canary)
    assert spec["analysis"]["failureLimit"] == 2 and spec["analysis"]["inconclusiveLimit"] == 6
    assert spec["analysis"]["method"] == "sequential"
    assert spec["model"]["replicas"] == 1 and spec["paused"] is False


def test_short_name_and_printer_columns_are_served(api, crds) -> None:
    crd = client.ApiextensionsV1Api(api).read_custom_resource_definition(f"{PLURAL}.{GROUP}")
    assert "mdep" in crd.spec.names.short_names
    cols = [c.name for c in crd.spec.versions[0].additional_printer_columns]
    assert cols == ["Phase", "Stable", "Candidate", "Weight", "Verdict", "Age", "Step", "Next-Action", "Message"]
    assert [c.priority for c in crd.spec.versions[0].additional_printer_columns][-3:] == [1, 1, 1]


def test_every_analysis_field_survives_the_schema_and_parses(api, crds, namespace) -> None:
    """The CRD and the analysis parser agree: nothing the parser reads is pruned."""
    from modeldeploy.analysis import parse_analysis

    analysis = {
        "method": "window", "interval": "10s", "window": "1m", "minSamples": 200, "failureLimit": 3,
        "inconclusiveLimit": 4, "errorLimit": 5,
        "queries": {"outputs": 'sum by (class) (modeldeploy_predictions_total{predictor_name="{{predictor}}"})'},
        "metrics": [
            {"name": "p99", "latency": {"quantile": 0.95, "maxMs": 300, "maxRatioToBaseline": 1.5, "significance": 0.01,
                                        "maxIncrease": 0.25}},
            {"name": "errors", "errorRate": {"max": 0.02, "significance": 0.01, "maxIncrease": 0.005}},
            {"name": "outputs", "outputDistribution": {"maxJensenShannon": 0.08, "maxPSI": 0.2, "significance": 0.01}},
            {"name": "custom", "query": "vector(1)", "min": 0, "max": 2},
        ],
    }
    obj = client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, with_("spec.analysis", analysis))
    stored = obj["spec"]["analysis"]
    for key, value in analysis.items():
        assert stored[key] == value or key == "metrics", key
    assert [m for m in stored["metrics"]][2]["outputDistribution"] == {
        "maxJensenShannon": 0.08, "maxPSI": 0.2, "significance": 0.01, "test": "chiSquare"}
    parsed = parse_analysis(stored)
    assert [m.name for m in parsed.metrics] == ["p99", "errors", "outputs", "custom"]
    assert parsed.method == "window" and [m.max_increase for m in parsed.metrics[:2]] == [0.25, 0.005]  # type: ignore[union-attr]


def test_the_rollouts_carried_evidence_survives_the_status_schema(api, crds, namespace) -> None:
    """The status the operator writes and reads back across steps (the evidence start, each
    step's carried e-values and strata) is not pruned by the CRD's structural schema: a
    pruned stratum would silently restart a test's evidence with every step."""
    from modeldeploy.state import CarriedEvidence, Status

    api_ = client.CustomObjectsApi(api)
    name = VALID["metadata"]["name"]
    api_.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, VALID)
    carried = CarriedEvidence("2026-01-01T00:02:00.000Z", {"errors": 1.25},
                              {"p99": {"": (3.5, 15.0)}, "outputs": {"0": (1.0, 4.0), "t:1": (-1.5, 4.25)}})
    status = Status(phase="Progressing", rolloutStartedAt="2026-01-01T00:00:00.000Z",
                    trafficStartedAt="2026-01-01T00:00:40.000Z", carriedEvidence=carried)
    api_.patch_namespaced_custom_object_status(GROUP, VERSION, namespace, PLURAL, name, {"status": status.to_dict()})
    stored = api_.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, name)["status"]
    back = Status.from_dict(stored)
    assert back.trafficStartedAt == status.trafficStartedAt
    assert back.carriedEvidence == carried
