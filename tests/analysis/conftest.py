"""Fixtures for the analysis tests: a real Prometheus scraping a real exporter.

Both are started once per session through `sandbox` (ManagedProcess: they die with
pytest even on SIGKILL). Tests share them and keep apart by using their own deployment
names, so no test depends on another's traffic.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sandbox import exporter as exporter_mod
from sandbox import prometheus as prom_mod
from sandbox.processes import ManagedProcess, free_port, port_open

NAMESPACE = "analysis-test"


@dataclass
class Exporter:
    port: int
    process: ManagedProcess

    @property
    def instance(self) -> str:
        return f"127.0.0.1:{self.port}"

    def declare(self, **payload: object) -> None:
        exporter_mod.post(self.port, "/declare", payload)

    def observe(self, **payload: object) -> None:
        exporter_mod.post(self.port, "/observe", payload)


@pytest.fixture(scope="session")
def workdir() -> Iterator[Path]:
    d = Path(tempfile.mkdtemp(prefix="modeldeploy-analysis-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def exporter(workdir: Path) -> Iterator[Exporter]:
    port = free_port()
    proc = ManagedProcess("exporter", [sys.executable, "-m", "sandbox.exporter", "--port", str(port)],
                          workdir / "exporter.log", port=port).start()
    try:
        proc.wait_until(lambda: port_open(port), 20)
        yield Exporter(port, proc)
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def prometheus(workdir: Path, exporter: Exporter) -> Iterator[prom_mod.Prometheus]:
    if shutil.which(prom_mod.BINARY) is None:
        pytest.skip("prometheus is not installed (Debian: apt-get install prometheus)")
    group = prom_mod.TargetGroup([exporter.instance], labels={"namespace": NAMESPACE})
    server = prom_mod.start(workdir / "prometheus", scrape_interval="1s", targets=[group])
    try:
        server.wait_for_scrape(exporter.instance, timeout=30)
        yield server
    finally:
        server.stop()


@pytest.fixture
def deployment() -> str:
    """A deployment name no other test uses."""
    return f"dep-{uuid.uuid4().hex[:8]}"
