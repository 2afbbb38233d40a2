"""Fixtures of the chart tests: the tools, fresh namespaces, and Helm releases of the
chart installed into the test cluster (the local control plane, or an existing cluster).

On the local control plane no pod ever runs (no kube-controller-manager, no kubelet):
an install creates the Deployment, but nothing acts on it. The operator is therefore
run as a subprocess with the chart's service-account credentials instead.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client

from .helmkube import REPO, Tools, service_account_kubeconfig


@pytest.fixture(scope="session")
def tools(tmp_path_factory) -> Tools:
    return Tools(tmp_path_factory.mktemp("tools-home"))


def new_namespace(api: client.ApiClient, prefix: str, labels: dict[str, str] | None = None) -> str:
    """A fresh namespace (never deleted: without kube-controller-manager it would never
    finish terminating; the control plane's teardown removes everything)."""
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels)))
    return name


@dataclass
class Release:
    name: str
    namespace: str  # where the operator's Deployment and ServiceAccount live
    watched: list[str]  # empty: the whole cluster
    kubeconfig: Path  # the admin's
    tools: Tools

    @property
    def service_account(self) -> str:
        return self.name if "modeldeploy" in self.name else f"{self.name}-modeldeploy"

    def operator_kubeconfig(self, api: client.ApiClient, path: Path) -> Path:
        return service_account_kubeconfig(api, self.kubeconfig, self.namespace, self.service_account, path)

    def uninstall(self) -> None:
        self.tools.helm("uninstall", self.name, "--namespace", self.namespace, kubeconfig=self.kubeconfig, check=False)


def install(tools: Tools, api: client.ApiClient, kubeconfig: Path, watched: list[str], *extra: str) -> Release:
    """`helm install` the chart from the repository root, as a platform engineer would.
    No --wait: the Deployment's pod never runs on the local control plane."""
    namespace = new_namespace(api, "md-system")
    release = Release(f"md{uuid.uuid4().hex[:6]}", namespace, watched, kubeconfig, tools)
    args = ["install", release.name, str(REPO), "--namespace", namespace]
    for i, ns in enumerate(watched):
        args += ["--set", f"watchNamespaces[{i}]={ns}"]
    tools.helm(*args, *extra, kubeconfig=kubeconfig)
    return release


@pytest.fixture(scope="module")
def clusterwide(tools, cluster, api, crds) -> Iterator[Release]:
    release = install(tools, api, cluster.kubeconfig, [])
    yield release
    # Cluster-scoped RBAC would outlive the test otherwise (namespaced objects go with
    # the control plane; on an existing cluster this keeps it clean).
    release.uninstall()


@pytest.fixture(scope="module")
def namespaced(tools, cluster, api, crds) -> Iterator[Release]:
    watched = new_namespace(api, "md-watched")
    release = install(tools, api, cluster.kubeconfig, [watched])
    yield release
    release.uninstall()
