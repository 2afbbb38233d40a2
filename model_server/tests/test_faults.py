"""Fault injection and the experiment artifacts, served for real."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from seldon_server import Digits, Launcher, SeldonServer, ndarray, stop_all


def distribution(server: SeldonServer, X: np.ndarray) -> np.ndarray:
    response = server.predict(ndarray(X))
    assert response.status_code == 200, response.text
    counts = np.bincount(np.asarray(response.json()["data"]["ndarray"]).argmax(axis=1), minlength=10)
    return counts / counts.sum()


def jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    m = (p + q) / 2
    kl = lambda a, b: float(np.sum(a[a > 0] * np.log(a[a > 0] / b[a > 0])))  # noqa: E731
    return 0.5 * kl(p, m) + 0.5 * kl(q, m)


@pytest.fixture(scope="module")
def fault_servers(launch: Launcher, artifacts: Path) -> Iterator[dict[str, SeldonServer]]:
    uri = lambda name: (artifacts / name).as_uri()  # noqa: E731
    servers = {
        "baseline": launch("baseline", {"model_uri": uri("1.0.0")}),
        "slow": launch("slow", {"model_uri": uri("slow")}),
        "slow-off": launch("slow-off", {"model_uri": uri("slow"), "latency_ms": 0.0}),
        "skewed": launch("skewed", {"model_uri": uri("skewed")}),
        "errors": launch("errors", {"model_uri": uri("2.0.0"), "error_rate": 1.0}),
    }
    for server in servers.values():
        server.wait_serving(timeout=120)
    yield servers
    stop_all(list(servers.values()))  # now, not at session end: they hold memory


def timed(server: SeldonServer, X: np.ndarray) -> float:
    started = time.monotonic()
    assert server.predict(ndarray(X)).status_code == 200
    return time.monotonic() - started


def test_slow_adds_latency(fault_servers: dict[str, SeldonServer], digits: Digits) -> None:
    X, _ = digits
    slow = fault_servers["slow"]
    assert slow.get("/health/status").json()["jsonData"]["faults"] == {"latency_ms": 300.0}
    assert min(timed(slow, X[:1]) for _ in range(3)) >= 0.3


def test_parameters_override_the_card(fault_servers: dict[str, SeldonServer], digits: Digits) -> None:
    X, _ = digits
    fast = fault_servers["slow-off"]
    assert fast.get("/health/status").json()["jsonData"]["faults"] == {}
    assert min(timed(fast, X[:1]) for _ in range(3)) < 0.2


def test_error_rate_fails_predictions_but_not_health(fault_servers: dict[str, SeldonServer], digits: Digits) -> None:
    X, _ = digits
    server = fault_servers["errors"]
    for _ in range(3):
        response = server.predict(ndarray(X[:2]))
        assert response.status_code == 500
        assert response.json()["status"]["reason"] == "INJECTED_FAULT"
    assert server.get("/health/status").status_code == 200
    assert not [s for s in server.metrics() if s[0] == "modeldeploy_predictions_total"]


def test_baseline_is_weaker_but_alike(fault_servers: dict[str, SeldonServer], good_server: SeldonServer,
                                      digits: Digits) -> None:  # fmt: skip
    X, y = digits
    base = np.asarray(fault_servers["baseline"].predict(ndarray(X)).json()["data"]["ndarray"]).argmax(axis=1)
    better = np.asarray(good_server.predict(ndarray(X)).json()["data"]["ndarray"]).argmax(axis=1)
    assert 0.8 <= (base == y).mean() <= 0.93 < 0.95 <= (better == y).mean()
    # A healthy upgrade must pass an output-distribution check.
    assert jensen_shannon(distribution(fault_servers["baseline"], X), distribution(good_server, X)) < 0.02


def test_skewed_shifts_the_class_distribution(fault_servers: dict[str, SeldonServer], digits: Digits) -> None:
    X, _ = digits
    skewed = fault_servers["skewed"]
    faults = skewed.get("/health/status").json()["jsonData"]["faults"]
    assert faults == {"skew_classes": ["0", "1"], "skew_logit_bias": 20.0}
    shifted = distribution(skewed, X)
    assert shifted[0] + shifted[1] > 0.5
    assert jensen_shannon(distribution(fault_servers["baseline"], X), shifted) >= 0.15
    # The exported counter shows the same shift.
    counts = {labels["class"]: v for n, labels, v in skewed.metrics() if n == "modeldeploy_predictions_total"}
    assert counts["0"] + counts["1"] > 0.5 * sum(counts.values())
