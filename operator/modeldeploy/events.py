"""Kubernetes Events about ModelDeployments, posted the way Kubernetes' own recorder does.

Two kinds of names, both deterministic, so that posting is idempotent and survives a
restart of the operator (or a hand-over between replicas):

* a transition recorded in ``status.history`` is posted as ``<mdep>.<uid8>.<seq>``:
  creating it twice gives 409 AlreadyExists, so the operator can post every history entry
  it is not sure about and never duplicates one;
* anything else (analysis verdicts, commands, InvalidSpec) is named after a hash of its
  type, reason and message: a repeat of the same event patches the existing Event's
  ``count`` and ``lastTimestamp`` instead of creating another one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from collections.abc import Mapping
from typing import Any, cast

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from . import GROUP
from .state import parse_time

MESSAGE_LIMIT = 1000
COMPONENT = "modeldeploy"
_NAME_LIMIT = 253


def base_name(meta: Mapping[str, Any]) -> str:
    return f"{meta['name'][:_NAME_LIMIT - 30]}.{str(meta.get('uid', ''))[:8]}"


def history_event_name(meta: Mapping[str, Any], seq: int) -> str:
    return f"{base_name(meta)}.{seq}"


def aggregate_event_name(meta: Mapping[str, Any], type_: str, reason: str, message: str) -> str:
    digest = hashlib.sha256(f"{type_}\0{reason}\0{message}".encode()).hexdigest()[:12]
    return f"{base_name(meta)}.{digest}"


def _time(value: str | None) -> dt.datetime:
    return parse_time(value) or dt.datetime.now(dt.timezone.utc)


class Recorder:
    """Posts Events; remembers the counts of aggregated ones (a restarted operator reads
    the count back from the Event when its create meets 409)."""

    def __init__(self, core: client.CoreV1Api, instance: str = COMPONENT) -> None:
        self.core = core
        self.instance = instance
        self._counts: dict[tuple[str, str], int] = {}
        self._lock = threading.Lock()

    def _body(self, mdep: Mapping[str, Any], name: str, type_: str, reason: str, message: str,
              at: dt.datetime) -> dict[str, Any]:
        meta = mdep["metadata"]
        # eventTime is a MicroTime, which the API server refuses without a fraction; the
        # client writes none for a datetime on a whole second, so that one gets 1 µs.
        micro = at if at.microsecond else at + dt.timedelta(microseconds=1)
        return {
            "apiVersion": "v1", "kind": "Event",
            "metadata": {"name": name, "namespace": meta["namespace"]},
            "involvedObject": {"apiVersion": mdep["apiVersion"], "kind": mdep["kind"], "name": meta["name"],
                               "namespace": meta["namespace"], "uid": meta["uid"],
                               "resourceVersion": meta.get("resourceVersion")},
            "reason": reason, "message": message[:MESSAGE_LIMIT], "type": type_,
            "source": {"component": COMPONENT},
            # eventTime has microseconds, so readers can order events of the same second.
            "firstTimestamp": at, "lastTimestamp": at, "count": 1, "eventTime": micro, "action": reason,
            "reportingComponent": f"{GROUP}/operator", "reportingInstance": self.instance,
        }

    def _create(self, namespace: str, body: dict[str, Any]) -> None:
        # The client serialises a plain dict as it is (ApiClient.sanitize_for_serialization),
        # though its stubs name only the CoreV1Event model: the one cast for that boundary.
        self.core.create_namespaced_event(namespace, cast(Any, body))

    def post_history(self, mdep: Mapping[str, Any], entry: Mapping[str, Any]) -> bool:
        """Post one `status.history` entry; False if it was already posted."""
        meta = mdep["metadata"]
        name = history_event_name(meta, int(entry["seq"]))
        body = self._body(mdep, name, entry.get("type", "Normal"), entry["reason"], entry.get("message", ""),
                          _time(entry.get("time")))
        try:
            self._create(meta["namespace"], body)
            return True
        except ApiException as e:
            if e.status == 409:
                return False
            raise

    def post(self, mdep: Mapping[str, Any], type_: str, reason: str, message: str) -> int:
        """Post an event, or count one more of an identical event; returns its count."""
        meta = mdep["metadata"]
        ns, name = meta["namespace"], aggregate_event_name(meta, type_, reason, message)
        now = dt.datetime.now(dt.timezone.utc)
        with self._lock:
            count = self._counts.get((ns, name))
        if count is None:
            try:
                self._create(ns, self._body(mdep, name, type_, reason, message, now))
                self._remember(ns, name, 1)
                return 1
            except ApiException as e:
                if e.status != 409:
                    raise
            count = self.core.read_namespaced_event(name, ns).count or 1
        try:
            self.core.patch_namespaced_event(name, ns, {"count": count + 1, "lastTimestamp": now})
        except ApiException as e:
            if e.status != 404:
                raise
            # Expired (Events live an hour by default): start a new series.
            self._create(ns, self._body(mdep, name, type_, reason, message, now))
            count = 0
        self._remember(ns, name, count + 1)
        return count + 1

    def _remember(self, ns: str, name: str, count: int) -> None:
        with self._lock:
            self._counts[(ns, name)] = count

    def forget(self, meta: Mapping[str, Any]) -> None:
        prefix = base_name(meta) + "."
        with self._lock:
            for key in [k for k in self._counts if k[0] == meta.get("namespace") and k[1].startswith(prefix)]:
                del self._counts[key]
