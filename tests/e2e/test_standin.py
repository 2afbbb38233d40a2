"""The Seldon stand-in itself: real model servers per predictor, Istio's weighted routing,
and SeldonDeployment status exactly as Seldon 1.17 writes it (no more)."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import urllib3
from sklearn.datasets import load_digits

from modeldeploy import routing
from modeldeploy.routers import seldon_v1 as seldon
from modeldeploy.analysis.checks import is_error_code
from modeldeploy.analysis.templates import DEFAULT_ERRORS, render
from modeldeploy.spec import ModelSpec
from sandbox import artifacts as art
from sandbox import prometheus as prom_mod
from sandbox.harness import SDEP, Objects, wait_for
from sandbox.processes import free_port
from sandbox.router import PROTOCOL_HEADER, Router
from sandbox.seldon_standin import SeldonStandIn

OWNER = {"apiVersion": "modeldeploy.io/v1alpha1", "kind": "ModelDeployment",
         "metadata": {"name": "digits", "uid": "00000000-0000-0000-0000-000000000000"}}
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="session")
def artifacts():
    return art.ensure_artifacts()


@pytest.fixture
def stack(api, crds, namespace, tmp_path):
    router = Router(seed=1)
    port = free_port()
    router.serve(port)
    standin = SeldonStandIn(api, [namespace], router, art.model_bin(), tmp_path).start()
    yield router, port, standin
    standin.stop()
    router.close()


def predictor(artifacts, name: str, traffic: int, shadow: bool = False, model: str = "digits") -> routing.Predictor:
    version = art.card_version(artifacts, name)
    spec = ModelSpec(name=model, version=version, uri=f"file://{artifacts / name}")
    return routing.Predictor(routing.predictor_name(version), version, spec, traffic, shadow)


def create_sd(objs: Objects, preds, name: str = "digits", **predictor_fields) -> dict:
    body = seldon.render(name, objs.namespace, OWNER, list(preds))
    body["metadata"].pop("ownerReferences")  # the owner is fictional here
    for p in body["spec"]["predictors"]:
        p.update(predictor_fields)
    objs.custom.create_namespaced_custom_object(*SDEP[:2], objs.namespace, SDEP[2], body)
    return body


def status(objs: Objects, name: str = "digits") -> dict:
    return (objs.sdep(name) or {}).get("status") or {}


def served_by(r: urllib3.BaseHTTPResponse) -> str:
    return json.loads(r.data)["meta"]["tags"]["model_version"]


def metric_lines(http: urllib3.PoolManager, port: int, name: str) -> list[str]:
    text = http.request("GET", f"http://127.0.0.1:{port}/metrics").data.decode()
    return [line for line in text.splitlines() if line.startswith(name)]


# Ten thousand requests take a minute or two on 2 cores: `make test` sends 2,000 (the split
# within 3 points, about 3 standard deviations), `make soak` the 10,000 (within 2, about 4.4).
@pytest.mark.parametrize(("requests", "tolerance"), [(2_000, 3), pytest.param(10_000, 2, marks=pytest.mark.soak)])
def test_router_splits_requests_by_traffic(api, namespace, artifacts, stack, requests, tolerance) -> None:
    router, port, _ = stack
    objs = Objects(api, namespace)
    body = create_sd(objs, [predictor(artifacts, "1.0.0", 70), predictor(artifacts, "2.0.0", 30)])
    image = body["spec"]["predictors"][0]["componentSpecs"][0]["spec"]["containers"][0]["image"]
    wait_for("Available", lambda: status(objs).get("state") == "Available", 120)
    st = status(objs)
    # Only Seldon's fields: replicas and availableReplicas per Deployment, nothing invented.
    assert st["deploymentStatus"] == {"digits-v1-0-0-0-digits": {"replicas": 1, "availableReplicas": 1},
                                      "digits-v2-0-0-0-digits": {"replicas": 1, "availableReplicas": 1}}
    assert "description" not in st and st["replicas"] == 1
    assert st["address"]["url"] == f"http://digits-v1-0-0.{namespace}.svc.cluster.local:8000/api/v1.0/predictions"

    x = load_digits().data
    http = urllib3.PoolManager(maxsize=8)
    url = f"http://127.0.0.1:{port}/seldon/{namespace}/digits/api/v1.0/predictions"

    def one(i: int) -> str:
        r = http.request("POST", url, body=json.dumps({"data": {"ndarray": [x[i % len(x)].tolist()]}}), headers=JSON)
        assert r.status == 200, r.data
        assert json.loads(r.data)["meta"]["requestPath"] == {"digits": image}  # as the executor adds it
        return served_by(r)

    with ThreadPoolExecutor(8) as pool:
        served = list(pool.map(one, range(requests)))
    share = served.count("2.0.0") / len(served) * 100
    print(f"observed split over {requests:,} requests: {100 - share:.2f}/{share:.2f} (wanted 70/30)")
    assert abs(share - 30) <= tolerance
    stats = json.loads(http.request("GET", f"http://127.0.0.1:{port}/stats").data)
    assert stats["digits/v1-0-0"]["served"] + stats["digits/v2-0-0"]["served"] == requests
    hist = metric_lines(http, port, "seldon_api_executor_server_requests_seconds_bucket")
    # The executor's exact buckets (executor/api/metric/constants.go DefBuckets) and labels.
    les = sorted({float(m) for m in re.findall(r'le="([^"+]+)"', "\n".join(hist))})
    assert les == [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0]
    count = metric_lines(http, port, "seldon_api_executor_server_requests_seconds_count")
    assert any(f'namespace="{namespace}",predictor_name="v2-0-0",predictor_version="2.0.0",service="predictions"' in c
               and 'code="200"' in c for c in count), count
    istio = metric_lines(http, port, "istio_requests_total{")
    assert any('destination_service_name="digits-v2-0-0"' in s and 'response_code="200"' in s
               and 'destination_version="2.0.0"' in s and 'reporter="source"' in s for s in istio), istio


def test_feedback_to_a_predictor_service_reaches_that_predictor(api, namespace, artifacts, stack) -> None:
    router, port, _ = stack
    objs = Objects(api, namespace)
    create_sd(objs, [predictor(artifacts, "1.0.0", 50), predictor(artifacts, "2.0.0", 50)])
    wait_for("Available", lambda: status(objs).get("state") == "Available", 120)
    http = urllib3.PoolManager()
    x = load_digits().data[0].tolist()
    fb = json.dumps({"request": {"data": {"ndarray": [x]}}, "truth": {"data": {"ndarray": [0]}}})
    for _ in range(40):
        r = http.request("POST", f"http://127.0.0.1:{port}/svc/{namespace}/digits-v2-0-0/api/v1.0/feedback",
                         body=fb, headers=JSON)
        assert r.status == 200, r.data
    stats = json.loads(http.request("GET", f"http://127.0.0.1:{port}/stats").data)
    assert stats["digits/v2-0-0"]["feedback"] == 40 and "feedback" not in stats.get("digits/v1-0-0", {})


def test_shadow_is_mirrored_and_never_answers_users(api, namespace, artifacts, stack) -> None:
    router, port, _ = stack
    objs = Objects(api, namespace)
    create_sd(objs, [predictor(artifacts, "1.0.0", 100), predictor(artifacts, "skewed", 100, shadow=True)])
    wait_for("Available", lambda: status(objs).get("state") == "Available", 120)
    http = urllib3.PoolManager()
    url = f"http://127.0.0.1:{port}/seldon/{namespace}/digits/api/v1.0/predictions"
    body = json.dumps({"data": {"ndarray": [np.zeros(64).tolist()]}})
    served = {served_by(http.request("POST", url, body=body, headers=JSON)) for _ in range(50)}
    assert served == {"1.0.0"}
    stats = wait_for("mirrored", lambda: (s := json.loads(http.request("GET", f"http://127.0.0.1:{port}/stats").data))
                     .get("digits/v2-0-0-skewed", {}).get("mirrored", 0) >= 50 and s, 10)
    assert "served" not in stats["digits/v2-0-0-skewed"]


def test_corrupt_artifact_is_never_ready_and_fails_only_at_its_progress_deadline(api, namespace, artifacts, stack) -> None:
    objs = Objects(api, namespace)
    deadline = 20
    t0 = time.monotonic()
    create_sd(objs, [predictor(artifacts, "1.0.0", 100), predictor(artifacts, "corrupt", 0)],
              progressDeadlineSeconds=deadline)
    corrupt = "digits-v2-0-0-corrupt-0-digits"
    seen = []
    while time.monotonic() - t0 < 120 and (not seen or seen[-1][1].get("state") != "Failed"):
        seen.append((time.monotonic() - t0, status(objs)))
        time.sleep(0.5)
    st = seen[-1][1]
    # Before the deadline Seldon says Creating (never Failed) and gives no reason.
    assert all(s.get("state") in (None, "Creating") for t, s in seen if t < deadline - 1)
    assert st["state"] == "Failed" and seen[-1][0] >= deadline
    assert st["description"] == "Deployment is no longer progressing and not available."
    assert st["deploymentStatus"][corrupt] == {"replicas": 1}
    assert st["deploymentStatus"]["digits-v1-0-0-0-digits"] == {"replicas": 1, "availableReplicas": 1}
    assert "sha256" not in json.dumps(st).lower()
    obs = seldon.observe(objs.sdep("digits"))
    assert obs.is_ready("v1-0-0") and not obs.is_ready("v2-0-0-corrupt")
    assert "no longer progressing" in obs.failure("v2-0-0-corrupt") and obs.failure("v1-0-0") is None


def test_a_dead_backend_keeps_its_weight_and_answers_503(api, namespace, artifacts, stack) -> None:
    router, port, standin = stack
    objs = Objects(api, namespace)
    create_sd(objs, [predictor(artifacts, "1.0.0", 50), predictor(artifacts, "2.0.0", 50)])
    wait_for("Available", lambda: status(objs).get("state") == "Available", 120)
    standin.server(namespace, "digits", "v2-0-0").process.kill()
    st = wait_for("availableReplicas lowered", lambda: (s := status(objs)).get("deploymentStatus", {})
                  .get("digits-v2-0-0-0-digits") == {"replicas": 1} and s, 10)
    # Its rollout had completed: Kubernetes keeps it "progressing", so Seldon says Creating.
    assert st["state"] == "Creating" and not seldon.observe(objs.sdep("digits")).is_ready("v2-0-0")
    http = urllib3.PoolManager()
    url = f"http://127.0.0.1:{port}/seldon/{namespace}/digits/api/v1.0/predictions"
    body = json.dumps({"data": {"ndarray": [np.zeros(64).tolist()]}})
    codes = [http.request("POST", url, body=body, headers=JSON).status for _ in range(400)]
    print(f"after the kill: {codes.count(503)} of 400 requests answered 503")
    assert 150 <= codes.count(503) <= 250 and set(codes) == {200, 503}
    istio = metric_lines(http, port, "istio_requests_total{")
    dead = [s for s in istio if 'destination_service_name="digits-v2-0-0"' in s and 'response_code="503"' in s]
    assert dead and all('response_flags="U' in s for s in dead)
    assert sum(float(s.rsplit(" ", 1)[1]) for s in dead) == codes.count(503)
    # The executor never saw them.
    assert not [c for c in metric_lines(http, port, "seldon_api_executor_server_requests_seconds_count")
                if 'code="503"' in c]


def test_a_malformed_request_is_a_4xx_on_both_metrics(api, namespace, artifacts, stack) -> None:
    router, port, _ = stack
    objs = Objects(api, namespace)
    create_sd(objs, [predictor(artifacts, "1.0.0", 100)])
    wait_for("Available", lambda: status(objs).get("state") == "Available", 120)
    http = urllib3.PoolManager()
    url = f"http://127.0.0.1:{port}/seldon/{namespace}/digits/api/v1.0/predictions"
    r = http.request("POST", url, body=json.dumps({"data": {"ndarray": [[1, 2, 3]]}}), headers=JSON)
    assert 400 <= r.status < 500, (r.status, r.data)
    assert any(f'code="{r.status}"' in c for c in metric_lines(http, port, "seldon_api_executor_server_requests_seconds_count"))
    assert any(f'response_code="{r.status}"' in s and 'response_flags="-"' in s
               for s in metric_lines(http, port, "istio_requests_total{"))


def test_hashed_deployment_names_are_read_as_ready(api, namespace, artifacts, stack) -> None:
    objs = Objects(api, namespace)
    name = "customer-churn-prediction-model"
    create_sd(objs, [predictor(artifacts, "1.0.0", 100, model="customer-churn-classifier")], name=name)
    long = f"{name}-v1-0-0-0-customer-churn-classifier"
    assert len(long) > 63
    wait_for("Available", lambda: status(objs, name).get("state") == "Available", 120)
    assert set(status(objs, name)["deploymentStatus"]) == {"seldon-" + hashlib.md5(long.encode()).hexdigest()}
    assert seldon.observe(objs.sdep(name)).is_ready("v1-0-0")


def test_default_error_query_counts_what_envoy_answered_and_not_client_mistakes(api, namespace, artifacts, stack,
                                                                                 tmp_path) -> None:
    """The operator's default error query, on real Prometheus scraping the stand-in: a dead
    candidate's 503s (REST) and UNAVAILABLEs (gRPC) are counted once, 4xx are not errors."""
    router, port, standin = stack
    objs = Objects(api, namespace)
    create_sd(objs, [predictor(artifacts, "1.0.0", 50), predictor(artifacts, "2.0.0", 50)])
    wait_for("Available", lambda: status(objs).get("state") == "Available", 120)
    http = urllib3.PoolManager()
    url = f"http://127.0.0.1:{port}/seldon/{namespace}/digits/api/v1.0/predictions"
    good = json.dumps({"data": {"ndarray": [np.zeros(64).tolist()]}})
    bad = json.dumps({"data": {"ndarray": [[1, 2, 3]]}})
    grpc = {**JSON, PROTOCOL_HEADER: "grpc"}
    before = [http.request("POST", url, body=b, headers=JSON).status for b in [good] * 60 + [bad] * 40]
    standin.server(namespace, "digits", "v2-0-0").process.kill()
    wait_for("v2 unavailable", lambda: status(objs)["deploymentStatus"]["digits-v2-0-0-0-digits"] == {"replicas": 1}, 10)
    rest = [http.request("POST", url, body=good, headers=JSON).status for _ in range(100)]
    calls = [http.request("POST", url, body=good, headers=grpc).status for _ in range(100)]
    prom = prom_mod.start(tmp_path / "prometheus", "1s", [prom_mod.TargetGroup([f"127.0.0.1:{port}"], {"job": "router"})])
    try:
        prom.wait_for_scrape(f"127.0.0.1:{port}")
        time.sleep(1.5)

        def codes(pred: str) -> dict[str, int]:
            q = render(DEFAULT_ERRORS, {"namespace": namespace, "deployment": "digits", "predictor": pred, "window": "5m",
                                       "lookback": "5m"})
            return {r["metric"].get("code", ""): int(float(r["value"][1])) for r in prom.query(q)}

        dead, alive = codes("v2-0-0"), codes("v1-0-0")
    finally:
        prom.stop()
    print(f"error query by code: v2-0-0 {dead}, v1-0-0 {alive}")
    assert {c for c in alive if is_error_code(c)} == set()
    assert dead["503"] == rest.count(503) > 20  # REST: Envoy's 503, once (the executor never saw it)
    assert dead["Unavailable"] == calls.count(503) > 20  # gRPC: HTTP 200 + grpc-status 14 from Envoy
    assert sum(n for c, n in dead.items() if is_error_code(c)) == rest.count(503) + calls.count(503)
    client_mistakes = sum(alive.get(c, 0) + dead.get(c, 0) for c in ("400", "InvalidArgument"))
    assert client_mistakes == before.count(400) == 40 and not is_error_code("400")


# The rollback (a slow candidate with requests in flight) is the hard case; the promotion
# is also asserted end to end in test_scenarios (healthy: no failed request).
@pytest.mark.parametrize("removed", [pytest.param("stable", marks=pytest.mark.soak), "candidate"])
def test_a_removed_predictor_drains_before_its_server_stops(api, namespace, artifacts, stack, removed) -> None:
    """Promotion (the stable predictor leaves after 0/100) and rollback (the candidate, the
    slow one, leaves at once from 50/50) under load: as on Seldon, the VirtualService stops
    routing to it first, then requests already sent to it are answered, then it stops."""
    router, port, standin = stack
    objs = Objects(api, namespace)
    stable, candidate = predictor(artifacts, "1.0.0", 50), predictor(artifacts, "slow", 50)
    body = create_sd(objs, [stable, candidate])
    wait_for("Available", lambda: status(objs).get("state") == "Available", 120)
    http = urllib3.PoolManager(maxsize=16, retries=False)
    url = f"http://127.0.0.1:{port}/seldon/{namespace}/digits/api/v1.0/predictions"
    payload = json.dumps({"data": {"ndarray": [np.zeros(64).tolist()]}})
    codes: list[int] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            try:
                codes.append(http.request("POST", url, body=payload, headers=JSON).status)
            except urllib3.exceptions.HTTPError:
                codes.append(0)

    def replace(preds: list[dict]) -> None:
        sd = objs.sdep("digits")
        sd["spec"]["predictors"] = preds
        objs.custom.replace_namespaced_custom_object(*SDEP[:2], namespace, SDEP[2], "digits", sd)

    gone = "v1-0-0" if removed == "stable" else candidate.name
    keep = [p for p in body["spec"]["predictors"] if p["name"] != gone]
    with ThreadPoolExecutor(8) as pool:
        for _ in range(8):
            pool.submit(client)
        try:
            time.sleep(2)
            if removed == "stable":  # Promoting: 0/100 first, the old predictor removed once that is applied
                both = objs.sdep("digits")["spec"]["predictors"]
                replace([{**p, "traffic": 0 if p["name"] == gone else 100} for p in both])
                time.sleep(0.2)
            replace([{**p, "traffic": 100} for p in keep])
            wait_for("the removed server stopped", lambda: standin.server(namespace, "digits", gone) is None
                     and not getattr(standin, "draining", ()), 30, 0.05)
            time.sleep(1)
        finally:
            stop.set()
    print(f"{removed} removed under load: {len(codes)} requests, {sorted(set(codes))}, "
          f"{sum(c != 200 for c in codes)} failed")
    assert len(codes) > 30 and set(codes) == {200}
    assert router.routes(namespace, "digits") and [r.service for r in router.routes(namespace, "digits")] == \
        [f"digits-{keep[0]['name']}"]
