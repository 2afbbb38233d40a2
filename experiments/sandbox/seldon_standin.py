"""The Seldon Core stand-in: what Seldon 1.17's Go controller, Kubernetes and Istio do,
on one machine.

A TEST DOUBLE, used because none of them can run here (no container images). It must
never be kinder than they are. It watches SeldonDeployments and, for each predictor, runs
one real model-server process (`seldon-core-microservice` from the model server's
virtualenv) with the environment Seldon injects; and it writes only what Seldon writes:

* `status.deploymentStatus[<Deployment name>]` = {replicas, availableReplicas} (zeros
  omitted, as Go's omitempty does), under Seldon's Deployment names, hashed form included
  (computed here independently of the operator's `modeldeploy.seldon`);
* `status.state`: Available when every Deployment is available; Failed, with Seldon's one
  fixed description, when one is unavailable and past its progress deadline
  (`progressDeadlineSeconds`, Kubernetes' 600 s by default); else Creating;
* `status.replicas` of the first Deployment and `status.address.url` (first predictor's
  Service), as Seldon does. No per-Deployment status or reason: the model server's own
  reason is in its log, as it would be in `kubectl logs`.

Readiness is the kubelet's: the rendered readiness probe (`/health/status` answering 200)
every `periodSeconds` for the server's whole life, unready after `failureThreshold`
failures in a row, and at once when the process exits; so a server that dies or stops
answering lowers `availableReplicas`. Routing is Seldon's VirtualService (see `router`): updated only when
every Deployment is ready, and by weight to dead backends, which then answer 503.

A removed predictor goes the way Seldon 1.17 removes its Deployment: only once every
remaining Deployment is ready and the VirtualService no longer routes to it
(`completeServiceCreation` updates Services and the VirtualService, then deletes
Deployments that left the spec); until then it keeps serving its old share. Its pod then
drains: Seldon gives model containers a preStop `sleep 10` and a 20 s termination grace
period, so requests already sent to it are answered. Here it keeps its Service and
process for `DRAIN_MIN` seconds (shorter than Seldon's 10: never kinder) and until the
router has no request in flight to it, at most `TERMINATION_GRACE` seconds, then gets
SIGTERM.

Where it differs from a cluster (each on the safe side or neutral):
* one process per predictor whatever `replicas` says (status reports the spec's count,
  all available or none);
* a killed server is not restarted: it models a pod in CrashLoopBackOff, unavailable for
  good, rather than one the kubelet brings back seconds later;
* a changed predictor (new parameters, URI or version) is restarted in place: no surge
  pod, so it is unavailable while reloading, where Kubernetes would keep the old pod;
* a Deployment's first status entry is written when the process starts (Seldon writes it
  on its next reconcile); status conditions are not written.

The operator never imports this module; it only sees SeldonDeployments change.
"""

from __future__ import annotations

import hashlib
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

from . import graph_exec
from .harness import SDEP
from .processes import ManagedProcess, free_port
from .prometheus import TargetGroup
from .router import Endpoint, Route, Router

log = logging.getLogger("sandbox.seldon")
PROGRESS_DEADLINE = 600.0  # Kubernetes' default progressDeadlineSeconds
NOT_PROGRESSING = "Deployment is no longer progressing and not available."
DRAIN_MIN = 2.0  # seconds a removed predictor's pod keeps serving (Seldon's preStop: sleep 10)
TERMINATION_GRACE = 20.0  # Seldon's terminationGracePeriodSeconds for model pods


def deployment_name(sdep: str, predictor: dict[str, Any]) -> str:
    """Seldon's GetDeploymentName for the predictor's first (only) componentSpec."""
    containers = predictor["componentSpecs"][0]["spec"]["containers"]
    name = f"{sdep}-{predictor['name']}-0-" + "-".join(c["name"] for c in containers)
    return name if len(name) <= 63 else "seldon-" + hashlib.md5(name.encode()).hexdigest()  # noqa: S324


def service_name(sdep: str, predictor: dict[str, Any]) -> str:
    """Seldon's GetPredictorKey: the predictor's own Service."""
    custom = (predictor.get("annotations") or {}).get("seldon.io/svc-name")
    name = custom or f"{sdep}-{predictor['name']}"
    return name if len(name) <= 63 else "seldon-" + hashlib.md5(name.encode()).hexdigest()  # noqa: S324


@dataclass
class Server:
    """One predictor's model-server process (its Deployment's one pod)."""

    key: str
    process: ManagedProcess
    service: str  # the predictor's Service (kept while its pod drains)
    http_port: int
    metrics_port: int
    deadline: float
    period: float  # the readiness probe's periodSeconds and failureThreshold
    failure_threshold: int
    started: float = field(default_factory=time.monotonic)
    available: bool = False
    ever_available: bool = False
    probed: float = 0.0
    failures: int = 0
    more_metrics_ports: tuple[int, ...] = ()  # a graph's other nodes (graph_exec)

    def progressing(self, now: float) -> bool:
        # Kubernetes judges progress of a rollout: once it completed, a pod that dies later
        # leaves the Deployment unavailable but not "no longer progressing".
        return self.ever_available or now - self.started <= self.deadline


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
        # Removed predictors' servers still answering what was sent to them: (key, server, since).
        self.draining: list[tuple[tuple[str, str, str], Server, float]] = []
        self._services: set[tuple[str, str]] = set()
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
        for s in [*self.servers.values(), *(d[1] for d in self.draining)]:
            s.process.stop()
        self.servers.clear()
        self.draining.clear()

    def server(self, namespace: str, sdep: str, predictor: str) -> Server | None:
        return self.servers.get((namespace, sdep, predictor))

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
        if graph_exec.is_graph(pred):
            g = graph_exec.GraphProcess(ns, sd, pred, self.model_bin, self.workdir, self.router.registry)
            probe = next((c.get("readinessProbe") for c in g.containers.values() if c.get("readinessProbe")), {})
            return Server(key, g, service_name(sd, pred), g.http_port, g.metrics_ports[0],  # type: ignore[arg-type]
                          float(pred.get("progressDeadlineSeconds") or PROGRESS_DEADLINE),
                          float(probe.get("periodSeconds") or 10), int(probe.get("failureThreshold") or 3),
                          more_metrics_ports=tuple(g.metrics_ports[1:]))
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
        deadline = float(pred.get("progressDeadlineSeconds") or PROGRESS_DEADLINE)
        probe = container.get("readinessProbe") or {}
        return Server(key, proc, service_name(sd, pred), http_port, metrics_port, deadline,
                      float(probe.get("periodSeconds") or 10), int(probe.get("failureThreshold") or 3))

    def _probe(self, s: Server, now: float) -> None:
        """The kubelet's readiness probe, for the server's whole life."""
        if not s.process.running():
            s.available = False  # a container that exited is not ready, probe or not
            return
        if now - s.probed < s.period:
            return
        s.probed = now
        try:
            ok = self._http.request("GET", f"http://127.0.0.1:{s.http_port}/health/status").status == 200
        except urllib3.exceptions.HTTPError:
            ok = False
        s.failures = 0 if ok else s.failures + 1
        if ok:
            s.available = s.ever_available = True
        elif s.failures >= s.failure_threshold:
            s.available = False

    # -- reconcile ------------------------------------------------------------------
    def reconcile(self) -> None:
        wanted: set[tuple[str, str, str]] = set()
        services: set[tuple[str, str]] = set()
        present, ready = set(), set()
        for ns in self.namespaces:
            for sd in self.custom.list_namespaced_custom_object(*SDEP[:2], ns, SDEP[2])["items"]:
                keys, all_ready = self._reconcile_sd(ns, sd, services)
                wanted |= keys
                present.add((ns, sd["metadata"]["name"]))
                if all_ready:
                    ready.add((ns, sd["metadata"]["name"]))
        self._retire(wanted, present, ready, services)
        for ns, sd in self.router.routed() - present:
            self.router.set_routes(ns, sd, None)
        for ns, svc in self._services - services:
            self.router.set_service(ns, svc, None)
        self._services = services
        self._write_targets()

    def _retire(self, wanted: set[tuple[str, str, str]], present: set[tuple[str, str]],
                ready: set[tuple[str, str]], services: set[tuple[str, str]]) -> None:
        """Servers of predictors that left their SeldonDeployment: kept as they are until
        the rest is ready (Seldon deletes nothing before), then drained, then stopped. A
        deleted SeldonDeployment's go at once (no route leads to them any more)."""
        now = time.monotonic()
        for k in [k for k in self.servers if k not in wanted]:
            s, owner = self.servers[k], (k[0], k[1])
            if owner in present and owner not in ready:
                services.add((k[0], s.service))  # still routed to by the old VirtualService
                continue
            del self.servers[k]
            if owner in present:
                log.info("stand-in: draining %s", s.process.name)
                self.draining.append((k, s, now))
            else:
                log.info("stand-in: stopping %s", s.process.name)
                s.process.stop()
        still = []
        for k, s, since in self.draining:
            drained = now - since >= DRAIN_MIN and self.router.in_flight(k[0], s.service) == 0
            if drained or now - since >= TERMINATION_GRACE or (k[0], k[1]) not in present:
                log.info("stand-in: stopping %s after draining %.1fs", s.process.name, now - since)
                s.process.stop()
            else:
                still.append((k, s, since))
                services.add((k[0], s.service))
        self.draining = still

    def _reconcile_sd(self, ns: str, sd: dict[str, Any],
                      services: set[tuple[str, str]]) -> tuple[set[tuple[str, str, str]], bool]:
        name = sd["metadata"]["name"]
        keys, routes, deployments = set(), [], {}
        now = time.monotonic()
        ready = progressing = True
        for pred in sd["spec"].get("predictors") or []:
            k = (ns, name, pred["name"])
            keys.add(k)
            fingerprint = json.dumps([pred["graph"],
                                      pred["labels"].get("version"), pred.get("componentSpecs")], sort_keys=True)
            s = self.servers.get(k)
            if s is None or s.key != fingerprint:
                if s is not None:
                    s.process.stop()
                s = self.servers[k] = self._start_server(ns, name, pred, fingerprint)
            self._probe(s, now)
            replicas = int(pred.get("replicas", 1))
            for deployment in graph_exec.deployment_names(name, pred) if graph_exec.is_graph(pred) \
                    else [deployment_name(name, pred)]:
                deployments[deployment] = {"replicas": replicas, "availableReplicas": replicas if s.available else 0}
            ready = ready and s.available
            progressing = progressing and (s.available or s.progressing(now))
            svc = service_name(name, pred)
            services.add((ns, svc))
            container = pred["componentSpecs"][0]["spec"]["containers"][0]
            self.router.set_service(ns, svc, Endpoint(
                name, pred["name"], pred["labels"]["version"], deployment_name(name, pred), pred["graph"]["name"],
                container.get("image", ""), f"http://127.0.0.1:{s.http_port}" if s.available else None))
            routes.append(Route(svc, int(pred.get("traffic", 0)), bool(pred.get("shadow", False))))
        if ready:  # Seldon updates its VirtualService only once every Deployment is ready
            self.router.set_routes(ns, name, routes)
        state = "Available" if ready else "Creating" if progressing else "Failed"
        self._write_status(ns, sd, state, deployments)
        return keys, ready

    def _write_status(self, ns: str, sd: dict[str, Any], state: str, deployments: dict[str, dict[str, int]]) -> None:
        name = sd["metadata"]["name"]
        # Zero and empty values are omitted, as Seldon's Go structs omit them.
        entries = {k: {f: v for f, v in d.items() if v} for k, d in deployments.items()}
        preds = sd["spec"].get("predictors") or []
        status: dict[str, Any] = {
            "state": state, "description": NOT_PROGRESSING if state == "Failed" else None,
            "deploymentStatus": entries or None, "replicas": next(iter(entries.values()), {}).get("replicas"),
            "address": {"url": f"http://{service_name(name, preds[0])}.{ns}.svc.cluster.local:8000/api/v1.0/predictions"}
            if preds else None,
        }
        old = sd.get("status") or {}
        if all(old.get(k) == v for k, v in status.items()):
            return
        # A merge patch: removed entries, and fields of entries that went to zero, are
        # deleted explicitly.
        olds = old.get("deploymentStatus") or {}
        status["deploymentStatus"] = {**{k: None for k in olds},
                                      **{k: {**{f: None for f in olds.get(k) or {}}, **v} for k, v in entries.items()}}
        self.custom.patch_namespaced_custom_object_status(*SDEP[:2], ns, SDEP[2], name, {"status": status})

    def _write_targets(self) -> None:
        """Tell Prometheus about the model servers (scraped at Seldon's /prometheus path)."""
        # A draining pod is scraped until it is gone, as service discovery keeps it till then.
        servers = sorted([*self.servers.items(), *((k, s) for k, s, _ in self.draining)], key=lambda ks: ks[0])
        groups = [TargetGroup([f"127.0.0.1:{p}" for p in (s.metrics_port, *s.more_metrics_ports)], {"namespace": k[0]},
                              "/prometheus")
                  for k, s in servers if s.process.running()]
        if groups != self._targets and self.on_targets is not None:
            self.on_targets(groups)
        self._targets = groups
