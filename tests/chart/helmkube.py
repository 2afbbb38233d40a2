"""helm and kubectl as subprocesses, and kubeconfigs for the chart's service account.

The chart is tested with the real tools a platform engineer uses: helm and kubectl must
be on PATH (the Makefile puts hack/setup.sh's tools directory there). When they are
missing the tests fail and say how to get them; they never skip.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

REPO = Path(__file__).resolve().parents[2]


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not on PATH: run `make test` (hack/setup.sh tools puts helm and kubectl in "
                    f"$MODELDEPLOY_CACHE/bin/tools-*) or add a {name} binary to PATH", pytrace=False)
    return path


class Tools:
    """helm and kubectl with their caches and config in a private directory, so tests
    neither read nor write the user's ~/.config/helm or ~/.kube."""

    def __init__(self, home: Path) -> None:
        self.helm_bin, self.kubectl_bin = tool("helm"), tool("kubectl")
        home.mkdir(parents=True, exist_ok=True)
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(home),
            "HELM_CACHE_HOME": str(home / "helm-cache"),
            "HELM_CONFIG_HOME": str(home / "helm-config"),
            "HELM_DATA_HOME": str(home / "helm-data"),
            "KUBECACHEDIR": str(home / "kube-cache"),
        }

    def run(self, argv: list[str], kubeconfig: Path | None = None, stdin: str | None = None,
            check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = dict(self.env)
        if kubeconfig is not None:
            env["KUBECONFIG"] = str(kubeconfig)
        out = subprocess.run(argv, input=stdin, capture_output=True, text=True, env=env, cwd=REPO, timeout=timeout)
        if check and out.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {out.returncode}\n--- stdout\n{out.stdout[-3000:]}"
                                 f"\n--- stderr\n{out.stderr[-3000:]}")
        return out

    def helm(self, *args: str, kubeconfig: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run([self.helm_bin, *args], kubeconfig, check=check)

    def kubectl(self, *args: str, kubeconfig: Path, stdin: str | None = None,
                check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run([self.kubectl_bin, *args], kubeconfig, stdin=stdin, check=check)

    def template(self, *args: str, namespace: str = "modeldeploy-system") -> list[dict[str, Any]]:
        """The chart rendered with `helm template` (values as --set/-f arguments)."""
        out = self.helm("template", "modeldeploy", str(REPO), "--namespace", namespace, *args).stdout
        return [d for d in yaml.safe_load_all(out) if d]


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]


def service_account_kubeconfig(api: client.ApiClient, admin_kubeconfig: Path, namespace: str, account: str,
                               path: Path, seconds: int = 3600) -> Path:
    """A kubeconfig that authenticates as the service account, with a bearer token from
    the TokenRequest API (what the kubelet mounts into the operator's pod), and the
    admin kubeconfig's server and CA."""
    request = client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=seconds))
    token = client.CoreV1Api(api).create_namespaced_service_account_token(account, namespace, request).status.token
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    context = next(c["context"] for c in admin["contexts"] if c["name"] == admin["current-context"])
    cluster = dict(next(c["cluster"] for c in admin["clusters"] if c["name"] == context["cluster"]))
    if "certificate-authority" in cluster:  # a path: inline it, the new file may live elsewhere
        ca = Path(cluster.pop("certificate-authority")).read_bytes()
        cluster["certificate-authority-data"] = base64.b64encode(ca).decode()
    user = f"system:serviceaccount:{namespace}:{account}"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "cluster", "cluster": cluster}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "cluster", "user": user}}],
        "current-context": "sa",
    }))
    path.chmod(0o600)
    return path
