"""The shell's pure helpers: when an object is due, which copy of an object is newer, and
whether a decided status differs from the stored one (the write-only-on-change rule that
lets event-driven reconciles settle)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone

from modeldeploy import handlers, rollout, scheduler
from modeldeploy.spec import parse
from modeldeploy.state import iso

T0 = datetime(2026, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
SPEC = parse({"model": {"name": "d", "version": "2", "uri": "file:///m/2"},
              "strategy": {"canary": {"steps": [20, 50, 100], "stepDuration": "10s"}},
              "analysis": {"interval": "3s"}})


def stored(st: rollout.Status) -> dict:
    """What the API server keeps after a merge patch of `st.to_dict()`: no None anywhere."""
    return handlers._normal(st.to_dict())  # noqa: SLF001


def test_an_absent_sha256_equals_the_none_the_core_writes() -> None:
    model = {"name": "d", "version": "1", "uri": "file:///m/1", "sha256": None, "image": "i", "replicas": 1}
    st = rollout.Status(phase="Stable", stableVersion="1", stablePredictor="v1", stableModel=model)
    assert "sha256" not in stored(st)["stableModel"]
    assert not handlers.status_changed(stored(st), st)


def test_a_field_the_decision_clears_is_a_change() -> None:
    rolling = rollout.Status(phase="Progressing", candidateVersion="2", candidatePredictor="v2", candidateWeight=20)
    done = dataclasses.replace(rolling, phase="Stable", candidateVersion=None, candidatePredictor=None, candidateWeight=0)
    assert handlers.status_changed(stored(rolling), done)
    assert not handlers.status_changed(stored(done), done)


def test_fields_the_shell_does_not_know_are_not_a_change() -> None:
    st = rollout.Status(phase="Stable")
    assert not handlers.status_changed({**stored(st), "somethingNew": 1}, st)


def progressing(step_started: datetime, last_analysis: datetime | None, next_action: datetime) -> rollout.Status:
    return rollout.Status(
        phase="Progressing", candidateVersion="2", candidatePredictor="v2", candidateWeight=20, stepWeight=20,
        stepStartedAt=iso(step_started), nextActionAt=iso(next_action),
        lastAnalysis={"time": iso(last_analysis), "outcome": "Inconclusive"} if last_analysis else None)


def test_due_is_the_cores_next_action_when_it_is_ahead() -> None:
    st = progressing(T0, None, T0 + timedelta(seconds=3))
    assert scheduler.next_due(SPEC, st, T0 + timedelta(seconds=1)) == T0 + timedelta(seconds=3)


def test_a_step_past_its_time_waits_for_the_next_analysis_not_for_the_resync() -> None:
    # The step ended at +10 s without a Pass; its nextActionAt (the earliest time) is past.
    st = progressing(T0, T0 + timedelta(seconds=12), T0 + timedelta(seconds=10))
    assert scheduler.next_due(SPEC, st, T0 + timedelta(seconds=12.1)) == T0 + timedelta(seconds=15)


def test_nothing_due_for_a_stable_object() -> None:
    assert scheduler.next_due(SPEC, rollout.Status(phase="Stable"), T0) is None


def test_newer_picks_the_higher_resource_version() -> None:
    a, b = {"metadata": {"resourceVersion": "99"}}, {"metadata": {"resourceVersion": "100"}}
    assert scheduler.newer(a, b) is b and scheduler.newer(b, a) is b
    assert scheduler.newer(None, a) is a and scheduler.newer(a, None) is a
    assert scheduler.newer(a, {"metadata": {"resourceVersion": "opaque"}}) is a


def test_an_event_on_a_whole_second_keeps_a_fraction() -> None:
    """kube-apiserver refuses an eventTime without one (a MicroTime); the client writes
    none for a whole second, which lost 1 in 1,000 history events to a 400."""
    from kubernetes import client

    from modeldeploy.events import Recorder

    meta = {"name": "digits", "namespace": "ns", "uid": "0123456789"}
    body = Recorder(None)._body({"apiVersion": "modeldeploy.io/v1alpha1", "kind": "ModelDeployment", "metadata": meta},  # noqa: SLF001
                                "digits.01234567.1", "Normal", "Deploying", "m", T0)
    wire = client.ApiClient().sanitize_for_serialization(client.CoreV1Event(**{
        "event_time": body["eventTime"], "involved_object": client.V1ObjectReference(),
        "metadata": client.V1ObjectMeta()}))
    assert wire["eventTime"] == "2026-01-01T12:00:00.000001+00:00"
