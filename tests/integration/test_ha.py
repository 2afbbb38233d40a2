"""Two operator replicas with Kopf peering, as the chart runs them with replicas: 2: one
acts, the other stands by, and takes over a rollout when the active one is SIGKILLed in
the middle of it, with no step skipped or repeated."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sandbox.harness import Objects, operator_process, wait_for
from sandbox.kubeutil import install_crds

from .seldon_player import SeldonPlayer
from .test_operator import TrafficRecorder, mdep, phase_is

def event_counts(objs: Objects, name: str) -> dict[str, int]:
    """reason -> how many times the operator posted it (an aggregated Event counts many)."""
    out: dict[str, int] = {}
    for e in objs.core.list_namespaced_event(objs.namespace, field_selector=f"involvedObject.name={name}").items:
        if e.source and e.source.component == "modeldeploy":
            out[e.reason] = out.get(e.reason, 0) + (e.count or 1)
    return out


PEERING = ("kopf.dev", "v1", "kopfpeerings")
PEERING_CRDS = Path(__file__).parents[1] / "chart" / "data" / "kopf-peering-crds.yaml"
LIFETIME = 6  # seconds without a heartbeat before the standby presumes the active dead


@pytest.fixture
def peered(cluster, api, crds, namespace, tmp_path):
    install_crds(api, [PEERING_CRDS])
    objs = Objects(api, namespace)
    objs.custom.create_namespaced_custom_object(*PEERING[:2], namespace, PEERING[2], {
        "apiVersion": "kopf.dev/v1", "kind": "KopfPeering", "metadata": {"name": "modeldeploy"}})

    def replica(name: str, priority: int):
        proc = operator_process(cluster.kubeconfig, tmp_path / f"{name}.log", [namespace],
                                env={"MODELDEPLOY_PEERING_LIFETIME": str(LIFETIME)})
        proc.argv += ["--peering=modeldeploy", f"--priority={priority}"]
        return proc

    active, standby = replica("active", 20), replica("standby", 10)
    try:
        with SeldonPlayer(api, namespace):
            yield objs, active, standby
    finally:
        for proc in (active, standby):
            proc.kill()  # the test is over: no need to wait out Kopf's graceful shutdown
            print(f"--- {proc.log_path.name} ---\n{proc.log_path.read_text()[-3000:]}")


def test_standby_finishes_the_rollout_when_the_active_replica_is_killed(peered) -> None:
    objs, active, standby = peered
    active.start()
    peers = lambda: objs.custom.get_namespaced_custom_object(  # noqa: E731
        *PEERING[:2], objs.namespace, PEERING[2], "modeldeploy").get("status") or {}
    wait_for("the active replica's heartbeat", peers, 20)
    standby.start()
    wait_for("both heartbeats", lambda: len(peers()) == 2, 20)
    time.sleep(2)
    # Kopf starts paused until it has read the peering; the standby never resumes.
    assert "Resuming operations" not in standby.log_path.read_text()
    objs.apply_mdep(mdep("1.0.0"))
    wait_for("1.0.0 Stable", phase_is(objs, "Stable", "1.0.0"), 30)
    spec = {"strategy": {"canary": {"steps": [10, 20, 40, 60, 100], "stepDuration": "3s"}, "progressDeadline": "30s"}}
    with TrafficRecorder(objs, "digits") as rec:
        objs.apply_mdep(mdep("2.0.0", **spec))
        wait_for("step 2", lambda: objs.status("digits").get("step") == 1, 30)
        assert "RolloutStarted" not in standby.log_path.read_text(), "the standby acted while the active one lived"
        active.kill()  # SIGKILL: its peering entry stays until it expires
        killed = time.monotonic()
        wait_for("the standby to resume", lambda: "Resuming operations" in standby.log_path.read_text(), LIFETIME * 4)
        took_over = time.monotonic() - killed
        wait_for("2.0.0 stable", phase_is(objs, "Stable", "2.0.0"), 60)
        time.sleep(0.3)
    print(f"standby resumed {took_over:.1f}s after the kill")
    assert rec.weights_of("2.0.0") == [0, 10, 20, 40, 60, 100]
    assert rec.weights_of("1.0.0") == [100, 90, 80, 60, 40, 0]
    objs.events_until("digits", "Promoted")
    counts = event_counts(objs, "digits")  # repeats of one event count up: sum the counts
    assert counts["StepAdvanced"] == 4 and counts["Promoting"] == 1 and counts["Promoted"] == 1, counts
    assert "Promoted" in standby.log_path.read_text()  # the standby finished it
