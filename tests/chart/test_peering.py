"""peering.enabled: the chart's extra rule lets Kopf heartbeat into the peering object it
creates, and an operator of higher priority there (someone debugging) pauses the
chart's operator until it goes away."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pytest

from sandbox.harness import Objects, operator_process, wait_for
from sandbox.kubeutil import install_crds
from tests.integration.seldon_player import SeldonPlayer
from tests.integration.test_operator import mdep, phase_is

from .conftest import install, new_namespace
from .test_rbac import assert_no_permission_errors

pytestmark = pytest.mark.cluster

PEERING = ("kopf.dev", "v1", "kopfpeerings")


@pytest.fixture(scope="module")
def peered(tools, cluster, api, crds):
    install_crds(api, [Path(__file__).parent / "data" / "kopf-peering-crds.yaml"])
    watched = new_namespace(api, "md-peered")
    release = install(tools, api, cluster.kubeconfig, [watched], "--set", "peering.enabled=true")
    yield release
    release.uninstall()


def test_operator_heartbeats_into_the_peering_and_yields_to_a_higher_priority(peered, api, tmp_path) -> None:
    (watched,) = peered.watched
    objs = Objects(api, watched)
    kubeconfig = peered.operator_kubeconfig(api, tmp_path / "sa.kubeconfig")
    proc = operator_process(kubeconfig, tmp_path / "operator.log", [watched])
    proc.argv += ["--peering=modeldeploy", "--priority=0"]  # what the chart's Deployment passes
    with SeldonPlayer(api, watched):
        proc.start()
        try:
            peers = lambda: objs.custom.get_namespaced_custom_object(*PEERING[:2], watched, PEERING[2],  # noqa: E731
                                                                      "modeldeploy").get("status") or {}
            wait_for("the operator's heartbeat in the KopfPeering", peers, 20)
            objs.apply_mdep(mdep("1.0.0"))
            wait_for("1.0.0 Stable", phase_is(objs, "Stable", "1.0.0"), 30)
            # A peer of higher priority (an operator run by hand to debug) appears.
            now = dt.datetime.now(dt.timezone.utc).isoformat()
            objs.custom.patch_namespaced_custom_object(*PEERING[:2], watched, PEERING[2], "modeldeploy", {
                "status": {"debugger@laptop": {"priority": 100, "lifetime": 60, "lastseen": now}}})
            wait_for("the operator to pause", lambda: "Pausing operations" in proc.log_path.read_text(), 20)
            objs.apply_mdep(mdep("2.0.0"))
            time.sleep(3)
            assert objs.status("digits").get("candidateVersion") is None, "a paused operator acted"
            # The debugger leaves: the operator resumes and rolls out.
            objs.custom.patch_namespaced_custom_object(*PEERING[:2], watched, PEERING[2], "modeldeploy", {
                "status": {"debugger@laptop": None}})
            wait_for("2.0.0 Stable", phase_is(objs, "Stable", "2.0.0"), 40)
        finally:
            proc.stop()
            print(proc.log_path.read_text()[-3000:])
    assert_no_permission_errors(proc.log_path)
