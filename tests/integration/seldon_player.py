"""A test helper that plays Seldon's controller: it writes SeldonDeployment status.

Seldon's Go controller cannot run here. This writes only what Seldon Core 1.17 writes:
`status.deploymentStatus[<Deployment name>]` with `replicas` and `availableReplicas`
(Go's omitempty drops zeros), `status.replicas` of the first Deployment, and `state`
by Seldon's rule: Available when every Deployment is available, Failed (with Seldon's
one fixed description, naming neither predictor nor reason) when one is unavailable and
no longer progressing, else Creating. Deployment names follow Seldon's rule, hashed form
included; they are computed here independently of `modeldeploy.seldon` so that a naming
bug in the operator shows up as a predictor that never becomes ready.

A test says which versions stay unready (`unready`, still progressing) and which are
stuck past their progress deadline (`stuck`).
"""

from __future__ import annotations

import hashlib
import threading
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from sandbox.harness import SDEP

NOT_PROGRESSING = "Deployment is no longer progressing and not available."


def deployment_name(sdep: str, predictor: dict[str, Any], index: int) -> str:
    spec = predictor["componentSpecs"][index]
    name = f"{sdep}-{predictor['name']}-{index}-" + "-".join(c["name"] for c in spec["spec"]["containers"])
    return name if len(name) <= 63 else "seldon-" + hashlib.md5(name.encode()).hexdigest()  # noqa: S324


def _entry(replicas: int, available: int) -> dict[str, int]:
    return {k: v for k, v in (("replicas", replicas), ("availableReplicas", available)) if v}


def seldon_status(sd: dict[str, Any], unready: set[str], stuck: set[str]) -> dict[str, Any]:
    name = sd["metadata"]["name"]
    deployments: dict[str, dict[str, int]] = {}
    ready, progressing = True, True
    for p in sd["spec"]["predictors"]:
        version = p["labels"]["version"]
        replicas = p.get("replicas", 1)
        for i in range(len(p["componentSpecs"])):
            down = version in unready or version in stuck
            deployments[deployment_name(name, p, i)] = _entry(replicas, 0 if down else replicas)
            ready = ready and not down
            progressing = progressing and version not in stuck
    state = "Available" if ready else "Failed" if not progressing else "Creating"
    first = next(iter(deployments.values()), {})
    status: dict[str, Any] = {"state": state, "deploymentStatus": deployments,
                              "description": NOT_PROGRESSING if state == "Failed" else ""}
    if first.get("replicas"):
        status["replicas"] = first["replicas"]
    return status


class SeldonPlayer:
    """Background thread: every SeldonDeployment in `namespace` gets a Seldon-like status."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.namespace = namespace
        self.unready: set[str] = set()
        self.stuck: set[str] = set()
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
                    status = seldon_status(sd, self.unready, self.stuck)
                    old = sd.get("status") or {}
                    if any(old.get(k) != status.get(k) for k in ("state", "deploymentStatus", "description")):
                        # A merge patch: removed entries and fields must be deleted explicitly.
                        status["deploymentStatus"] = {
                            **{k: None for k in old.get("deploymentStatus") or {}},
                            **{k: {**{f: None for f in (old.get("deploymentStatus") or {}).get(k) or {}}, **v}
                               for k, v in status["deploymentStatus"].items()}}
                        self.custom.patch_namespaced_custom_object_status(
                            *SDEP[:2], self.namespace, SDEP[2], sd["metadata"]["name"], {"status": status})
            except ApiException:
                continue
