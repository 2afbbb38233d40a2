"""The Istio + Seldon executor stand-in: the ingress gateway, one Service per predictor,
and the executor's metrics.

Istio, as Seldon 1.17 configures it (one VirtualService per SeldonDeployment): requests
to ``/seldon/<namespace>/<deployment>/api/v1.0/<predictions|feedback>`` go to one
predictor's Service chosen at random by `traffic` weight, and predictions are mirrored
to the shadow's Service (responses discarded). Istio keeps routing by weight whatever
the backends' health: a Service with no ready endpoint answers 503 ``no healthy
upstream`` (Envoy response flag UH), one whose server refuses the connection 503 (UF).
The routes change only when the stand-in says so, which it does as Seldon updates its
VirtualService: only once every Deployment is ready.

Each predictor's own Service (Seldon's `<sdep>-<predictor>`, port 8000) is reachable as
``/svc/<namespace>/<service>/api/v1.0/...``, standing for
``http://<service>.<namespace>.svc.cluster.local:8000/api/v1.0/...``: feedback sent there
reaches the predictor that served the request (see `loadgen`).

Metrics at ``/metrics``:
* the executor's ``seldon_api_executor_server_requests_seconds{deployment_name,
  predictor_name, predictor_version, service, method, code}`` with its exact buckets, for
  requests that reached a predictor's pod (REST: service predictions/feedback, method
  post, code 200; gRPC: service /seldon.protos.Seldon/Predict, method unary, code OK);
  one router serves every namespace, so it adds the `namespace` label that Kubernetes
  service discovery adds on a cluster;
* Istio's ``istio_requests_total`` as the gateway reports it (reporter="source"), with
  Istio's standard labels, for every request including those no pod ever saw.
`/stats` returns per-predictor counts of user responses and mirrored requests.
"""

from __future__ import annotations

import json
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import urllib3
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from .exporter import EXECUTOR_BUCKETS

GRPC_PREDICT = "/seldon.protos.Seldon/Predict"
GRPC_FEEDBACK = "/seldon.protos.Seldon/SendFeedback"
#: Header by which the load generator says a request stands for a gRPC call (see `Router.send`).
PROTOCOL_HEADER = "X-Sandbox-Protocol"
ISTIO_LABELS = ("reporter", "source_workload", "source_workload_namespace", "destination_workload",
                "destination_workload_namespace", "destination_app", "destination_version", "destination_service",
                "destination_service_name", "destination_service_namespace", "request_protocol", "response_code",
                "grpc_response_status", "response_flags")


@dataclass(frozen=True)
class Endpoint:
    """A predictor's Service and its pod: `url` is None while the pod is not ready."""

    sdep: str
    predictor: str
    version: str
    workload: str  # the Deployment's name
    node: str  # the graph node (requestPath key) and its image
    image: str
    url: str | None


@dataclass(frozen=True)
class Route:
    service: str
    weight: int
    shadow: bool = False


class Router:
    def __init__(self, seed: int | None = None) -> None:
        self._routes: dict[tuple[str, str], tuple[Route, ...]] = {}
        self._services: dict[tuple[str, str], Endpoint] = {}
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._http = urllib3.PoolManager(maxsize=32, timeout=urllib3.Timeout(connect=2, read=30), retries=False)
        self._mirror = ThreadPoolExecutor(max_workers=4, thread_name_prefix="mirror")
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "seldon_api_executor_server_requests_seconds", "A histogram of latencies for executor server",
            ["namespace", "deployment_name", "predictor_name", "predictor_version", "service", "method", "code"],
            buckets=EXECUTOR_BUCKETS, registry=self.registry,
        )
        self.istio = Counter("istio_requests", "Istio request count (stand-in)", ISTIO_LABELS, registry=self.registry)
        # Istio discards mirrored responses; this router can pair them with the response the
        # user got, so a shadow is also judged on how often it agrees with the stable version.
        self.pairs = Counter(
            "modeldeploy_shadow_pairs", "Mirrored predictions paired with the served one (stand-in only)",
            ["namespace", "deployment_name", "predictor_name", "agree"], registry=self.registry,
        )
        self.stats: dict[str, dict[str, int]] = {}
        self._in_flight: dict[tuple[str, str], int] = {}
        self._server: ThreadingHTTPServer | None = None

    # -- configuration (the stand-in's VirtualService and Services) -----------------------
    def set_routes(self, namespace: str, deployment: str, routes: list[Route] | None) -> None:
        with self._lock:
            if routes:
                self._routes[(namespace, deployment)] = tuple(routes)
            else:
                self._routes.pop((namespace, deployment), None)

    def routes(self, namespace: str, deployment: str) -> tuple[Route, ...]:
        with self._lock:
            return self._routes.get((namespace, deployment), ())

    def routed(self) -> set[tuple[str, str]]:
        with self._lock:
            return set(self._routes)

    def set_service(self, namespace: str, service: str, endpoint: Endpoint | None) -> None:
        with self._lock:
            if endpoint is None:
                self._services.pop((namespace, service), None)
            else:
                self._services[(namespace, service)] = endpoint

    def service(self, namespace: str, service: str) -> Endpoint | None:
        with self._lock:
            return self._services.get((namespace, service))

    def in_flight(self, namespace: str, service: str) -> int:
        """Requests forwarded to the Service's pod and not yet answered (what a draining
        pod still owes; see `seldon_standin`)."""
        with self._lock:
            return self._in_flight.get((namespace, service), 0)

    def _track(self, namespace: str, service: str, delta: int) -> None:
        with self._lock:
            self._in_flight[(namespace, service)] = self._in_flight.get((namespace, service), 0) + delta

    def choose(self, routes: tuple[Route, ...]) -> Route | None:
        """By weight alone, as Istio does: a dead backend keeps its share."""
        live = [r for r in routes if not r.shadow and r.weight > 0]
        if not live:
            return None
        with self._lock:
            return self._rng.choices(live, weights=[r.weight for r in live])[0]

    # -- forwarding ------------------------------------------------------------------
    def _count(self, deployment: str, predictor: str, kind: str) -> None:
        with self._lock:
            per = self.stats.setdefault(f"{deployment}/{predictor}", {})
            per[kind] = per.get(kind, 0) + 1

    def send(self, namespace: str, deployment: str, service: str, path: str, body: bytes, kind: str,
             grpc: bool = False, source: str = "istio-ingressgateway") -> tuple[int, bytes]:
        """One request to a predictor's Service, through its pod's executor."""
        ep = self.service(namespace, service)
        flags, reached = "-", False
        if ep is None or ep.url is None:
            code, data, flags = 503, b"no healthy upstream", "UH"
        else:
            t0 = time.perf_counter()
            self._track(namespace, service, 1)
            try:
                r = self._http.request("POST", ep.url + path, body=body, headers={"Content-Type": "application/json"})
                code, data, reached = r.status, _with_request_path(r.data, ep), True
            except urllib3.exceptions.HTTPError:
                code, data, flags = 503, b"upstream connect error or disconnect/reset before headers", "UF"
            finally:
                self._track(namespace, service, -1)
            if reached:
                svc = path.rsplit("/", 1)[-1]
                labels = ((GRPC_PREDICT if svc == "predictions" else GRPC_FEEDBACK), "unary",
                          "OK" if code == 200 else _grpc_name(code)) if grpc else (svc, "post", str(code))
                self.latency.labels(namespace, deployment, ep.predictor, ep.version, *labels).observe(time.perf_counter() - t0)
                self._count(deployment, ep.predictor, kind)
        self._istio(namespace, service, ep if reached else None, code, flags, grpc, source)
        return code, data

    def _istio(self, namespace: str, service: str, ep: Endpoint | None, code: int, flags: str, grpc: bool,
               source: str) -> None:
        # Envoy answers a gRPC call it cannot route with HTTP 200 and grpc-status 14
        # (UNAVAILABLE); a pod's gRPC answers are HTTP 200 with their own status.
        http_code, grpc_status = (200, "0" if code == 200 else "14" if code >= 500 else "2") if grpc else (code, "")
        unknown = "unknown"
        self.istio.labels(
            "source", source, "istio-system" if source == "istio-ingressgateway" else namespace,
            ep.workload if ep else unknown, namespace if ep else unknown, ep.workload if ep else unknown,
            ep.version if ep else unknown, f"{service}.{namespace}.svc.cluster.local", service, namespace,
            "grpc" if grpc else "http", str(http_code), grpc_status, flags,
        ).inc()

    def handle(self, namespace: str, deployment: str, verb: str, body: bytes, grpc: bool = False) -> tuple[int, bytes]:
        routes = self.routes(namespace, deployment)
        path = f"/api/v1.0/{verb}"
        chosen = self.choose(routes)
        if chosen is None:  # no VirtualService (yet): Istio's gateway has no route
            return 404, b""
        code, data = self.send(namespace, deployment, chosen.service, path, body,
                               "served" if verb == "predictions" else "feedback", grpc)
        if verb == "predictions":
            for shadow in (r for r in routes if r.shadow):
                self._mirror.submit(self._mirror_one, namespace, deployment, shadow.service, path, body,
                                    data if code == 200 else None, grpc)
        return code, data

    def _mirror_one(self, namespace: str, deployment: str, service: str, path: str, body: bytes,
                    served: bytes | None, grpc: bool) -> None:
        ep = self.service(namespace, service)
        if ep is None or ep.url is None:
            return  # Envoy drops a mirror it cannot send; the user never notices
        code, data = self.send(namespace, deployment, service, path, body, "mirrored", grpc)
        a, b = _classes(served), _classes(data) if code == 200 else None
        if a is not None and b is not None and len(a) == len(b):
            for x, y in zip(a, b):
                self.pairs.labels(namespace, deployment, ep.predictor, str(x == y).lower()).inc()

    # -- server ----------------------------------------------------------------------
    def serve(self, port: int) -> None:
        router = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet: thousands of requests
                pass

            def _send(self, code: int, body: bytes, ctype: str = "application/json") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                if self.path == "/metrics":
                    return self._send(200, generate_latest(router.registry), CONTENT_TYPE_LATEST)
                if self.path == "/stats":
                    with router._lock:
                        return self._send(200, json.dumps(router.stats).encode())
                self._send(404, b'{"error": "not found"}')

            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path.strip("/").split("/")
                grpc = self.headers.get(PROTOCOL_HEADER) == "grpc"
                if len(parts) != 6 or parts[3:5] != ["api", "v1.0"] or parts[5] not in ("predictions", "feedback"):
                    return self._send(404, b'{"error": "use /seldon/<namespace>/<deployment>/api/v1.0/predictions"}')
                if parts[0] == "seldon":
                    code, data = router.handle(parts[1], parts[2], parts[5], body, grpc)
                elif parts[0] == "svc" and (ep := router.service(parts[1], parts[2])) is not None:
                    code, data = router.send(parts[1], ep.sdep, parts[2], f"/api/v1.0/{parts[5]}", body,
                                             "served" if parts[5] == "predictions" else "feedback", grpc, "loadgen")
                else:
                    code, data = 404, b""
                self._send(code, data, "application/json" if data[:1] in (b"{", b"[") else "text/plain")

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="router", daemon=True).start()

    def close(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        self._mirror.shutdown(wait=False, cancel_futures=True)


def _with_request_path(body: bytes, ep: Endpoint) -> bytes:
    """The executor's addition to a response: `meta.requestPath`, graph node -> image."""
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if not isinstance(data, dict):
        return body
    meta = data.setdefault("meta", {})
    if isinstance(meta, dict):
        meta["requestPath"] = {ep.node: ep.image}
    return json.dumps(data).encode()


def _grpc_name(http: int) -> str:
    """The gRPC status the executor reports for what the model answered with `http`."""
    return {400: "InvalidArgument", 404: "NotFound", 503: "Unavailable"}.get(http, "Internal" if http >= 500 else "Unknown")


def _classes(body: bytes | None) -> list[int] | None:
    """Predicted classes (argmax per row) of a Seldon ndarray response."""
    try:
        rows = json.loads(body)["data"]["ndarray"]  # type: ignore[arg-type]
        return [max(range(len(r)), key=r.__getitem__) for r in rows]
    except (TypeError, ValueError, KeyError, IndexError):
        return None
