"""A private Prometheus server on loopback, for tests and the sandbox.

Debian's ``prometheus`` binary, never its system service: each instance gets a free
port, a temporary TSDB, and a generated configuration with a short scrape interval
(1 s by default, so a test sees its data within seconds). Scrape targets live in a
``file_sd`` JSON file that `set_targets` rewrites atomically; Prometheus watches the file,
so model servers and exporters can come and go without a restart. Per-group labels
(``namespace``, ``__metrics_path__``) stand in for what Kubernetes service discovery and
relabelling add on a cluster.

Run ``python -m sandbox.prometheus [host:port/path ...]`` to keep one up for a person.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .processes import ManagedProcess, StartupError, free_port, run_in_foreground

BINARY = os.environ.get("MODELDEPLOY_PROMETHEUS", "prometheus")
STARTUP_TIMEOUT = 30.0


@dataclass(frozen=True)
class TargetGroup:
    """Targets scraped alike: ``host:port`` strings, labels added to every series."""

    targets: Sequence[str]
    labels: Mapping[str, str] = field(default_factory=dict)
    metrics_path: str = "/metrics"

    def to_file_sd(self) -> dict[str, Any]:
        return {"targets": list(self.targets), "labels": {**self.labels, "__metrics_path__": self.metrics_path}}


def config(scrape_interval: str, targets_file: Path) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": scrape_interval, "scrape_timeout": scrape_interval,
                   "evaluation_interval": scrape_interval},
        "scrape_configs": [{
            "job_name": "modeldeploy",
            # Keep the exporters' own labels (a predictor's deployment_name) over ours.
            "honor_labels": True,
            "file_sd_configs": [{"files": [str(targets_file)], "refresh_interval": "1s"}],
        }],
    }


@dataclass
class Prometheus:
    """A running server; `stop()` (or the context manager) ends it and removes its data."""

    url: str
    port: int
    workdir: Path
    targets_file: Path
    process: ManagedProcess
    _own_workdir: bool = False

    def start_again(self) -> None:
        """Start the stopped server on its own data (an outage's end) and wait until ready."""
        self.process.start()
        self.process.wait_until(lambda: _ready(self.url), STARTUP_TIMEOUT, 0.1)

    def set_targets(self, groups: Sequence[TargetGroup]) -> None:
        tmp = self.targets_file.with_suffix(".tmp")
        tmp.write_text(json.dumps([g.to_file_sd() for g in groups]))
        tmp.replace(self.targets_file)  # atomic: Prometheus never reads half a file

    def api(self, path: str, **params: str) -> Any:
        query = urllib.parse.urlencode(params)
        with urllib.request.urlopen(f"{self.url}{path}{'?' + query if query else ''}", timeout=5) as r:
            body = json.load(r)
        if body.get("status") != "success":
            raise RuntimeError(f"Prometheus {path}: {body}")
        return body["data"]

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        params = {"query": promql}
        if at is not None:
            params["time"] = f"{at:.3f}"
        return self.api("/api/v1/query", **params)["result"]

    def wait_until(self, ready: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            if not self.process.running():
                raise self.process.failure("exited")
            if time.monotonic() > deadline:
                raise TimeoutError(f"Prometheus at {self.url}: {what} not met after {timeout:.0f}s")
            time.sleep(0.2)

    def wait_for_scrape(self, instance: str, after: float | None = None, timeout: float = 20.0) -> float:
        """Wait for a successful scrape of `instance` (later than `after`); its timestamp."""
        found: list[float] = []

        def scraped() -> bool:
            # timestamp() of a bare selector is the sample's own time (of anything else,
            # e.g. `up == 1`, it is the evaluation time), hence two queries.
            up = self.query(f'up{{instance="{instance}"}}')
            result = self.query(f'timestamp(up{{instance="{instance}"}})')
            if up and result and up[0]["value"][1] == "1":
                ts = float(result[0]["value"][1])
                if after is None or ts > after:
                    found.append(ts)
                    return True
            return False

        self.wait_until(scraped, timeout, f"a scrape of {instance}")
        return found[-1]

    def stop(self) -> None:
        self.process.stop()
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Prometheus:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _ready(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as r:
        return r.status == 200


def start(workdir: Path | None = None, scrape_interval: str = "1s",
          targets: Sequence[TargetGroup] = (), binary: str = BINARY) -> Prometheus:
    """Start Prometheus on a free loopback port and wait until it is ready."""
    if shutil.which(binary) is None:
        raise StartupError(f"{binary}: not found on PATH (Debian: apt-get install prometheus)")
    own = workdir is None
    workdir = Path(tempfile.mkdtemp(prefix="modeldeploy-prom-")) if workdir is None else workdir
    workdir.mkdir(parents=True, exist_ok=True)
    targets_file = workdir / "targets.json"
    config_file = workdir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config(scrape_interval, targets_file)))
    port = free_port()
    proc = ManagedProcess(
        "prometheus",
        [
            binary,
            f"--config.file={config_file}",
            f"--storage.tsdb.path={workdir / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--storage.tsdb.retention.time=1d",
            "--log.level=warn",
        ],
        workdir / "prometheus.log",
        port=port,
    )
    prom = Prometheus(f"http://127.0.0.1:{port}", port, workdir, targets_file, proc, own)
    prom.set_targets(targets)
    try:
        prom.start_again()
        return prom
    except BaseException:
        prom.stop()
        raise


def main(argv: list[str] | None = None) -> int:
    """Keep a Prometheus up in the foreground, scraping host:port[/path] arguments."""
    groups = []
    for arg in (sys.argv[1:] if argv is None else argv):
        hostport, _, path = arg.partition("/")
        groups.append(TargetGroup([hostport], metrics_path="/" + path if path else "/metrics"))
    try:
        prom = start(targets=groups)
    except StartupError as e:
        print(f"prometheus failed to start: {e}", file=sys.stderr)
        return 1
    print(f"Prometheus ready at {prom.url} (data in {prom.workdir}); Ctrl-C stops it.", flush=True)
    try:
        if run_in_foreground([prom.process]):
            print(f"prometheus exited; see {prom.process.log_path}", file=sys.stderr)
            return 1
    finally:
        prom.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
