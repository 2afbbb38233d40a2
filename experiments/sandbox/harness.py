"""Running the operator exactly as shipped, and reading what it did.

Shared by the integration tests, the end-to-end scenarios and the demo: the operator is a
`python -m modeldeploy` subprocess with a kubeconfig, never an import.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client

from .processes import ManagedProcess

MDEP = ("modeldeploy.io", "v1alpha1", "modeldeployments")
SDEP = ("machinelearning.seldon.io", "v1", "seldondeployments")


def operator_process(kubeconfig: Path, log_path: Path, namespaces: list[str] | None = None,
                     env: dict[str, str] | None = None, tick: float = 0.2) -> ManagedProcess:
    argv = [sys.executable, "-m", "modeldeploy", "--liveness", "off"]
    for ns in namespaces or []:
        argv += ["--namespace", ns]
    full_env = {**os.environ, "KUBECONFIG": str(kubeconfig), "MODELDEPLOY_TICK_SECONDS": str(tick), **(env or {})}
    return ManagedProcess("operator", argv, log_path, env=full_env)


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 60, interval: float = 0.2) -> Any:
    """Poll until `probe` returns something truthy; fail with `what` and its last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}; last saw {last!r}")


class Objects:
    """Reads and writes of ModelDeployments and SeldonDeployments in one namespace."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.namespace = namespace

    def apply_mdep(self, body: dict[str, Any]) -> dict[str, Any]:
        name = body["metadata"]["name"]
        try:
            self.custom.get_namespaced_custom_object(*MDEP[:2], self.namespace, MDEP[2], name)
        except client.exceptions.ApiException as e:
            if e.status != 404:
                raise
            return self.custom.create_namespaced_custom_object(*MDEP[:2], self.namespace, MDEP[2], body)
        return self.custom.patch_namespaced_custom_object(*MDEP[:2], self.namespace, MDEP[2], name,
                                                          {"spec": body["spec"], "metadata": body.get("metadata", {})})

    def patch_mdep(self, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self.custom.patch_namespaced_custom_object(*MDEP[:2], self.namespace, MDEP[2], name, patch)

    def mdep(self, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(*MDEP[:2], self.namespace, MDEP[2], name)

    def delete_mdep(self, name: str) -> None:
        self._delete(MDEP, name)

    def delete_sdep(self, name: str) -> None:
        self._delete(SDEP, name)

    def _delete(self, kind: tuple[str, str, str], name: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(*kind[:2], self.namespace, kind[2], name)
        except client.exceptions.ApiException as e:
            if e.status != 404:
                raise

    def status(self, name: str) -> dict[str, Any]:
        return self.mdep(name).get("status") or {}

    def sdep(self, name: str) -> dict[str, Any] | None:
        try:
            return self.custom.get_namespaced_custom_object(*SDEP[:2], self.namespace, SDEP[2], name)
        except client.exceptions.ApiException as e:
            if e.status == 404:
                return None
            raise

    def traffic(self, name: str) -> dict[str, int]:
        """version -> traffic of the SeldonDeployment's predictors (-1 for a shadow)."""
        sd = self.sdep(name) or {}
        return {p["labels"]["version"]: (-1 if p.get("shadow") else p.get("traffic", 0))
                for p in (sd.get("spec") or {}).get("predictors", [])}

    def events_until(self, name: str, reason: str, timeout: float = 15) -> list[tuple[str, str, str]]:
        """The events once one with `reason` is there: the operator posts events right
        after it writes status, so a reader that saw the status must not race them."""
        return wait_for(f"an event {reason} about {name}",
                        lambda: (ev := self.events(name)) and any(r == reason for _, r, _ in ev) and ev, timeout)

    def events(self, name: str) -> list[tuple[str, str, str]]:
        """(type, reason, message) of the events about `name`, oldest first."""
        items = self.core.list_namespaced_event(self.namespace, field_selector=f"involvedObject.name={name}").items
        items.sort(key=lambda e: e.event_time or e.first_timestamp or e.metadata.creation_timestamp)
        return [(e.type, e.reason, e.message) for e in items if e.source and e.source.component == "modeldeploy"]
