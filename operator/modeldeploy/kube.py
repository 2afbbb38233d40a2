"""Kubernetes I/O for the operator: write ModelDeployments, the router's objects and Events
(reads come from the watch, see handlers). Thin on purpose; every decision is made in
`rollout`. Every write returns the object as the API server stored it, so the caller can
act on its own write before the watch delivers it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from . import COMMAND_ANNOTATION, GROUP, PLURAL, VERSION
from .events import Recorder
from .routing import Resource


def api_client(pool: int | None = None) -> client.ApiClient:
    """In-cluster credentials when running in a pod, else KUBECONFIG / ~/.kube/config;
    `pool` connections (one per concurrent reconcile)."""
    conf = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=conf)
    except config.ConfigException:
        config.load_kube_config(client_configuration=conf)
    if pool:
        conf.connection_pool_maxsize = pool
    return client.ApiClient(conf)


class Kube:
    def __init__(self, api: client.ApiClient, instance: str = "modeldeploy") -> None:
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.events = Recorder(self.core, instance)

    def patch_status(self, mdep: Mapping[str, Any], status: Mapping[str, Any]) -> dict[str, Any]:
        """Merge-patch status, conditional on the resourceVersion we decided on (409 if the
        object changed since: the caller re-reads and decides again)."""
        meta = mdep["metadata"]
        body = {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": status}
        return self.custom.patch_namespaced_custom_object_status(GROUP, VERSION, meta["namespace"], PLURAL,
                                                                 meta["name"], body)

    def consume_command(self, mdep: Mapping[str, Any], command: str) -> dict[str, Any] | None:
        """Remove the one-shot command annotation, unless someone replaced it meanwhile."""
        meta = mdep["metadata"]
        path = "/metadata/annotations/" + COMMAND_ANNOTATION.replace("~", "~0").replace("/", "~1")
        patch = [{"op": "test", "path": path, "value": command}, {"op": "remove", "path": path}]
        try:
            # A JSON patch: its `test` op makes the removal conditional.
            return self.custom.patch_namespaced_custom_object(
                GROUP, VERSION, meta["namespace"], PLURAL, meta["name"], patch,
                _content_type="application/json-patch+json",
            )
        except ApiException as e:
            if e.status not in (404, 409, 422):  # gone, or a newer command: leave it be
                raise
            return None

    def apply_routing(self, resource: Resource, current: Mapping[str, Any] | None,
                      desired: dict[str, Any]) -> dict[str, Any]:
        """Create or replace the router's object (the SeldonDeployment)."""
        ns, name = desired["metadata"]["namespace"], desired["metadata"]["name"]
        gvp = (resource.group, resource.version, ns, resource.plural)
        if current is None:
            return self.custom.create_namespaced_custom_object(*gvp, desired)
        body = dict(desired)
        meta = dict(current["metadata"])
        meta.update(labels={**(meta.get("labels") or {}), **desired["metadata"]["labels"]},
                    ownerReferences=desired["metadata"]["ownerReferences"])
        body["metadata"] = meta  # keeps resourceVersion: a concurrent edit gives a 409
        return self.custom.replace_namespaced_custom_object(*gvp, name, body)

    def post_event(self, mdep: Mapping[str, Any], type_: str, reason: str, message: str) -> int:
        """Post an event; a repeat of the same type, reason and message counts up (see events)."""
        return self.events.post(mdep, type_, reason, message)

    def post_history(self, mdep: Mapping[str, Any], entry: Mapping[str, Any]) -> bool:
        """Post the event of a status.history entry, once (False: it already exists)."""
        return self.events.post_history(mdep, entry)
