"""Kubernetes I/O for the operator: read and write ModelDeployments, SeldonDeployments
and Events. Thin on purpose; every decision is made in `rollout`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from . import GROUP, PLURAL, VERSION, seldon

COMMAND_ANNOTATION = f"{GROUP}/command"
_EVENT_MESSAGE_LIMIT = 1000


def api_client() -> client.ApiClient:
    """In-cluster credentials when running in a pod, else KUBECONFIG / ~/.kube/config."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


class Kube:
    def __init__(self, api: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)

    def get_mdep(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(GROUP, VERSION, PLURAL, namespace, name)

    def get_sdep(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self._get(seldon.GROUP, seldon.VERSION, seldon.PLURAL, namespace, name)

    def _get(self, group: str, version: str, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.custom.get_namespaced_custom_object(group, version, namespace, plural, name)
        except ApiException as e:
            if e.status == 404:
                return None
            raise

    def patch_status(self, mdep: Mapping[str, Any], status: Mapping[str, Any]) -> None:
        """Merge-patch status, conditional on the resourceVersion we decided on (409 if the
        object changed since: the caller re-reads and decides again)."""
        meta = mdep["metadata"]
        body = {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": status}
        self.custom.patch_namespaced_custom_object_status(GROUP, VERSION, meta["namespace"], PLURAL, meta["name"], body)

    def consume_command(self, mdep: Mapping[str, Any], command: str) -> None:
        """Remove the one-shot command annotation, unless someone replaced it meanwhile."""
        meta = mdep["metadata"]
        path = "/metadata/annotations/" + COMMAND_ANNOTATION.replace("~", "~0").replace("/", "~1")
        patch = [{"op": "test", "path": path, "value": command}, {"op": "remove", "path": path}]
        try:
            # A JSON patch: its `test` op makes the removal conditional.
            self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, meta["namespace"], PLURAL, meta["name"], patch,
                _content_type="application/json-patch+json",
            )
        except ApiException as e:
            if e.status not in (404, 409, 422):  # gone, or a newer command: leave it be
                raise

    def apply_sdep(self, current: Mapping[str, Any] | None, desired: dict[str, Any]) -> None:
        ns, name = desired["metadata"]["namespace"], desired["metadata"]["name"]
        if current is None:
            self.custom.create_namespaced_custom_object(seldon.GROUP, seldon.VERSION, ns, seldon.PLURAL, desired)
            return
        body = dict(desired)
        meta = dict(current["metadata"])
        meta.update(labels={**(meta.get("labels") or {}), **desired["metadata"]["labels"]},
                    ownerReferences=desired["metadata"]["ownerReferences"])
        body["metadata"] = meta  # keeps resourceVersion: a concurrent edit gives a 409
        self.custom.replace_namespaced_custom_object(seldon.GROUP, seldon.VERSION, ns, seldon.PLURAL, name, body)

    def post_event(self, mdep: Mapping[str, Any], type_: str, reason: str, message: str) -> None:
        meta = mdep["metadata"]
        now = dt.datetime.now(dt.timezone.utc)
        event = client.CoreV1Event(
            metadata=client.V1ObjectMeta(generate_name=f"{meta['name']}.", namespace=meta["namespace"]),
            involved_object=client.V1ObjectReference(
                api_version=mdep["apiVersion"], kind=mdep["kind"], name=meta["name"],
                namespace=meta["namespace"], uid=meta["uid"], resource_version=meta.get("resourceVersion"),
            ),
            reason=reason, message=message[:_EVENT_MESSAGE_LIMIT], type=type_,
            source=client.V1EventSource(component="modeldeploy"),
            # eventTime has microseconds, so readers can order events of the same second.
            first_timestamp=now, last_timestamp=now, count=1, event_time=now, action=reason,
            reporting_component="modeldeploy.io/operator", reporting_instance="modeldeploy",
        )
        self.core.create_namespaced_event(meta["namespace"], event)
