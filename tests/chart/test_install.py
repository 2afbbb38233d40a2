"""The chart against a real API server: both modes pass server-side validation (schemas,
admission, RBAC escalation checks), the operator's pod passes the restricted Pod Security
Standard, and `helm install` succeeds. On the local control plane no pod ever runs (no
kube-controller-manager or kubelet): what runs the operator is test_rbac.py."""

from __future__ import annotations

import json

import pytest
import yaml
from kubernetes import client

from .conftest import new_namespace
from .helmkube import REPO, find

pytestmark = pytest.mark.cluster


def dry_run(tools, kubeconfig, manifests: str) -> str:
    """Server-side apply, dry run: the API server validates and admits every object
    (including RBAC's no-escalation check on the roles) and stores nothing."""
    out = tools.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=modeldeploy-chart-test",
                        "--dry-run=server", "-f", "-", kubeconfig=kubeconfig, stdin=manifests)
    return out.stdout


@pytest.mark.parametrize("mode", ["clusterwide", "namespaced"])
def test_rendered_chart_passes_server_side_dry_run(tools, cluster, api, crds, mode) -> None:
    release_ns = new_namespace(api, "md-dry")
    args = ["template", "md", str(REPO), "--namespace", release_ns, "--include-crds",
            "--set", "prometheus.url=http://prometheus.monitoring:9090",
            "--set", "analysis.queries.errors=sum by (code) (x{p=\"{{predictor}}\"})",
            "--set", "dashboard.enabled=true"]
    if mode == "namespaced":
        watched = [new_namespace(api, "md-w"), new_namespace(api, "md-w")]
        args += ["--set", "watchNamespaces={" + ",".join(watched) + "}"]
    manifests = tools.helm(*args).stdout
    out = dry_run(tools, cluster.kubeconfig, manifests)
    kinds = {d["kind"] for d in yaml.safe_load_all(manifests) if d}
    expected = {"CustomResourceDefinition", "ServiceAccount", "ConfigMap", "Service", "Deployment"}
    expected |= {"ClusterRole", "ClusterRoleBinding"} if mode == "clusterwide" else {"Role", "RoleBinding"}
    assert kinds == expected
    assert out.count("(server dry run)") == len([d for d in yaml.safe_load_all(manifests) if d]), out


def test_operator_pod_is_admitted_under_the_restricted_pod_security_standard(tools, cluster, api) -> None:
    # PodSecurity admission judges Pods, not Deployments: submit the Deployment's pod
    # template as a Pod (dry run) in a namespace that enforces "restricted".
    ns = new_namespace(api, "md-psa", {"pod-security.kubernetes.io/enforce": "restricted",
                                       "pod-security.kubernetes.io/enforce-version": "latest"})
    (deploy,) = find(tools.template(namespace=ns), "Deployment")
    template = deploy["spec"]["template"]
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "operator", "namespace": ns, **template["metadata"]},
           "spec": {**template["spec"], "serviceAccountName": "default"}}
    dry_run(tools, cluster.kubeconfig, json.dumps(pod))
    # And the check is real: the same pod running as root is refused.
    pod["spec"]["securityContext"] = {**pod["spec"]["securityContext"], "runAsNonRoot": False, "runAsUser": 0}
    out = tools.kubectl("apply", "--server-side", "--dry-run=server", "-f", "-", kubeconfig=cluster.kubeconfig,
                        stdin=json.dumps(pod), check=False)
    assert out.returncode != 0 and 'violates PodSecurity "restricted:latest"' in out.stderr, out.stderr


def test_helm_install_creates_the_release_in_both_modes(tools, cluster, api, clusterwide, namespaced) -> None:
    for release in (clusterwide, namespaced):
        status = json.loads(tools.helm("status", release.name, "--namespace", release.namespace, "-o", "json",
                                       kubeconfig=cluster.kubeconfig).stdout)
        assert status["info"]["status"] == "deployed"
        deploy = client.AppsV1Api(api).read_namespaced_deployment(f"{release.name}-modeldeploy", release.namespace)
        # Stored as rendered; it never becomes available here (nothing runs pods).
        assert deploy.spec.template.spec.service_account_name == release.service_account
    notes = tools.helm("get", "notes", namespaced.name, "--namespace", namespaced.namespace,
                       kubeconfig=cluster.kubeconfig).stdout
    assert f"It watches ModelDeployments in: {namespaced.watched[0]}" in notes and "No prometheus.url" in notes
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.read_cluster_role_binding(f"{clusterwide.name}-modeldeploy")
    (watched,) = namespaced.watched
    binding = rbac.read_namespaced_role_binding(f"{namespaced.name}-modeldeploy", watched)
    assert binding.subjects[0].namespace == namespaced.namespace
    names = [r.metadata.name for r in rbac.list_cluster_role().items]
    assert f"{namespaced.name}-modeldeploy" not in names
    ext = client.ApiextensionsV1Api(api)
    assert ext.read_custom_resource_definition("modeldeployments.modeldeploy.io").spec.names.short_names == ["mdep"]
