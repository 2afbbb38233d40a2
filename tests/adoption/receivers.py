"""Real HTTP receivers on loopback for the notification tests: one that answers, one
that fails N times before answering, one that always fails, one that never answers."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Received:
    time: float
    path: str
    headers: dict[str, str]
    body: Any


class Receiver:
    """`mode`: "ok"; "fail:N" (HTTP 500 N times, then 200); "500" (always); "hang"
    (reads the request, never answers until the receiver stops); "404"."""

    def __init__(self, mode: str = "ok") -> None:
        self.mode, self.received, self.attempts = mode, [], []
        self._release = threading.Event()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.attempts.append(time.monotonic())
                status = receiver._status()
                if status is None:
                    receiver._release.wait(60)
                    return
                if status == 200:
                    receiver.received.append(Received(time.monotonic(), self.path, dict(self.headers),
                                                      json.loads(body)))
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def _status(self) -> int | None:
        if self.mode == "hang":
            return None
        if self.mode.startswith("fail:"):
            return 500 if len(self.attempts) <= int(self.mode.split(":")[1]) else 200
        return {"ok": 200, "500": 500, "404": 404}[self.mode]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def wait_for(self, n: int, timeout: float = 10) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < n and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.received

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()
