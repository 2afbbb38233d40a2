"""A real `seldon-core-microservice` process for tests, started as Seldon starts one.

Processes go through the sandbox's `ManagedProcess` (own process group, SIGKILL when
the parent dies, group kill on stop), so a failing test leaves no server behind.
"""

from __future__ import annotations

import os
import re
import signal
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import requests
from sandbox.processes import ManagedProcess, free_port, port_open

from modelserver.launch import INTERFACE, METRICS_PATH, command, seldon_env

__all__ = ["Digits", "Launcher", "SeldonServer", "ndarray", "parse_exposition", "seldon_env", "stop_all"]


def ndarray(rows: Any) -> dict[str, Any]:
    """A Seldon prediction request with `rows` as data.ndarray."""
    return {"data": {"ndarray": rows.tolist() if hasattr(rows, "tolist") else rows}}


class SeldonServer:
    """One server process; `params` are its Seldon parameters, `env` the Seldon variables."""

    def __init__(self, name: str, logdir: Path, params: Mapping[str, Any], env: Mapping[str, str],
                 workers: int = 1, interface: str = INTERFACE) -> None:  # fmt: skip
        self.name = name
        self.http_port, self.metrics_port, self.grpc_port = free_port(), free_port(), free_port()
        argv = command(self.http_port, self.metrics_port, self.grpc_port, params, workers, interface=interface)
        full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self.process = ManagedProcess(f"model server {name}", argv, logdir / f"{name}.log", self.http_port, full_env)
        self.session = requests.Session()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self) -> SeldonServer:
        self.process.start()
        return self

    def wait_serving(self, timeout: float = 60) -> SeldonServer:
        """Until both ports answer: /health/ping answers once a worker has run load(),
        whether or not the model loaded."""

        def up() -> bool:
            ping = requests.get(self.url + "/health/ping", timeout=1)
            return ping.status_code == 200 and port_open(self.metrics_port)

        self.process.wait_until(up, timeout)
        return self

    def stop(self) -> None:
        self.session.close()
        self.process.stop()

    def log(self) -> str:
        return self.process.log_path.read_text(errors="replace")

    def predict(self, payload: Any) -> requests.Response:
        return self.session.post(self.url + "/api/v1.0/predictions", json=payload, timeout=10)

    def predict_raw(self, body: str | bytes, content_type: str = "application/json") -> requests.Response:
        return self.session.post(self.url + "/api/v1.0/predictions", data=body,
                                 headers={"Content-Type": content_type}, timeout=10)  # fmt: skip

    def feedback(self, payload: Any) -> requests.Response:
        return self.session.post(self.url + "/api/v1.0/feedback", json=payload, timeout=10)

    def get(self, path: str) -> requests.Response:
        return self.session.get(self.url + path, timeout=10)

    def metrics(self) -> list[tuple[str, dict[str, str], float]]:
        text = self.session.get(f"http://127.0.0.1:{self.metrics_port}{METRICS_PATH}", timeout=10).text
        return parse_exposition(text)


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def parse_exposition(text: str) -> list[tuple[str, dict[str, str], float]]:
    """Samples of the Prometheus text format: (name, labels, value)."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _SAMPLE.match(line)
        assert m, f"unparseable exposition line: {line!r}"
        samples.append((m.group(1), dict(_LABEL.findall(m.group(2) or "")), float(m.group(3))))
    return samples


def stop_all(servers: list[SeldonServer]) -> None:
    """SIGKILL every process group, then reap. Graceful gunicorn shutdown is not under
    test and takes ~2 s a server (much more with a dozen at once on two cores)."""
    for server in servers:
        server.process.signal(signal.SIGKILL)
    for server in servers:
        server.stop()


# The digits data set: (images, labels).
Digits = tuple[Any, Any]

# launch(name, params, env=None, workers=1) -> a started (not yet serving) server.
Launcher = Callable[..., SeldonServer]
