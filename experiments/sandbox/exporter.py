"""A metrics exporter the tests drive: Seldon's executor histogram and our class counter.

A real process (so Prometheus scrapes it over HTTP, as it would a pod) whose numbers
are exactly what the test posts, so an end-to-end test can compare ``analyse()``'s
output with what it fed in. It exposes, for any deployment/predictor it is told about:

* ``seldon_api_executor_server_requests_seconds`` — a histogram with the executor's
  buckets and labels (``deployment_name, predictor_name, predictor_version, service,
  method, code``);
* ``modeldeploy_predictions_total{class, deployment_name, predictor_name}``;
* ``modeldeploy_outputs_total{output, ...}`` and
  ``modeldeploy_outputs_unreadable_total{reason, ...}``, as the output monitor node exports them;
* ``modeldeploy_feedback_total`` / ``modeldeploy_feedback_reward_total``, our model
  server's count of feedback and sum of rewards (prometheus_client appends ``_total``
  to counters, as the Seldon wrapper's CounterMetricFamily does).

HTTP API: ``GET /metrics``; ``POST /declare`` and ``POST /observe`` with JSON (see
`Exporter.declare` and `Exporter.observe`). ``python -m sandbox.exporter --port N``.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Iterable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

#: The Seldon Core v1 executor's buckets (executor/api/metric/constants.go, DefBuckets).
EXECUTOR_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)
_SERVER_LABELS = ("deployment_name", "predictor_name", "predictor_version", "service", "method", "code")


class Exporter:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.lock = threading.Lock()
        self.requests = Histogram("seldon_api_executor_server_requests_seconds",
                                  "A histogram of latencies for executor server", _SERVER_LABELS,
                                  buckets=EXECUTOR_BUCKETS, registry=self.registry)
        self.predictions = Counter("modeldeploy_predictions", "Predictions by output class",
                                   ("class", "deployment_name", "predictor_name"), registry=self.registry)
        self.outputs = Counter("modeldeploy_outputs", "Outputs counted by the output monitor",
                               ("output", "deployment_name", "predictor_name"), registry=self.registry)
        self.unreadable = Counter("modeldeploy_outputs_unreadable", "Responses the output monitor could not read",
                                  ("reason", "deployment_name", "predictor_name"), registry=self.registry)
        self.feedback = Counter("modeldeploy_feedback", "Feedback calls (or truth rows)",
                                ("deployment_name", "predictor_name"), registry=self.registry)
        self.reward = Counter("modeldeploy_feedback_reward", "Sum of rewards",
                              ("deployment_name", "predictor_name"), registry=self.registry)

    def _server(self, d: Mapping[str, Any], code: str, service: str) -> Any:
        return self.requests.labels(d["deployment"], d["predictor"], d.get("version", ""), service, "post", code)

    def declare(self, d: Mapping[str, Any]) -> None:
        """Create series at zero: {deployment, predictor, codes?, services?, classes?, feedback?}.

        As a long-running executor's would exist before the traffic of interest: a test
        can then check that queries handle series that existed before the window.
        """
        with self.lock:
            for service in d.get("services", ["predictions"]):
                for code in d.get("codes", ["200"]):
                    self._server(d, str(code), service)
            for cls in d.get("classes", []):
                self.predictions.labels(str(cls), d["deployment"], d["predictor"])
            if d.get("feedback"):
                self.feedback.labels(d["deployment"], d["predictor"])
                self.reward.labels(d["deployment"], d["predictor"])

    def observe(self, d: Mapping[str, Any]) -> None:
        """Record traffic: {deployment, predictor, requests?: [[seconds, count, code?, service?]],
        classes?: {class: count}, outputs?: {output: count}, unreadable?: {reason: count},
        feedback?: {count, reward}}."""
        with self.lock:
            for item in d.get("requests", []):
                seconds, count = float(item[0]), int(item[1])
                code = str(item[2]) if len(item) > 2 else "200"
                service = str(item[3]) if len(item) > 3 else "predictions"
                h = self._server(d, code, service)
                for _ in range(count):
                    h.observe(seconds)
            for cls, count in d.get("classes", {}).items():
                self.predictions.labels(str(cls), d["deployment"], d["predictor"]).inc(float(count))
            for counter, key in ((self.outputs, "outputs"), (self.unreadable, "unreadable")):
                for label, count in d.get(key, {}).items():
                    counter.labels(str(label), d["deployment"], d["predictor"]).inc(float(count))
            fb = d.get("feedback")
            if fb:
                self.feedback.labels(d["deployment"], d["predictor"]).inc(float(fb["count"]))
                self.reward.labels(d["deployment"], d["predictor"]).inc(float(fb["reward"]))

    def exposition(self) -> bytes:
        with self.lock:
            return generate_latest(self.registry)


def serve(port: int, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    exporter = Exporter()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = exporter.exposition()
            self.send_response(200)
            self.send_header("Content-Type", CONTENT_TYPE_LATEST)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802
            actions = {"/declare": exporter.declare, "/observe": exporter.observe}
            if self.path not in actions:
                self.send_error(404)
                return
            try:
                payload = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
                for item in payload if isinstance(payload, list) else [payload]:
                    actions[self.path](item)
            except (ValueError, KeyError, TypeError) as e:
                self.send_error(400, str(e))
                return
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:  # quiet: Prometheus scrapes every second
            pass

    server = ThreadingHTTPServer((host, port), Handler)
    return server


def post(port: int, path: str, payload: Mapping[str, Any] | Iterable[Mapping[str, Any]]) -> None:
    """Client side, for tests: POST JSON to an exporter on loopback."""
    import urllib.request

    data = json.dumps(payload if isinstance(payload, Mapping) else list(payload)).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        if r.status != 204:
            raise RuntimeError(f"exporter {path}: HTTP {r.status}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Seldon-like metrics exporter driven over HTTP")
    ap.add_argument("--port", type=int, required=True)
    args = ap.parse_args(argv)
    server = serve(args.port)
    print(f"exporter on 127.0.0.1:{args.port}/metrics", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
