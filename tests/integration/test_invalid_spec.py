"""A spec the CRD accepts but the operator must refuse becomes InvalidSpec before any
traffic moves: one tick of the operator's shell (`reconcile_once`) on the real API server.
The case is the custom-query policy, tested both ways."""

from __future__ import annotations

from datetime import datetime, timezone

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modeldeploy import GROUP, PLURAL, VERSION, rollout
from modeldeploy.routers import seldon_v1 as seldon
from modeldeploy.analyzer import Analyzer
from modeldeploy.handlers import reconcile_once
from modeldeploy.kube import Kube
from modeldeploy.scheduler import Book

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
CUSTOM = {"name": "agreement", "min": 0.7, "query": 'sum(x{namespace="{{namespace}}", predictor_name="{{predictor}}"})'}


def body(*metrics: dict) -> dict:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "ModelDeployment", "metadata": {"name": "digits"},
            "spec": {"model": {"name": "digits", "version": "1.0.0", "uri": "file:///models/digits/1.0.0"},
                     "analysis": {"metrics": list(metrics)}}}


def _sdep(api: client.ApiClient, namespace: str) -> dict | None:
    try:
        return client.CustomObjectsApi(api).get_namespaced_custom_object(
            seldon.GROUP, seldon.VERSION, namespace, seldon.PLURAL, "digits")
    except ApiException as e:
        if e.status == 404:
            return None
        raise


def _state(api: client.ApiClient, namespace: str) -> tuple[dict, list, dict | None]:
    objs = client.CustomObjectsApi(api)
    mdep = objs.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "digits")
    events = [e for e in client.CoreV1Api(api).list_namespaced_event(namespace).items if e.reason == "InvalidSpec"]
    return mdep, events, _sdep(api, namespace)


def tick(api: client.ApiClient, analyzer: Analyzer, namespace: str) -> rollout.Decision | None:
    """One reconcile of the shell on the objects as the API server has them now."""
    mdep = client.CustomObjectsApi(api).get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "digits")
    return reconcile_once(Kube(api), analyzer, mdep, _sdep(api, namespace), Book(), NOW).decision


def test_custom_query_is_refused_by_default_with_status_event_and_condition(api, crds, namespace) -> None:
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body(CUSTOM))
    analyzer = Analyzer(None)
    assert tick(api, analyzer, namespace) is None
    mdep, events, sdep = _state(api, namespace)
    assert sdep is None  # nothing deployed, no traffic moved
    status = mdep["status"]
    assert "spec.analysis.metrics[0].query" in status["message"] and "allowCustomQueries=true" in status["message"]
    [cond] = [c for c in status["conditions"] if c["type"] == "InvalidSpec"]
    assert cond["status"] == "True" and cond["observedGeneration"] == mdep["metadata"]["generation"]
    assert len(events) == 1 and events[0].type == "Warning" and "spec.analysis.metrics[0].query" in events[0].message

    tick(api, analyzer, namespace)  # the same error is reported once
    assert len(_state(api, namespace)[1]) == 1

    # Fixed: the next tick deploys, and the condition no longer claims the spec is invalid.
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "digits", {"spec": {"analysis": {"metrics": None}}})
    assert tick(api, analyzer, namespace) is not None
    mdep, _, sdep = _state(api, namespace)
    assert sdep is not None and sdep["metadata"]["name"] == "digits"
    assert not [c for c in mdep["status"].get("conditions") or [] if c["type"] == "InvalidSpec" and c["status"] == "True"]


def test_custom_query_runs_when_the_admin_allows_it(api, crds, namespace) -> None:
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body(CUSTOM))
    decision = tick(api, Analyzer(None, allow_custom_queries=True), namespace)
    assert decision is not None
    mdep, events, sdep = _state(api, namespace)
    assert sdep is not None and not events and "Invalid spec" not in (mdep.get("status") or {}).get("message", "")
    assert seldon.GROUP in sdep["apiVersion"]


def test_a_graph_the_crd_cannot_check_is_invalid_spec_and_a_fixed_one_is_rendered(api, crds, namespace) -> None:
    """OpenAPI cannot recurse: a container that serves no graph node passes the CRD and is
    refused by the operator, naming the field; fixed, the graph is rendered wrapped in the
    output monitor."""
    doc = body()
    doc["spec"]["predictor"] = {"graph": {"name": "digits"}, "componentSpecs": [{"spec": {"containers": [
        {"name": "digits", "image": "registry.example.com/ml/digits:1"}, {"name": "stray", "image": "x:1"}]}}]}
    client.CustomObjectsApi(api).create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, doc)
    analyzer = Analyzer(None)
    assert tick(api, analyzer, namespace) is None
    mdep, events, sdep = _state(api, namespace)
    assert sdep is None and "spec.predictor.componentSpecs" in mdep["status"]["message"]
    assert "stray match no graph node" in events[0].message

    doc["spec"]["predictor"]["componentSpecs"][0]["spec"]["containers"].pop()
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP, VERSION, namespace, PLURAL, "digits", {"spec": {"predictor": doc["spec"]["predictor"]}})
    assert tick(api, analyzer, namespace) is not None
    sdep = _state(api, namespace)[2]
    assert sdep is not None
    [predictor] = sdep["spec"]["predictors"]
    assert predictor["graph"]["name"] == "modeldeploy-monitor"
    assert predictor["graph"]["children"][0]["modelUri"] == "file:///models/digits/1.0.0"
