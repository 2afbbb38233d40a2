"""The predictor template's whole-graph rules (the CRD cannot recurse) and its round trip
through status, where each version keeps the template it was deployed with."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from modeldeploy.spec import ModelSpec, SpecError, parse
from modeldeploy.template import OutputSpec

MODEL = {"name": "digits", "version": "1.0.0", "uri": "s3://models/digits/1.0.0"}
IMAGE = "registry.example.com/ml/digits:1.0"


def custom(graph: dict[str, Any], *containers: str, **extra: Any) -> dict[str, Any]:
    return {"graph": graph, "componentSpecs": [{"spec": {"containers": [
        {"name": c, "image": IMAGE} for c in containers]}}], **extra}


def parse_model(predictor: Any, **model: Any) -> ModelSpec:
    return parse({"model": {**MODEL, **model}, "predictor": predictor}).model


def test_no_template_is_our_own_server() -> None:
    m = parse({"model": MODEL}).model
    assert m.predictor is None and m.output == OutputSpec("classifier", ())


def test_a_prepackaged_server_is_a_one_node_graph_named_after_the_model() -> None:
    t = parse_model({"implementation": "SKLEARN_SERVER", "envSecretRefName": "s3-creds"}).predictor
    assert t is not None and t.prepackaged and t.version_field == "modelUri" and t.version_node == "digits"
    assert t.graph == {"name": "digits", "type": "MODEL", "implementation": "SKLEARN_SERVER",
                       "envSecretRefName": "s3-creds", "children": []}


@pytest.mark.parametrize(("predictor", "field", "words"), [
    (custom({"name": "a", "children": [{"name": "a"}]}, "a"), "spec.predictor.graph", "used twice"),
    (custom({"name": "a", "children": [{"name": "b"}]}, "a"), "spec.predictor.componentSpecs",
     "graph node 'b' has no implementation and no container named 'b'"),
    (custom({"name": "a"}, "a", "b"), "spec.predictor.componentSpecs", "container(s) b match no graph node"),
    (custom({"name": "a", "children": [{"name": "b", "children": [{"name": "Bad", "implementation": "X"}]}]},
            "a", "b"), "spec.predictor.graph.children[0].children[0].name", "must be a DNS label"),
    (custom({"name": "a"}, "a", versionIn={"node": "z"}), "spec.predictor.versionIn.node", "is not a node"),
    (custom({"name": "a", "children": [{"name": "b", "implementation": "SKLEARN_SERVER"}]}, "a",
            versionIn={"field": "imageTag", "node": "b"}), "spec.predictor.versionIn", "needs a container named 'b'"),
    ({"implementation": "SKLEARN_SERVER", "graph": {"name": "a"}}, "spec.predictor", "not both"),
])
def test_whole_graph_rules_name_the_field(predictor: dict, field: str, words: str) -> None:
    with pytest.raises(SpecError) as e:
        parse_model(predictor)
    assert str(e.value).startswith(field + ":") and words in str(e.value), str(e.value)


def test_a_digest_pinned_image_cannot_take_the_version_as_its_tag() -> None:
    pinned = {"graph": {"name": "a"}, "componentSpecs": [{"spec": {"containers": [
        {"name": "a", "image": "ghcr.io/o/x@sha256:" + "a" * 64}]}}], "versionIn": {"field": "imageTag"}}
    with pytest.raises(SpecError, match="not pinned by @sha256"):
        parse_model(pinned)


def test_the_uri_is_optional_only_when_the_version_goes_elsewhere() -> None:
    m = parse({"model": {"name": "digits", "version": "2"},
               "predictor": custom({"name": "digits"}, "digits", versionIn={"field": "imageTag"})}).model
    assert m.uri is None
    with pytest.raises(SpecError, match="spec.model.uri is required"):
        parse({"model": {"name": "digits", "version": "2"}, "predictor": {"implementation": "SKLEARN_SERVER"}})


def test_the_template_and_output_survive_status() -> None:
    m = parse_model(custom({"name": "digits", "children": [{"name": "pre"}]}, "digits", "pre",
                           versionIn={"field": "parameter", "parameter": "model_version"}),
                    output={"bins": [50, 100]})
    assert ModelSpec.from_dict(dataclasses.asdict(m)) == m
    assert m.output == OutputSpec("regressor", (50.0, 100.0))
    old = {"name": "digits", "version": "1", "uri": "s3://b/1", "sha256": None, "image": "x", "replicas": 1}
    assert ModelSpec.from_dict(old).predictor is None  # a status written before templates existed


def test_bins_read_back_from_json_are_the_same_floats() -> None:
    m = parse_model({"implementation": "SKLEARN_SERVER"}, output={"bins": [100, 150.5]})
    stored = json.loads(json.dumps(dataclasses.asdict(m)).replace("100.0", "100"))
    assert stored["output"]["bins"][0] == 100 and isinstance(stored["output"]["bins"][0], int)
    assert ModelSpec.from_dict(stored) == m
