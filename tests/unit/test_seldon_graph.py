"""Rendering a user's predictor template: one predictor per version, the version where
versionIn says, the graph wrapped in the output monitor, Seldon's rules kept."""

from __future__ import annotations

import re
from pathlib import Path

from modeldeploy.routers import seldon_v1
from modeldeploy.routers.seldon_v1_graph import MONITOR_INTERFACE, with_tag
from modeldeploy.routing import Predictor
from modeldeploy.spec import parse
from modeldeploy.template import MONITOR_NODE, nodes

OWNER = {"apiVersion": "modeldeploy.io/v1alpha1", "kind": "ModelDeployment", "metadata": {"name": "m", "uid": "u"}}
IMAGE = "registry.example.com:5000/ml/price"
TWO_NODES = {
    "graph": {"name": "price", "type": "MODEL", "children": [], "parameters": [{"name": "model_version", "value": "x"}]},
    "componentSpecs": [{"spec": {"containers": [{"name": "price", "image": f"{IMAGE}:0.9", "resources": {
        "requests": {"cpu": "100m"}}}]}}],
}


def model(version: str, predictor: dict | None, **fields):
    return parse({"model": {"name": "price", "version": version, **fields}, "predictor": predictor}).model


def sdep(*predictors: Predictor) -> dict:
    return seldon_v1.render("price", "ns", OWNER, list(predictors))


def containers(p: dict) -> list[dict]:
    return [c for cs in p["componentSpecs"] for c in cs["spec"]["containers"]]


def test_a_prepackaged_server_is_wrapped_in_the_monitor_with_its_own_deployment() -> None:
    m = model("2", {"implementation": "SKLEARN_SERVER", "envSecretRefName": "s3"}, uri="s3://b/price/2",
              output={"bins": [0, 100]})
    p = seldon_v1.render_predictor(Predictor("v2", "2", m, 100))
    root = p["graph"]
    assert root["name"] == MONITOR_NODE and root["type"] == "OUTPUT_TRANSFORMER"
    assert {q["name"]: q["value"] for q in root["parameters"]} == {"kind": "regressor", "bins": "[0.0, 100.0]"}
    # Without bins, the monitor counts on its fine grid and the bins come from status, not the graph.
    fine = seldon_v1.render_predictor(Predictor("v2", "2", model("2", {"implementation": "SKLEARN_SERVER"},
                                                                 uri="s3://b/price/2", output={"kind": "regressor"}),
                                                100))["graph"]
    assert {q["name"]: q["value"] for q in fine["parameters"]} == {"kind": "regressor"}
    (model_node,) = root["children"]
    assert model_node == {"name": "price", "type": "MODEL", "implementation": "SKLEARN_SERVER", "envSecretRefName": "s3",
                          "children": [], "modelUri": "s3://b/price/2"}
    assert [c["name"] for c in containers(p)] == ["price", MONITOR_NODE]
    assert "image" not in containers(p)[0] and "readinessProbe" not in containers(p)[0]  # Seldon's own
    env = {e["name"]: e["value"] for e in containers(p)[1]["env"]}
    assert env == {"MODEL_NAME": MONITOR_INTERFACE, "SERVICE_TYPE": "TRANSFORMER",
                   "INCLUDE_METRICS_IN_CLIENT_RESPONSE": "false"}
    names = seldon_v1.deployment_names("price", p)
    assert names == [("price-v2-0-price",), (f"price-v2-1-{MONITOR_NODE}",)]


def test_each_version_gets_its_image_tag_and_the_stable_keeps_its_own() -> None:
    template = {**TWO_NODES, "versionIn": {"field": "imageTag"}}
    stable, candidate = model("1.0", template), model("1.1", template)
    body = sdep(Predictor("v1-0", "1.0", stable, 90), Predictor("v1-1", "1.1", candidate, 10))
    images = [[c.get("image") for c in containers(p)] for p in body["spec"]["predictors"]]
    assert [i[0] for i in images] == [f"{IMAGE}:1.0", f"{IMAGE}:1.1"]
    assert sum(p["traffic"] for p in body["spec"]["predictors"]) == 100 and body["spec"]["protocol"] == "seldon"
    for p in body["spec"]["predictors"]:  # Seldon's webhook: each container named after a node
        assert {c["name"] for c in containers(p)} <= {n["name"] for n in nodes(p["graph"])}
        assert containers(p)[0]["resources"] == {"requests": {"cpu": "100m"}}


def test_a_version_parameter_replaces_the_templates_value() -> None:
    m = model("7", {**TWO_NODES, "versionIn": {"field": "parameter", "parameter": "model_version"}})
    child = seldon_v1.render_predictor(Predictor("v7", "7", m, 100))["graph"]["children"][0]
    assert child["parameters"] == [{"name": "model_version", "type": "STRING", "value": "7"}]


def test_another_protocol_gets_no_monitor_and_the_stable_decides_the_protocol() -> None:
    v2 = {"implementation": "TRITON_SERVER", "protocol": "v2"}
    stable = model("1", v2, uri="gs://b/1")
    p = seldon_v1.render_predictor(Predictor("v1", "1", stable, 100))
    assert p["graph"]["name"] == "price" and [c["name"] for c in containers(p)] == ["price"]
    assert sdep(Predictor("v1", "1", stable, 50), Predictor("v2", "2", model("2", v2, uri="gs://b/2"), 50)
                )["spec"]["protocol"] == "v2"


def test_in_sync_ignores_what_the_webhook_adds_and_sees_a_changed_model_uri() -> None:
    m = model("2", {"implementation": "SKLEARN_SERVER"}, uri="s3://b/2")
    desired = sdep(Predictor("v2", "2", m, 100))
    actual = {"spec": {**desired["spec"], "predictors": [dict(desired["spec"]["predictors"][0])]}}
    p = actual["spec"]["predictors"][0]
    p["componentSpecs"] = [{"spec": {"containers": [{"name": "price", "image": "seldonio/sklearnserver:1.17.1"}]}},
                           p["componentSpecs"][1]]
    p["graph"] = {**p["graph"], "implementation": "UNKNOWN_IMPLEMENTATION", "endpoint": {"type": "REST", "httpPort": 9000},
                  "children": [{**p["graph"]["children"][0], "endpoint": {"type": "REST"}}]}
    assert seldon_v1.in_sync(actual, desired)
    p["graph"]["children"][0]["modelUri"] = "s3://b/1"
    assert not seldon_v1.in_sync(actual, desired)


def test_our_own_server_is_rendered_as_before_without_a_monitor() -> None:
    m = parse({"model": {"name": "digits", "version": "1", "uri": "s3://b/1"}}).model
    p = seldon_v1.render_predictor(Predictor("v1", "1", m, 100))
    assert p["graph"]["name"] == "digits" and p["graph"]["children"] == []
    assert containers(p)[0]["readinessProbe"]["httpGet"]["path"] == "/health/status"


def test_tags_are_replaced_and_registry_ports_kept() -> None:
    assert with_tag("localhost:5000/x", "2") == "localhost:5000/x:2"
    assert with_tag("localhost:5000/x:1.0", "2") == "localhost:5000/x:2"
    assert with_tag("x:1", "v2.0") == "x:v2.0"


def test_the_monitor_interface_is_the_model_servers() -> None:
    launch = Path(__file__).parents[2] / "model_server" / "modelserver" / "launch.py"
    assert re.search(rf'^MONITOR_INTERFACE = "{re.escape(MONITOR_INTERFACE)}"$', launch.read_text(), re.MULTILINE)
