"""Session fixtures: artifacts trained once, real servers started once and always stopped."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from seldon_server import Digits, Launcher, SeldonServer, seldon_env, stop_all
from sklearn.datasets import load_digits

from modelserver.launch import INTERFACE, WORKERS


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """All artifacts from the documented train command (about 10 s)."""
    out = tmp_path_factory.mktemp("artifacts")
    result = subprocess.run(
        [sys.executable, "-m", "modelserver.train", "--out", str(out), "--seed", "0"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return out, result.stdout


@pytest.fixture(scope="session")
def artifacts(trained: tuple[Path, str]) -> Path:
    return trained[0]


@pytest.fixture(scope="session")
def digits() -> Digits:
    data = load_digits()
    return data.data, data.target


@pytest.fixture(scope="session")
def launch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Launcher]:
    """Starts servers (not waiting); every one is stopped at the end of the session,
    whatever happened in between."""
    logdir = tmp_path_factory.mktemp("server-logs")
    started: list[SeldonServer] = []

    def start(name: str, params: dict[str, Any], env: dict[str, str] | None = None, workers: int = 1,
              interface: str = INTERFACE) -> SeldonServer:  # fmt: skip
        server = SeldonServer(name, logdir, params, env or seldon_env("digits", name, name), workers, interface)
        started.append(server)
        return server.start()

    try:
        yield start
    finally:
        stop_all(started)


@pytest.fixture(scope="session")
def good_server(launch: Launcher, artifacts: Path) -> SeldonServer:
    """2.0.0 as Seldon would run it: predictor v2-0-0 of SeldonDeployment digits, with
    the image's number of workers."""
    server = launch(
        "good",
        {"model_uri": (artifacts / "2.0.0").as_uri()},
        seldon_env("digits", "v2-0-0", "2.0.0", unit="classifier", image="modeldeploy/model-server:0.1.0"),
        workers=WORKERS,
    )
    return server.wait_serving()

