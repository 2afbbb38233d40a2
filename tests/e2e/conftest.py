"""The sandbox stack the scenario modules share: one per module, as each module's
scenarios assume a stack of their own (ports, Prometheus history)."""

from __future__ import annotations

import pytest

from sandbox import stack


@pytest.fixture(scope="module")
def sandbox(cluster, tmp_path_factory):
    with stack.up(tmp_path_factory.mktemp("sandbox"), kubeconfig=cluster.kubeconfig) as s:
        yield s
