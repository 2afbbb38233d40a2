"""The local control plane is a real API server: it stores objects and enforces RBAC."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from sandbox import controlplane
from sandbox.processes import StartupError


def test_namespace_and_configmap_round_trip(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_config_map(
        namespace,
        client.V1ConfigMap(metadata=client.V1ObjectMeta(name="settings"), data={"model": "digits", "version": "1.0.0"}),
    )
    assert core.read_namespace(namespace).status.phase == "Active"
    assert core.read_namespaced_config_map("settings", namespace).data == {"model": "digits", "version": "1.0.0"}


def test_rbac_denies_an_unprivileged_user(cluster, namespace: str) -> None:
    nobody = client.CoreV1Api(cluster.api(user="nobody"))
    with pytest.raises(ApiException) as err:
        nobody.list_namespaced_config_map(namespace)
    assert err.value.status == 403
    message = json.loads(err.value.body)["message"]
    assert 'User "nobody" cannot list resource "configmaps"' in message


def test_rbac_grant_lets_the_user_in(cluster, api: client.ApiClient, namespace: str) -> None:
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role(namespace, client.V1Role(
        metadata=client.V1ObjectMeta(name="cm-reader"),
        rules=[client.V1PolicyRule(api_groups=[""], resources=["configmaps"], verbs=["list"])],
    ))
    rbac.create_namespaced_role_binding(namespace, client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="reader"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role", name="cm-reader"),
        subjects=[client.RbacV1Subject(kind="User", name="reader", api_group="rbac.authorization.k8s.io")],
    ))
    reader = client.CoreV1Api(cluster.api(user="reader"))
    assert reader.list_namespaced_config_map(namespace).items is not None
    with pytest.raises(ApiException) as err:
        reader.list_namespaced_secret(namespace)
    assert err.value.status == 403


def test_service_account_tokens_are_issued(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    core.create_namespaced_service_account(namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="bot")))
    tr = core.create_namespaced_service_account_token(
        "bot", namespace, client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600))
    )
    assert tr.status.token.count(".") == 2  # a signed JWT


def test_start_failure_names_binary_port_and_log(tmp_path) -> None:
    fake = tmp_path / "bin"
    fake.mkdir()
    for name in ("etcd", "kube-apiserver"):
        (fake / name).write_text("#!/bin/sh\necho 'refusing to start: simulated failure' >&2\nexit 3\n")
        (fake / name).chmod(0o755)
    with pytest.raises(StartupError) as err:
        controlplane.start(bin_dir=fake)
    message = str(err.value)
    assert "etcd" in message and "on port" in message
    assert "exited with code 3" in message
    assert "refusing to start: simulated failure" in message


def test_foreground_command_stops_cleanly_on_ctrl_c() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sandbox.controlplane"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        lines = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            lines.append(line)
            if line.startswith("export KUBECONFIG="):
                break
        assert any(l.startswith("export KUBECONFIG=") for l in lines), lines
        children = subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True, text=True).stdout.split()
        assert len(children) == 2  # etcd and kube-apiserver
        proc.send_signal(signal.SIGINT)
        assert proc.wait(30) == 0
        assert "control plane stopped" in proc.stdout.read()
        for pid in children:
            assert subprocess.run(["kill", "-0", pid], capture_output=True).returncode != 0, f"{pid} still alive"
    finally:
        proc.kill()
