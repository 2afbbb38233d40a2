"""The Seldon stand-in itself: real model servers per predictor, a weighted router, and
SeldonDeployment status the way Seldon writes it."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import urllib3
from sklearn.datasets import load_digits

from modeldeploy import seldon
from modeldeploy.spec import ModelSpec
from sandbox.harness import SDEP, Objects, wait_for
from sandbox.processes import free_port
from sandbox.router import PREDICTOR_HEADER, Router
from sandbox.seldon_standin import SeldonStandIn
from sandbox import artifacts as art

OWNER = {"apiVersion": "modeldeploy.io/v1alpha1", "kind": "ModelDeployment",
         "metadata": {"name": "digits", "uid": "00000000-0000-0000-0000-000000000000"}}


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


def predictor(artifacts, name: str, traffic: int, shadow: bool = False) -> seldon.Predictor:
    version = art.card_version(artifacts, name)
    model = ModelSpec(name="digits", version=version, uri=f"file://{artifacts / name}")
    return seldon.Predictor(seldon.predictor_name(version), version, model, traffic, shadow)


def create_sd(objs: Objects, preds) -> None:
    body = seldon.render("digits", objs.namespace, OWNER, list(preds))
    body["metadata"].pop("ownerReferences")  # the owner is fictional here
    objs.custom.create_namespaced_custom_object(*SDEP[:2], objs.namespace, SDEP[2], body)


def test_router_splits_10000_requests_by_traffic(api, namespace, artifacts, stack) -> None:
    router, port, _ = stack
    objs = Objects(api, namespace)
    create_sd(objs, [predictor(artifacts, "1.0.0", 70), predictor(artifacts, "2.0.0", 30)])
    sd = wait_for("Available", lambda: (objs.sdep("digits").get("status") or {}).get("state") == "Available", 120)
    status = objs.sdep("digits")["status"]
    assert set(status["deploymentStatus"]) == {"digits-v1-0-0-0-digits", "digits-v2-0-0-0-digits"}
    assert all(d["availableReplicas"] == 1 for d in status["deploymentStatus"].values())

    x = load_digits().data
    http = urllib3.PoolManager(maxsize=8)
    url = f"http://127.0.0.1:{port}/seldon/{namespace}/digits/api/v1.0/predictions"

    def one(i: int) -> str:
        r = http.request("POST", url, body=json.dumps({"data": {"ndarray": [x[i % len(x)].tolist()]}}),
                         headers={"Content-Type": "application/json"})
        assert r.status == 200, r.data
        return r.headers[PREDICTOR_HEADER]

    with ThreadPoolExecutor(8) as pool:
        served = list(pool.map(one, range(10_000)))
    share = served.count("v2-0-0") / len(served) * 100
    print(f"observed split over 10,000 requests: {100 - share:.2f}/{share:.2f} (wanted 70/30)")
    assert abs(share - 30) <= 2
    stats = json.loads(http.request("GET", f"http://127.0.0.1:{port}/stats").data)
    assert stats["digits/v1-0-0"]["served"] + stats["digits/v2-0-0"]["served"] == 10_000
    metrics = http.request("GET", f"http://127.0.0.1:{port}/metrics").data.decode()
    assert ('seldon_api_executor_server_requests_seconds_count{code="200",deployment_name="digits",method="post",'
            f'namespace="{namespace}",predictor_name="v2-0-0",predictor_version="2.0.0",service="predictions"}}') in metrics


def test_shadow_is_mirrored_and_never_answers_users(api, namespace, artifacts, stack) -> None:
    router, port, _ = stack
    objs = Objects(api, namespace)
    create_sd(objs, [predictor(artifacts, "1.0.0", 100), predictor(artifacts, "skewed", 100, shadow=True)])
    wait_for("Available", lambda: (objs.sdep("digits").get("status") or {}).get("state") == "Available", 120)
    http = urllib3.PoolManager()
    url = f"http://127.0.0.1:{port}/seldon/{namespace}/digits/api/v1.0/predictions"
    body = json.dumps({"data": {"ndarray": [np.zeros(64).tolist()]}})
    served = {http.request("POST", url, body=body, headers={"Content-Type": "application/json"}).headers[PREDICTOR_HEADER]
              for _ in range(50)}
    assert served == {"v1-0-0"}
    stats = wait_for("mirrored", lambda: (s := json.loads(http.request("GET", f"http://127.0.0.1:{port}/stats").data))
                     .get("digits/v2-0-0-skewed", {}).get("mirrored", 0) >= 50 and s, 10)
    assert "served" not in stats["digits/v2-0-0-skewed"]


def test_corrupt_artifact_is_failed_with_the_servers_reason(api, namespace, artifacts, stack) -> None:
    objs = Objects(api, namespace)
    create_sd(objs, [predictor(artifacts, "1.0.0", 100), predictor(artifacts, "corrupt", 0)])
    st = wait_for("corrupt Failed and 1.0.0 Available", lambda: (s := objs.sdep("digits").get("status") or {})
                  .get("deploymentStatus", {}).get("digits-v1-0-0-0-digits", {}).get("status") == "Available"
                  and s.get("state") == "Failed" and s, 120)
    failed = st["deploymentStatus"]["digits-v2-0-0-corrupt-0-digits"]
    assert failed["status"] == "Failed" and "sha256" in failed["description"].lower()
    assert st["deploymentStatus"]["digits-v1-0-0-0-digits"]["status"] == "Available"
