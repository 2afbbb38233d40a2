"""The chart on a real cluster (kind, in CI: hack/kind/e2e.sh): the operator is the pod
`helm install` started, Seldon Core and Prometheus are real. The rollout is the same
scenario test_rbac.py runs locally with SeldonPlayer; only the model (a real image and
artifact) and the timeouts differ. Skipped unless MODELDEPLOY_E2E_IN_CLUSTER=1, which
only e2e.sh sets: locally there is no kubelet to run the operator's pod."""

from __future__ import annotations

import json
import os
import time
import urllib.parse

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from sandbox.harness import MDEP, Objects, wait_for

from .scenarios import NAME, promote

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(os.environ.get("MODELDEPLOY_E2E_IN_CLUSTER") != "1",
                       reason="kind only (hack/kind/e2e.sh): needs the chart's operator pod and Seldon Core running"),
]

OPERATOR_NAMESPACE = "modeldeploy-system"
PROMETHEUS = ("monitoring", "kps-prometheus:9090")


def model(version: str) -> dict:
    # Artifacts trained by e2e.sh, on the hostPath volume of hack/kind/models.yaml.
    return {"name": "digits", "version": version, "uri": f"pvc://modeldeploy-models/{version}",
            "image": os.environ.get("MODELDEPLOY_E2E_MODEL_IMAGE", "modeldeploy/model-server:e2e")}


@pytest.fixture
def objs(api) -> Objects:
    objs = Objects(api, os.environ.get("MODELDEPLOY_E2E_NAMESPACE", "modeldeploy-e2e"))
    try:  # a re-run on the same cluster starts from nothing
        objs.custom.delete_namespaced_custom_object(*MDEP[:2], objs.namespace, MDEP[2], NAME)
        wait_for("the previous ModelDeployment gone", lambda: not _exists(objs), 120)
    except ApiException as e:
        if e.status != 404:
            raise
    return objs


def _exists(objs: Objects) -> bool:
    try:
        objs.mdep(NAME)
        return True
    except ApiException as e:
        if e.status == 404:
            return False
        raise


def prometheus_query(tools, cluster, promql: str) -> list[dict] | None:
    """An instant query through the API server's service proxy (no port-forward)."""
    ns, svc = PROMETHEUS
    path = f"/api/v1/namespaces/{ns}/services/{svc}/proxy/api/v1/query?query={urllib.parse.quote(promql)}"
    out = tools.kubectl("get", "--raw", path, kubeconfig=cluster.kubeconfig, check=False)
    return json.loads(out.stdout)["data"]["result"] if out.returncode == 0 else None


def test_operator_pod_runs_as_the_chart_says(api) -> None:
    pods = client.CoreV1Api(api).list_namespaced_pod(OPERATOR_NAMESPACE,
                                                    label_selector="app.kubernetes.io/name=modeldeploy").items
    (pod,) = pods
    assert pod.status.phase == "Running"
    (status,) = pod.status.container_statuses
    assert status.ready and status.restart_count == 0
    assert pod.spec.containers[0].security_context.read_only_root_filesystem is True


def test_in_cluster_operator_promotes_a_model_on_seldon_core(objs) -> None:
    promotion = promote(objs, [20, 50, 100], step_duration="20s", progress_deadline="5m", model=model, timeout=600)
    promotion.check()


def test_operator_metrics_reach_prometheus_through_the_service_monitor(tools, cluster) -> None:
    up = f'up{{namespace="{OPERATOR_NAMESPACE}", service=~".*modeldeploy.*"}} == 1'
    wait_for("Prometheus scraping the operator", lambda: prometheus_query(tools, cluster, up), 120, interval=5)
    time.sleep(10)  # a couple of scrape intervals after the rollout
    # honorLabels keeps the ModelDeployment's namespace, not the operator pod's.
    weights = prometheus_query(tools, cluster, f'modeldeploy_candidate_weight{{name="{NAME}"}}')
    assert weights and weights[0]["metric"]["namespace"] != OPERATOR_NAMESPACE, weights
