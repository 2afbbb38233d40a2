"""The Istio + Seldon executor stand-in: one HTTP front door that splits traffic.

Requests to ``/seldon/<namespace>/<deployment>/api/v1.0/predictions`` go to one of the
deployment's non-shadow predictors, chosen at random in proportion to their `traffic`
(as Istio's weighted VirtualService does), and are mirrored to the shadow predictor,
whose response is discarded (Istio `mirror`). Every response names the predictor that
served it in the ``Seldon-Predictor`` header; feedback that carries that header goes back
to the same predictor, so rewards are credited to the version that made the prediction.

Latency is exported as the Seldon executor does, one histogram for all predictors:
``seldon_api_executor_server_requests_seconds{namespace, deployment_name,
predictor_name, predictor_version, service, method, code}``, buckets 0.005 … 10 s. `/stats` returns the
per-predictor counts of user responses and mirrored requests, for tests to assert on.
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

PREDICTOR_HEADER = "Seldon-Predictor"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class Backend:
    predictor: str
    version: str
    url: str
    traffic: int
    shadow: bool = False


class Router:
    def __init__(self, seed: int | None = None) -> None:
        self._routes: dict[tuple[str, str], tuple[Backend, ...]] = {}
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._http = urllib3.PoolManager(maxsize=32, timeout=urllib3.Timeout(connect=2, read=30), retries=False)
        self._mirror = ThreadPoolExecutor(max_workers=4, thread_name_prefix="mirror")
        self.registry = CollectorRegistry()
        self.latency = Histogram(
            "seldon_api_executor_server_requests_seconds", "Seldon executor request latency (stand-in)",
            # `namespace` is what Kubernetes service discovery adds to a pod's series on a
            # cluster; one router serves every namespace here, so it labels them itself.
            ["namespace", "deployment_name", "predictor_name", "predictor_version", "service", "method", "code"],
            buckets=BUCKETS, registry=self.registry,
        )
        # Istio discards mirrored responses; this router can pair them with the response the
        # user got, so a shadow is also judged on how often it agrees with the stable version.
        self.pairs = Counter(
            "modeldeploy_shadow_pairs", "Mirrored predictions paired with the served one (stand-in only)",
            ["namespace", "deployment_name", "predictor_name", "agree"], registry=self.registry,
        )
        self.stats: dict[str, dict[str, int]] = {}
        self._server: ThreadingHTTPServer | None = None

    # -- routing table ---------------------------------------------------------------
    def set_routes(self, namespace: str, deployment: str, backends: list[Backend]) -> None:
        with self._lock:
            if backends:
                self._routes[(namespace, deployment)] = tuple(backends)
            else:
                self._routes.pop((namespace, deployment), None)

    def routes(self, namespace: str, deployment: str) -> tuple[Backend, ...]:
        with self._lock:
            return self._routes.get((namespace, deployment), ())

    def choose(self, backends: tuple[Backend, ...], sticky: str | None = None) -> Backend | None:
        live = [b for b in backends if not b.shadow and b.traffic > 0]
        if sticky:
            for b in backends:
                if b.predictor == sticky and not b.shadow:
                    return b
        if not live:
            return None
        with self._lock:
            return self._rng.choices(live, weights=[b.traffic for b in live])[0]

    # -- forwarding ------------------------------------------------------------------
    def _count(self, deployment: str, predictor: str, kind: str) -> None:
        with self._lock:
            per = self.stats.setdefault(f"{deployment}/{predictor}", {})
            per[kind] = per.get(kind, 0) + 1

    def forward(self, namespace: str, deployment: str, b: Backend, path: str, body: bytes, service: str, kind: str) -> tuple[int, bytes]:
        t0 = time.perf_counter()
        try:
            r = self._http.request("POST", b.url + path, body=body, headers={"Content-Type": "application/json"})
            code, data = r.status, r.data
        except urllib3.exceptions.HTTPError as e:
            code, data = 503, json.dumps({"status": {"code": 503, "info": f"predictor {b.predictor} unreachable: {e}"}}).encode()
        self.latency.labels(namespace, deployment, b.predictor, b.version, service, "post", str(code)).observe(time.perf_counter() - t0)
        self._count(deployment, b.predictor, kind)
        return code, data

    def handle(self, namespace: str, deployment: str, service: str, body: bytes, sticky: str | None) -> tuple[int, bytes, str]:
        backends = self.routes(namespace, deployment)
        path = f"/api/v1.0/{service}"
        chosen = self.choose(backends, sticky if service == "feedback" else None)
        if chosen is None:
            msg = f"no predictor of {namespace}/{deployment} takes traffic"
            return 503, json.dumps({"status": {"code": 503, "info": msg}}).encode(), ""
        code, data = self.forward(namespace, deployment, chosen, path, body, service, "served" if service == "predictions" else "feedback")
        if service == "predictions":
            for shadow in (b for b in backends if b.shadow):
                self._mirror.submit(self._mirror_one, namespace, deployment, shadow, path, body, data if code == 200 else None)
        return code, data, chosen.predictor

    def _mirror_one(self, namespace: str, deployment: str, shadow: Backend, path: str, body: bytes,
                    served: bytes | None) -> None:
        code, data = self.forward(namespace, deployment, shadow, path, body, "predictions", "mirrored")
        a, b = _classes(served), _classes(data) if code == 200 else None
        if a is not None and b is not None and len(a) == len(b):
            for x, y in zip(a, b):
                self.pairs.labels(namespace, deployment, shadow.predictor, str(x == y).lower()).inc()

    # -- server ----------------------------------------------------------------------
    def serve(self, port: int) -> None:
        router = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet: thousands of requests
                pass

            def _send(self, code: int, body: bytes, ctype: str = "application/json", predictor: str = "") -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                if predictor:
                    self.send_header(PREDICTOR_HEADER, predictor)
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
                if len(parts) != 6 or parts[0] != "seldon" or parts[3:5] != ["api", "v1.0"] or parts[5] not in ("predictions", "feedback"):
                    return self._send(404, b'{"error": "use /seldon/<namespace>/<deployment>/api/v1.0/predictions"}')
                code, data, predictor = router.handle(parts[1], parts[2], parts[5], body, self.headers.get(PREDICTOR_HEADER))
                self._send(code, data, predictor=predictor)

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="router", daemon=True).start()

    def close(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
        self._mirror.shutdown(wait=False, cancel_futures=True)


def _classes(body: bytes | None) -> list[int] | None:
    """Predicted classes (argmax per row) of a Seldon ndarray response."""
    try:
        rows = json.loads(body)["data"]["ndarray"]  # type: ignore[arg-type]
        return [max(range(len(r)), key=r.__getitem__) for r in rows]
    except (TypeError, ValueError, KeyError, IndexError):
        return None
