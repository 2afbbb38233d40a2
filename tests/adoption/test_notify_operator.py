"""Notifications from the operator as shipped (`python -m modeldeploy`, a subprocess, on the
real API server): a rollout posts its transitions to a healthy receiver, while a receiver
that hangs and one that answers 500 neither delay nor change the rollout."""

from __future__ import annotations

import json
import time

import pytest

from modeldeploy import cli
from sandbox.harness import Objects, operator_process, wait_for
from tests.integration.seldon_player import SeldonPlayer
from tests.integration.test_operator import TrafficRecorder, mdep

from .receivers import Receiver

pytestmark = pytest.mark.cluster


def phase_is(objs: Objects, phase: str, version: str | None = None):
    def probe():
        st = objs.status("digits")
        return st.get("phase") == phase and (version is None or st.get("stableVersion") == version) and st
    return probe


def test_a_rollout_notifies_and_broken_receivers_do_not_slow_it(cluster, api, crds, namespace, tmp_path,
                                                                 capsys) -> None:
    objs = Objects(api, namespace)
    with Receiver() as fine, Receiver("hang") as hung, Receiver("500") as broken, SeldonPlayer(api, namespace):
        env = {"MODELDEPLOY_NOTIFY_WEBHOOKS": json.dumps([
            {"name": "fine", "url": fine.url}, {"name": "slack", "format": "slack", "url": fine.url + "/slack"},
            {"name": "hung", "url": hung.url}, {"name": "broken", "url": broken.url}]),
            "MODELDEPLOY_NOTIFY_CLUSTER": "test", "MODELDEPLOY_NOTIFY_TIMEOUT": "2",
            "MODELDEPLOY_NOTIFY_RETRIES": "3", "MODELDEPLOY_NOTIFY_BACKOFF": "0.2"}
        proc = operator_process(cluster.kubeconfig, tmp_path / "operator.log", [namespace], env=env).start()
        try:
            objs.apply_mdep(mdep("1.0.0"))
            wait_for("1.0.0 stable", phase_is(objs, "Stable", "1.0.0"), 30)
            started = time.monotonic()
            with TrafficRecorder(objs, "digits") as rec:
                objs.apply_mdep(mdep("2.0.0"))
                wait_for("2.0.0 stable", phase_is(objs, "Stable", "2.0.0"), 40)
            took = time.monotonic() - started
            print(f"rollout 1.0.0 -> 2.0.0 took {took:.1f}s with a hung and a failing receiver")
            # steps [20, 50, 100] of 2s each: about 4-6s; a hung receiver's 2s timeouts,
            # retried 3 times per message, would add tens of seconds if they were in the way
            assert took < 15, took
            assert rec.weights_of("2.0.0") == [0, 20, 50, 100]
            got = wait_for("the notifications", lambda: len(fine.received) >= 8 and fine.received, 10)
        finally:
            proc.stop()
            print(f"--- operator log ---\n{(tmp_path / 'operator.log').read_text()[-3000:]}")
    events = [r.body for r in got if r.path == "/hook"]
    assert [e["data"]["reason"] for e in events] == ["RolloutStarted", "StepAdvanced", "StepAdvanced", "Promoted"]
    assert all(e["data"]["namespace"] == namespace and e["data"]["cluster"] == "test" for e in events)
    seqs = [e["data"]["seq"] for e in events]  # the status.history entries they record
    assert None not in seqs and seqs == sorted(set(seqs)), seqs
    assert events[-1]["type"] == "io.modeldeploy.rollout.promoted" and events[-1]["data"]["stableVersion"] == "2.0.0"
    slack = [r.body["text"] for r in got if r.path == "/hook/slack"]
    assert len(slack) == 4 and f"*{namespace}/digits on test*: Promoted" in slack[-1]
    assert len(broken.attempts) >= 2  # retried
    assert hung.attempts  # tried, and never answered
    # the rollout's own record is what it would be without notifications
    reasons = [r for _, r, _ in objs.events_until("digits", "Promoted")]
    assert reasons.index("RolloutStarted") < reasons.index("Promoting") < reasons.index("Promoted")
    # and the plugin reads the operator's status.history
    capsys.readouterr()
    code = cli.main(["history", "digits", "-n", namespace, "--kubeconfig", str(cluster.kubeconfig), "-o", "json"])
    doc = json.loads(capsys.readouterr().out)
    assert code == 0 and doc["source"] == "status.history"
    assert [(g["kind"], g["version"], g["result"]) for g in doc["rollouts"]][-1] == ("rollout", "2.0.0", "Promoted")
