"""A test helper that plays Seldon's controller: it writes SeldonDeployment status.

Seldon's Go controller cannot run here. This writes `status.deploymentStatus` the way
Seldon does (one entry per predictor Deployment, `<sdep>-<predictor>-0-<container>`),
marking predictors Available unless the test asked for them to fail or to stay unready.
"""

from __future__ import annotations

import threading
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from sandbox.harness import SDEP


def seldon_status(sd: dict[str, Any], unready: set[str], failed: dict[str, str]) -> dict[str, Any]:
    name = sd["metadata"]["name"]
    deployments = {}
    for p in sd["spec"]["predictors"]:
        container = p["componentSpecs"][0]["spec"]["containers"][0]["name"]
        version = p["labels"]["version"]
        key = f"{name}-{p['name']}-0-{container}"
        replicas = p.get("replicas", 1)
        if version in failed:
            deployments[key] = {"status": "Failed", "description": failed[version], "replicas": replicas, "availableReplicas": 0}
        elif version in unready:
            deployments[key] = {"status": "Creating", "replicas": replicas, "availableReplicas": 0}
        else:
            deployments[key] = {"status": "Available", "replicas": replicas, "availableReplicas": replicas}
    states = {d["status"] for d in deployments.values()}
    state = "Failed" if "Failed" in states else "Creating" if "Creating" in states else "Available"
    return {"state": state, "deploymentStatus": deployments, "description": "; ".join(failed.values())}


class SeldonPlayer:
    """Background thread: every SeldonDeployment in `namespace` gets a Seldon-like status."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.namespace = namespace
        self.unready: set[str] = set()
        self.failed: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SeldonPlayer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                items = self.custom.list_namespaced_custom_object(*SDEP[:2], self.namespace, SDEP[2])["items"]
                for sd in items:
                    status = seldon_status(sd, self.unready, self.failed)
                    old = (sd.get("status") or {}).get("deploymentStatus") or {}
                    if (sd.get("status") or {}).get("state") != status["state"] or old != status["deploymentStatus"]:
                        # A merge patch: removed predictors' entries must be deleted explicitly.
                        status["deploymentStatus"].update({k: None for k in old if k not in status["deploymentStatus"]})
                        self.custom.patch_namespaced_custom_object_status(
                            *SDEP[:2], self.namespace, SDEP[2], sd["metadata"]["name"], {"status": status})
            except ApiException:
                continue
