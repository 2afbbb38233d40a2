"""The API calls of `kubectl modeldeploy`: the kubeconfig, the few reads and writes it
makes, and API errors turned into messages that say what to do, with exit codes."""

from __future__ import annotations

import builtins
import json
import os
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from . import GROUP, PLURAL, VERSION
from .cli_history import EventRow

if TYPE_CHECKING:
    import argparse

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_FORBIDDEN, EXIT_STATE, EXIT_NOT_PROMOTED = 0, 1, 2, 3, 4, 5, 6
EXIT_TIMEOUT, EXIT_PAUSED = 7, 8
EVENT_SOURCE = "modeldeploy"
_SA_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class CliError(Exception):
    def __init__(self, message: str, code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code


def now_utc() -> datetime:
    return datetime.now(timezone.utc)


# -- the API -------------------------------------------------------------------------------
class Kubectl:
    """The few API calls the plugin makes, with API errors turned into CliErrors."""

    def __init__(self, api: client.ApiClient, namespace: str, user: str | None = None) -> None:
        self.api = api
        self.custom = client.CustomObjectsApi(api)
        self.core = client.CoreV1Api(api)
        self.namespace = namespace
        self.user = user

    def error(self, e: ApiException, what: str, name: str | None = None, namespace: str | None = None) -> CliError:
        ns = namespace or self.namespace
        try:
            body = json.loads(e.body or "{}")
        except (TypeError, ValueError):
            body = {}
        message = body.get("message") if isinstance(body, dict) else None
        message = message or (e.reason or "").strip() or f"HTTP {e.status}"
        if e.status == 404:
            details = body.get("details") or {} if isinstance(body, dict) else {}
            if name and details.get("name") == name:
                return CliError(f'ModelDeployment "{name}" not found in namespace "{ns}" '
                                f"(list them with: kubectl modeldeploy list -n {ns})", EXIT_NOT_FOUND)
            return CliError(f"the API server does not serve {PLURAL}.{GROUP}/{VERSION}: is modeldeploy's CRD "
                            f"installed? ({message})", EXIT_NOT_FOUND)
        if e.status == 403:
            return CliError(f"forbidden: {message}\nyou need permission to {what}; ask for it, or use --context/--as",
                            EXIT_FORBIDDEN)
        if e.status == 401:
            return CliError(f"unauthorized: the API server did not accept your credentials ({message}); "
                            "log in again or check --kubeconfig/--context", EXIT_FORBIDDEN)
        return CliError(f"the API server refused to {what}: {e.status} {message}")

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, name: str | None = None,
              namespace: str | None = None, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ApiException as e:
            raise self.error(e, what, name, namespace) from None
        except HTTPError as e:
            host = self.api.configuration.host
            raise CliError(f"cannot reach the API server at {host}: {e}") from None

    def get(self, name: str) -> dict[str, Any]:
        return self._call(f'get {PLURAL}.{GROUP} "{name}" in namespace "{self.namespace}"',
                          self.custom.get_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL, name,
                          name=name)

    def list(self, all_namespaces: bool) -> list[dict[str, Any]]:
        if all_namespaces:
            out = self._call(f"list {PLURAL}.{GROUP} at the cluster scope",
                             self.custom.list_cluster_custom_object, GROUP, VERSION, PLURAL)
        else:
            out = self._call(f'list {PLURAL}.{GROUP} in namespace "{self.namespace}"',
                             self.custom.list_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL)
        return list(out.get("items") or [])

    def patch(self, name: str, body: Mapping[str, Any], what: str) -> dict[str, Any]:
        return self._call(f'patch {PLURAL}.{GROUP} "{name}" in namespace "{self.namespace}" ({what})',
                          self.custom.patch_namespaced_custom_object, GROUP, VERSION, self.namespace, PLURAL, name,
                          body, name=name)

    def events(self, mdep: Mapping[str, Any]) -> tuple[builtins.list[EventRow], str | None]:
        """The operator's events about this object (not a namesake deleted earlier), and a
        note instead when they cannot be read (events are optional to the view)."""
        meta = mdep["metadata"]
        try:
            items = self.core.list_namespaced_event(
                meta["namespace"], field_selector=f"involvedObject.uid={meta['uid']}").items
        except ApiException as e:
            return [], str(self.error(e, f'list events in namespace "{meta["namespace"]}"')).splitlines()[0]
        except HTTPError as e:
            return [], f"events unavailable: {e}"
        return event_rows(items), None


def event_rows(items: list[Any]) -> list[EventRow]:
    rows = []
    for e in items:
        source = getattr(e.source, "component", None) if e.source else None
        if source != EVENT_SOURCE and getattr(e, "reporting_component", None) != "modeldeploy.io/operator":
            continue
        t = e.event_time or e.last_timestamp or e.first_timestamp or e.metadata.creation_timestamp
        if t is not None and t.tzinfo is None:
            t = t.replace(tzinfo=timezone.utc)
        rows.append(EventRow(t or datetime.fromtimestamp(0, timezone.utc), e.type or "", e.reason or "",
                             e.message or "", e.count or 1))
    rows.sort(key=lambda r: r.time)
    return rows


def connect(args: argparse.Namespace) -> Kubectl:
    kubeconfig = getattr(args, "kubeconfig", None) or None
    context = getattr(args, "context", None) or None
    cfg = client.Configuration()
    try:
        try:
            config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=cfg,
                                    persist_config=False)
            namespace = _context_namespace(kubeconfig, context)
        except config.ConfigException:
            if kubeconfig or context or not os.environ.get("KUBERNETES_SERVICE_HOST"):
                raise
            config.load_incluster_config(client_configuration=cfg)
            namespace = _SA_NAMESPACE.read_text().strip() if _SA_NAMESPACE.exists() else "default"
    except (config.ConfigException, OSError, ValueError) as e:
        raise CliError(f"cannot load a kubeconfig: {e} (use --kubeconfig or KUBECONFIG)") from None
    cfg.retries = 1  # an interactive tool: say the API server is down now, not after urllib3's retries
    api = client.ApiClient(cfg)
    user = getattr(args, "as_user", None)
    if user:
        api.set_default_header("Impersonate-User", user)
        for g in getattr(args, "as_group", None) or []:
            api.set_default_header("Impersonate-Group", g)  # the client sends the last one only
    return Kubectl(api, getattr(args, "namespace", None) or namespace, user)


def _context_namespace(kubeconfig: str | None, context: str | None) -> str:
    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
    except config.ConfigException:
        return "default"
    chosen = next((c for c in contexts if c.get("name") == context), None) if context else active
    return ((chosen or {}).get("context") or {}).get("namespace") or "default"
