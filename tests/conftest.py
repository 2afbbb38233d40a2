"""Fixtures shared by every stratum of the operator's tests.

`cluster` is a real kube-apiserver + etcd started once per session (see
sandbox.controlplane), or an existing cluster when MODELDEPLOY_TEST_KUBECONFIG names its
kubeconfig. Nothing here mocks the API server.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from kubernetes import client, config

from sandbox import controlplane


@dataclass
class Cluster:
    kubeconfig: Path
    plane: controlplane.ControlPlane | None = None

    def api(self, user: str | None = None, groups: tuple[str, ...] = ()) -> client.ApiClient:
        """An API client as admin, or as `user` (a client certificate locally; on an
        existing cluster, admin impersonating the user)."""
        if user is None:
            return config.new_client_from_config(config_file=str(self.kubeconfig))
        if self.plane is not None:
            return config.new_client_from_config(config_file=str(self.plane.user_kubeconfig(user, groups)))
        api = config.new_client_from_config(config_file=str(self.kubeconfig))
        api.set_default_header("Impersonate-User", user)
        for g in groups:
            api.set_default_header("Impersonate-Group", g)
        return api


@pytest.fixture(scope="session")
def cluster() -> Iterator[Cluster]:
    existing = os.environ.get("MODELDEPLOY_TEST_KUBECONFIG")
    if existing:
        yield Cluster(Path(existing))
        return
    plane = controlplane.start()
    try:
        yield Cluster(plane.kubeconfig, plane)
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def api(cluster: Cluster) -> client.ApiClient:
    return cluster.api()


@pytest.fixture
def namespace(api: client.ApiClient) -> str:
    """A fresh namespace per test. Without kube-controller-manager namespaces never
    finish terminating, so they are left for the control plane's teardown."""
    name = f"t-{uuid.uuid4().hex[:8]}"
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


REPO = Path(__file__).resolve().parents[1]
CRD_FILES = [REPO / "crds" / "modeldeploy.io_modeldeployments.yaml",
             REPO / "experiments" / "sandbox" / "crds" / "seldondeployments.yaml"]


@pytest.fixture(scope="session")
def crds(api: client.ApiClient) -> None:
    """Our CRD and the test-only SeldonDeployment CRD, installed and Established."""
    from sandbox.kubeutil import install_crds

    files = CRD_FILES
    if os.environ.get("MODELDEPLOY_TEST_KUBECONFIG"):
        # A real cluster has Seldon's own CRD: never replace it with the test stand-in.
        try:
            client.ApiextensionsV1Api(api).read_custom_resource_definition("seldondeployments.machinelearning.seldon.io")
            files = CRD_FILES[:1]
        except client.exceptions.ApiException as e:
            if e.status != 404:
                raise
    install_crds(api, files)
