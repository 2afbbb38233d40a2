"""The Seldon Core stand-in: what Seldon's Go controller and Istio do, on one machine.

A TEST DOUBLE, used because neither can run here (no container images). It watches
SeldonDeployments and, for each predictor, runs one real model-server process
(`seldon-core-microservice` from the model server's virtualenv) with the environment
Seldon injects; routes traffic through `router.Router` by the predictors' `traffic`;
and writes SeldonDeployment status as Seldon does: `Creating` while a predictor loads,
`Available` when all are ready, `Failed` (with the server's own reason) when one cannot
become ready. It also hands the model servers' metrics endpoints to Prometheus.

The operator never imports this module; it only sees SeldonDeployments change.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from modelserver.launch import INTERFACE, seldon_env  # stdlib only: safe in this venv

from .harness import SDEP
from .processes import ManagedProcess, free_port, tail
from .prometheus import TargetGroup
from .router import Backend, Router

log = logging.getLogger("sandbox.seldon")
READY_TIMEOUT = 120.0
_NOT_LOADED_YET = "has not been loaded yet"


@dataclass
class Server:
    """One predictor's model-server process and what we know of it."""

    key: str
    process: ManagedProcess
    http_port: int
    metrics_port: int
    started: float = field(default_factory=time.monotonic)
    state: str = "Creating"  # Creating | Available | Failed
    description: str = ""


class SeldonStandIn:
    def __init__(self, api: client.ApiClient, namespaces: list[str], router: Router, model_bin: Path,
                 workdir: Path, on_targets: Callable[[list[TargetGroup]], None] | None = None,
                 poll: float = 0.3) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.namespaces = namespaces
        self.router = router
        self.model_bin = model_bin
        self.workdir = workdir
        self.on_targets = on_targets
        self._targets: list[TargetGroup] | None = None
        self.poll = poll
        self.servers: dict[tuple[str, str, str], Server] = {}
        self._http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=1, read=2), retries=False)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="seldon-standin", daemon=True)

    def start(self) -> SeldonStandIn:
        self._write_targets()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for s in self.servers.values():
            s.process.stop()
        self.servers.clear()

    def _loop(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self.reconcile()
            except ApiException as e:
                log.warning("stand-in: API error %s %s", e.status, e.reason)
            except Exception:  # noqa: BLE001 - the stand-in must keep running
                log.exception("stand-in reconcile failed")

    # -- model-server processes -------------------------------------------------------
    def _start_server(self, ns: str, sd: str, pred: dict[str, Any], key: str) -> Server:
        graph = pred["graph"]
        container = pred["componentSpecs"][0]["spec"]["containers"][0]
        params = list(graph.get("parameters") or [])
        if graph.get("modelUri") and not any(p["name"] == "model_uri" for p in params):
            params.append({"name": "model_uri", "type": "STRING", "value": graph["modelUri"]})
        http_port, metrics_port, grpc_port = free_port(), free_port(), free_port()
        argv = [str(self.model_bin / "seldon-core-microservice"), INTERFACE, "--service-type", "MODEL",
                "--http-port", str(http_port), "--metrics-port", str(metrics_port), "--grpc-port", str(grpc_port),
                "--workers", "1", "--parameters", json.dumps(params)]
        env = {**os.environ, **seldon_env(sd, pred["name"], pred["labels"]["version"], graph["name"],
                                          container.get("image", ""), http_port, metrics_port, grpc_port),
               "PYTHONUNBUFFERED": "1"}
        proc = ManagedProcess(f"model server {ns}/{sd}/{pred['name']}", argv,
                              self.workdir / f"{ns}.{sd}.{pred['name']}.log", http_port, env).start()
        log.info("stand-in: started %s for %s (port %d)", proc.name, graph.get("modelUri"), http_port)
        return Server(key, proc, http_port, metrics_port)

    def _probe(self, s: Server) -> None:
        if s.state == "Failed":
            return
        if not s.process.running():
            s.state = "Failed"
            s.description = f"model server exited with code {s.process.proc.returncode}: {tail(s.process.log_path, 3)}"
            return
        if s.state == "Available":
            return
        try:
            r = self._http.request("GET", f"http://127.0.0.1:{s.http_port}/health/status")
        except urllib3.exceptions.HTTPError:
            r = None
        if r is not None and r.status == 200:
            s.state = "Available"
        elif r is not None and _NOT_LOADED_YET not in r.data.decode(errors="replace"):
            s.state, s.description = "Failed", _reason(r.data)
        elif time.monotonic() - s.started > READY_TIMEOUT:
            s.state, s.description = "Failed", f"model server not ready after {READY_TIMEOUT:.0f}s"

    # -- reconcile ------------------------------------------------------------------
    def reconcile(self) -> None:
        wanted: set[tuple[str, str, str]] = set()
        for ns in self.namespaces:
            for sd in self.custom.list_namespaced_custom_object(*SDEP[:2], ns, SDEP[2])["items"]:
                wanted |= self._reconcile_sd(ns, sd)
        for k in [k for k in self.servers if k not in wanted]:
            log.info("stand-in: stopping %s", self.servers[k].process.name)
            self.servers.pop(k).process.stop()
        self._write_targets()

    def _reconcile_sd(self, ns: str, sd: dict[str, Any]) -> set[tuple[str, str, str]]:
        name = sd["metadata"]["name"]
        keys, backends, deployments = set(), [], {}
        for pred in sd["spec"].get("predictors") or []:
            k = (ns, name, pred["name"])
            keys.add(k)
            fingerprint = json.dumps([pred["graph"].get("modelUri"), pred["graph"].get("parameters"),
                                      pred["labels"].get("version")], sort_keys=True)
            s = self.servers.get(k)
            if s is None or s.key != fingerprint:
                if s is not None:
                    s.process.stop()
                s = self.servers[k] = self._start_server(ns, name, pred, fingerprint)
            self._probe(s)
            container = pred["componentSpecs"][0]["spec"]["containers"][0]["name"]
            replicas = pred.get("replicas", 1)
            deployments[f"{name}-{pred['name']}-0-{container}"] = {
                "status": s.state, "description": s.description, "replicas": replicas,
                "availableReplicas": replicas if s.state == "Available" else 0,
            }
            if s.state == "Available":
                backends.append(Backend(pred["name"], pred["labels"]["version"], f"http://127.0.0.1:{s.http_port}",
                                        int(pred.get("traffic", 0)), bool(pred.get("shadow", False))))
        self.router.set_routes(ns, name, backends)
        self._write_status(ns, sd, deployments)
        return keys

    def _write_status(self, ns: str, sd: dict[str, Any], deployments: dict[str, dict[str, Any]]) -> None:
        states = {d["status"] for d in deployments.values()}
        state = "Failed" if "Failed" in states else "Creating" if "Creating" in states else "Available"
        failed = [f"{k}: {d['description']}" for k, d in deployments.items() if d["status"] == "Failed"]
        old = sd.get("status") or {}
        status = {"state": state, "description": "; ".join(failed), "deploymentStatus": deployments,
                  "address": {"url": f"/seldon/{ns}/{sd['metadata']['name']}/api/v1.0/predictions"}}
        if old.get("state") == state and old.get("deploymentStatus") == deployments and old.get("description") == status["description"]:
            return
        # A merge patch: entries of removed predictors must be deleted explicitly.
        status["deploymentStatus"] = {**{k: None for k in old.get("deploymentStatus") or {}}, **deployments}
        self.custom.patch_namespaced_custom_object_status(*SDEP[:2], ns, SDEP[2], sd["metadata"]["name"], {"status": status})

    def _write_targets(self) -> None:
        """Tell Prometheus about the model servers (scraped at Seldon's /prometheus path)."""
        groups = [TargetGroup([f"127.0.0.1:{s.metrics_port}"], {"namespace": k[0]}, "/prometheus")
                  for k, s in sorted(self.servers.items()) if s.state != "Failed"]
        if groups != self._targets and self.on_targets is not None:
            self.on_targets(groups)
        self._targets = groups


def _reason(body: bytes) -> str:
    try:
        data = json.loads(body)
        return str(data.get("status", {}).get("info") or data.get("message") or data)
    except ValueError:
        return body.decode(errors="replace")[:300]
