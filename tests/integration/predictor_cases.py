"""Boundary values of `spec.predictor` and `spec.model.output` for the CRD/parser agreement
test, each placed inside a template that is valid but for the value tried (a graph node
and its container renamed together, children that need no container, ...)."""

from __future__ import annotations

import copy
from typing import Any

IMAGE = "registry.example.com/ml/digits:1.0"
GRAPH = "spec.predictor.graph"
CHILD = f"{GRAPH}.children[]"
CONTAINERS = "spec.predictor.componentSpecs[].spec.containers"
CUSTOM: dict[str, Any] = {
    "graph": {"name": "digits", "type": "MODEL", "children": []},
    "componentSpecs": [{"spec": {"containers": [{"name": "digits", "image": IMAGE}]}}],
}
NAMES = ["digits", "Digits", "di_gits", "-a", "a" * 63, "a" * 64, "modeldeploy-monitor"]
SECRETS = ["s3-creds", "s3.creds", "S3", "a_b", "a" * 253, "a" * 254]
IMPLEMENTATIONS = ["SKLEARN_SERVER", "RANDOM_ABTEST", "sklearn", "A" * 63, "A" * 64, "SK-LEARN"]
URIS = ["s3://b/k", "gs://b/k", "S3://b/k", "s3://b k", "ftp://x", "s3://" + "a" * 2043, "s3://" + "a" * 2044]
PARAMS = ["model_version", "x1", "1x", "a-b", "a" * 63, "a" * 64]


def _leaves(base: str) -> dict[str, list[Any]]:
    """Samples of one graph node's constrained fields below `base`."""
    return {
        f"{base}.implementation": IMPLEMENTATIONS, f"{base}.modelUri": URIS, f"{base}.envSecretRefName": SECRETS,
        f"{base}.parameters": [[], [{"name": f"p{i}", "value": "1"} for i in range(20)],
                               [{"name": f"p{i}", "value": "1"} for i in range(21)]],
        f"{base}.parameters[].name": PARAMS,
        f"{base}.children": [[], [{"name": f"c{i}", "implementation": "SKLEARN_SERVER"} for i in range(10)],
                             [{"name": f"c{i}", "implementation": "SKLEARN_SERVER"} for i in range(11)]],
    }


SAMPLES: dict[str, list[Any]] = {
    "spec": [{"model": {"name": "digits", "version": "1.0.0"}},
             {"model": {"name": "digits", "version": "1.0.0"}, "predictor": {**CUSTOM, "versionIn": {"field": "imageTag"}}},
             {"model": {"name": "digits", "version": "1.0.0"}, "predictor": {**CUSTOM, "versionIn": {
                 "field": "parameter", "parameter": "model_version"}}},
             {"model": {"name": "digits", "version": "1.0.0", "uri": "s3://b/k", "sha256": "a" * 64},
              "predictor": {"implementation": "SKLEARN_SERVER"}},
             {"model": {"name": "digits", "version": "1.0.0", "uri": "s3://b/k", "image": IMAGE},
              "predictor": {"implementation": "SKLEARN_SERVER"}},
             {"model": {"name": "digits", "version": "1.0.0", "uri": "s3://b/k"},
              "predictor": {"implementation": "SKLEARN_SERVER"}}],
    "spec.predictor": [{}, {"implementation": "SKLEARN_SERVER"}, {**CUSTOM, "implementation": "SKLEARN_SERVER"},
                       {**CUSTOM, "envSecretRefName": "s3-creds"},
                       {"implementation": "XGBOOST_SERVER", "envSecretRefName": "s3-creds"}],
    "spec.predictor.implementation": ["SKLEARN_SERVER", "MY_OWN_SERVER", "RANDOM_ABTEST", "sklearn",
                                      "A" * 56 + "_SERVER", "A" * 57 + "_SERVER"],
    "spec.predictor.envSecretRefName": SECRETS,
    f"{GRAPH}.name": NAMES,
    **_leaves(GRAPH),
    f"{CHILD}.name": ["child", "Child", "a" * 63, "a" * 64, "modeldeploy-monitor"],
    **_leaves(CHILD),
    "spec.predictor.componentSpecs": [CUSTOM["componentSpecs"] + [{}] * 9, CUSTOM["componentSpecs"] + [{}] * 10],
    CONTAINERS: [10, 11],  # containers, for graph children c1..c10
    f"{CONTAINERS}[].name": ["digits", "Digits", "a_b", "a" * 63, "a" * 64],
    f"{CONTAINERS}[].image": [IMAGE, "x", "Upper/x", "x:tag; rm", "x:" + "t" * 129, "ghcr.io/o/x@sha256:" + "a" * 64],
    "spec.predictor.versionIn": [{}, {"field": "parameter"}, {"field": "parameter", "parameter": "v"},
                                 {"parameter": "v"}, {"field": "imageTag"}],
    "spec.predictor.versionIn.node": ["digits", "Digits", "a" * 64],
    "spec.predictor.versionIn.parameter": PARAMS,
    "spec.model.output": [{}, {"kind": "classifier", "bins": [1]}, {"kind": "regressor", "bins": [1, 2]},
                          {"bins": [1]}, {"kind": "regressor"}],
    "spec.model.output.bins": [[], [1], [1, 2.5], [2, 1], [1, 1], list(range(50)), list(range(51)), [-1e9, 0.5]],
}


def _at(node: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split(".")
    for k in keys[:-1]:
        if k.endswith("[]"):
            node = node[k[:-2]][0]
        else:
            node = node.setdefault(k, {})
    if keys[-1].endswith("[]"):
        node[keys[-1][:-2]] = [value]
    else:
        node[keys[-1]] = value


def place(doc: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """`doc` (a valid ModelDeployment) with `value` at `path` below spec.predictor or spec.model.output."""
    spec = doc["spec"]
    if path == "spec":
        doc["spec"] = copy.deepcopy(value)
        return doc
    if path.startswith("spec.model.output"):
        _at(spec, path[len("spec."):], value)
        return doc
    if path in ("spec.predictor", "spec.predictor.implementation"):
        spec["predictor"] = value if path == "spec.predictor" else {"implementation": value}
        return doc
    if path == "spec.predictor.envSecretRefName":
        spec["predictor"] = {"implementation": "SKLEARN_SERVER", "envSecretRefName": value}
        return doc
    predictor = spec["predictor"] = copy.deepcopy(CUSTOM)
    graph, container = predictor["graph"], predictor["componentSpecs"][0]["spec"]["containers"][0]
    if path in (f"{GRAPH}.name", f"{CONTAINERS}[].name"):
        graph["name"] = container["name"] = value  # Seldon pairs them by name
        return doc
    if path == CONTAINERS:
        graph["children"] = [{"name": f"c{i}", "implementation": "SKLEARN_SERVER"} for i in range(1, 11)]
        predictor["componentSpecs"][0]["spec"]["containers"] += [{"name": f"c{i}"} for i in range(1, value)]
        return doc
    if path.startswith(CHILD):
        graph["children"] = [{"name": "child", "implementation": "SKLEARN_SERVER"}]
    if path.startswith("spec.predictor.versionIn.") and not path.endswith(".field"):
        predictor["versionIn"] = {"field": "parameter"} if path.endswith(".parameter") else {}
    if path.endswith(("parameters[].type", "parameters[].name")):
        path, key = path.rsplit("[].", 1)
        value = [{"name": "p", "value": "1", key: value}]
    _at(predictor, path[len("spec.predictor."):], value)
    return doc
