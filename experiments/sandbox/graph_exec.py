"""The stand-in's Seldon executor for predictors with a graph: one model-server process per
graph node, and an executor in front that walks the graph as Seldon 1.17's does.

A TEST DOUBLE (see `seldon_standin`). Per request, from the root: a TRANSFORMER's
`/transform-input` then its child; a MODEL's `/predict` then its child with the model's
output; an OUTPUT_TRANSFORMER's child first, then its `/transform-output` on the child's
response. A node's non-200 answer ends the walk with that answer, as the executor
returns it. ROUTER and COMBINER nodes are not walked (no scenario uses them): such a
predictor never becomes ready, which is not kinder than Seldon.

Each call to a node is observed in the executor's client histogram,
`seldon_api_executor_client_requests_seconds{deployment_name, predictor_name,
predictor_version, model_name, model_image, model_version, service, method, code}`
(plus `namespace`, as the router adds it), at the executor's buckets.

Which program serves a node, as Seldon would pick its image: a prepackaged SKLEARN_SERVER
runs `modelserver.sklearn_server.SKLearnServer` (see there why a stand-in) with the
node's modelUri as `model_uri`; a container runs the interface of its MODEL_NAME
environment variable (how Seldon's Python-wrapper images choose their class), else our
model server. The predictor is available when every node answers `/health/status`.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import urllib3
from modelserver.launch import INTERFACE, seldon_env  # stdlib only: safe in this venv
from prometheus_client import CollectorRegistry, Histogram

from .exporter import EXECUTOR_BUCKETS
from .processes import ManagedProcess, free_port

log = logging.getLogger("sandbox.graph")
SKLEARN_INTERFACE = "modelserver.sklearn_server.SKLearnServer"
PREPACKAGED = {"SKLEARN_SERVER": SKLEARN_INTERFACE}
PATHS = {"MODEL": "/predict", "TRANSFORMER": "/transform-input", "OUTPUT_TRANSFORMER": "/transform-output"}
CLIENT_LABELS = ("namespace", "deployment_name", "predictor_name", "predictor_version", "model_name", "model_image",
                 "model_version", "service", "method", "code")
_HISTOGRAMS: dict[int, Histogram] = {}


def client_histogram(registry: CollectorRegistry) -> Histogram:
    """The executor's per-node histogram, once per registry."""
    if id(registry) not in _HISTOGRAMS:
        _HISTOGRAMS[id(registry)] = Histogram(
            "seldon_api_executor_client_requests_seconds", "A histogram of latencies for client calls from executor",
            CLIENT_LABELS, buckets=EXECUTOR_BUCKETS, registry=registry)
    return _HISTOGRAMS[id(registry)]


def is_graph(predictor: dict[str, Any]) -> bool:
    """A predictor this module runs: more than one node, or a prepackaged server."""
    graph = predictor.get("graph") or {}
    return bool(graph.get("children")) or bool(graph.get("implementation"))


def nodes(graph: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield graph
    for child in graph.get("children") or []:
        yield from nodes(child)


def deployment_names(sdep: str, predictor: dict[str, Any]) -> list[str]:
    """Seldon's GetDeploymentName of every componentSpec (computed here, not imported from
    the operator): `<sdep>-<predictor>-<i>-<containers>`, md5-hashed over 63 characters."""
    import hashlib

    out = []
    for i, cs in enumerate(predictor.get("componentSpecs") or []):
        containers = [c["name"] for c in (cs.get("spec") or {}).get("containers") or []]
        if containers:
            name = f"{sdep}-{predictor['name']}-{i}-" + "-".join(containers)
            out.append(name if len(name) <= 63 else "seldon-" + hashlib.md5(name.encode()).hexdigest())
    return out


class GraphProcess:
    """A predictor's node processes and its executor; duck-types `ManagedProcess` for the
    stand-in (name, running, stop)."""

    def __init__(self, ns: str, sdep: str, predictor: dict[str, Any], model_bin: Path, workdir: Path,
                 registry: CollectorRegistry) -> None:
        self.ns, self.sdep, self.predictor = ns, sdep, predictor
        self.name = f"graph {ns}/{sdep}/{predictor['name']}"
        self.version = predictor["labels"]["version"]
        self.containers = {c["name"]: c for cs in predictor.get("componentSpecs") or []
                           for c in (cs.get("spec") or {}).get("containers") or []}
        self.histogram = client_histogram(registry)
        self.http = urllib3.PoolManager(maxsize=16, timeout=urllib3.Timeout(connect=2, read=30), retries=False)
        self.ports: dict[str, int] = {}
        self.metrics_ports: list[int] = []
        self.procs: list[ManagedProcess] = []
        for node in nodes(predictor["graph"]):
            self._start_node(node, model_bin, workdir)
        self.http_port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.http_port), self._handler())
        self.thread = threading.Thread(target=self.server.serve_forever, name=self.name, daemon=True)
        self.thread.start()

    def _start_node(self, node: dict[str, Any], model_bin: Path, workdir: Path) -> None:
        container = self.containers.get(node["name"], {})
        env_vars = {e["name"]: e.get("value", "") for e in container.get("env") or []}
        interface = PREPACKAGED.get(node.get("implementation") or "") or env_vars.get("MODEL_NAME") or INTERFACE
        service_type = env_vars.get("SERVICE_TYPE") or ("TRANSFORMER" if "TRANSFORMER" in node.get("type", "") else "MODEL")
        params = list(node.get("parameters") or [])
        if node.get("modelUri") and not any(p["name"] == "model_uri" for p in params):
            params.append({"name": "model_uri", "type": "STRING", "value": node["modelUri"]})
        http_port, metrics_port, grpc_port = free_port(), free_port(), free_port()
        argv = [str(model_bin / "seldon-core-microservice"), interface, "--service-type", service_type,
                "--http-port", str(http_port), "--metrics-port", str(metrics_port), "--grpc-port", str(grpc_port),
                "--workers", "1", "--parameters", json.dumps(params)]
        env = {**os.environ, **seldon_env(self.sdep, self.predictor["name"], self.version, node["name"],
                                          container.get("image", ""), http_port, metrics_port, grpc_port),
               **env_vars, "PYTHONUNBUFFERED": "1"}
        name = f"{self.ns}.{self.sdep}.{self.predictor['name']}.{node['name']}"
        self.procs.append(ManagedProcess(f"node {name}", argv, workdir / f"{name}.log", http_port, env).start())
        self.ports[node["name"]] = http_port
        self.metrics_ports.append(metrics_port)

    # -- the ManagedProcess face --------------------------------------------------------
    def running(self) -> bool:
        return self.thread.is_alive() and all(p.running() for p in self.procs)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        for p in self.procs:
            p.stop()

    # -- the executor ---------------------------------------------------------------------
    def ready(self) -> bool:
        try:
            # Within the stand-in's probe timeout (2 s), like the kubelet probing each container.
            return all(self.http.request("GET", f"http://127.0.0.1:{port}/health/status", timeout=0.9).status == 200
                       for port in self.ports.values())
        except urllib3.exceptions.HTTPError:
            return False

    def _call(self, node: dict[str, Any], path: str, body: bytes) -> tuple[int, bytes]:
        image = self.containers.get(node["name"], {}).get("image", "")
        t0 = time.perf_counter()
        try:
            r = self.http.request("POST", f"http://127.0.0.1:{self.ports[node['name']]}{path}", body=body,
                                  headers={"Content-Type": "application/json"})
            code, data = r.status, r.data
        except urllib3.exceptions.HTTPError:
            code, data = 503, b'{"status": {"code": 503, "info": "node unreachable"}}'
        self.histogram.labels(self.ns, self.sdep, self.predictor["name"], self.version, node["name"], image,
                              image.rsplit(":", 1)[-1] if ":" in image else "", path.strip("/"), "post",
                              str(code)).observe(time.perf_counter() - t0)
        return code, data

    def walk(self, node: dict[str, Any], body: bytes) -> tuple[int, bytes]:
        kind = node.get("type") or "MODEL"
        children = node.get("children") or []
        if kind not in PATHS or len(children) > 1:
            return 500, json.dumps({"status": {"code": 500, "info": f"stand-in walks no {kind} node"}}).encode()
        if kind == "OUTPUT_TRANSFORMER":
            code, body = self.walk(children[0], body) if children else (200, body)
            return self._call(node, PATHS[kind], body) if code == 200 else (code, body)
        code, body = self._call(node, PATHS[kind], body)
        if code != 200 or not children:
            return code, body
        return self.walk(children[0], body)

    def feedback(self, body: bytes) -> tuple[int, bytes]:
        code, data = 200, b"{}"
        for node in nodes(self.predictor["graph"]):
            if (node.get("type") or "MODEL") == "MODEL":
                code, data = self._call(node, "/send-feedback", body)
        return code, data

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        graph = self.predictor["graph"]
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, data: bytes) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the caller gave up (a probe timed out): nothing to answer

            def do_GET(self) -> None:
                self._send(200 if outer.ready() else 503, b"{}")

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.endswith("/feedback"):
                    self._send(*outer.feedback(body))
                else:
                    self._send(*outer.walk(graph, body))

        return Handler
