"""Events as Kubernetes' recorder posts them, from the operator as shipped: repeats count up
on one Event, a paused rollout does not repeat its verdict, and every transition in
status.history has exactly one Event even when the operator is SIGKILLed right after it
wrote status (before it could post the Event)."""

from __future__ import annotations

import threading
import time

from kubernetes import watch
from urllib3.exceptions import ProtocolError

from modeldeploy.events import history_event_name
from sandbox.harness import MDEP, Objects, wait_for

from .test_operator import mdep, objs, operator, phase_is, seldon  # noqa: F401 - fixtures

ERRORS = {"interval": "1s", "errorLimit": 2, "metrics": [{"name": "p99", "latency": {"maxMs": 250}}]}


def modeldeploy_events(objs: Objects, name: str) -> list:
    items = objs.core.list_namespaced_event(objs.namespace, field_selector=f"involvedObject.name={name}").items
    return [e for e in items if e.source and e.source.component == "modeldeploy"]


def test_repeated_verdicts_count_up_and_a_paused_rollout_does_not_repeat_itself(objs, seldon, operator) -> None:
    objs.apply_mdep(mdep("1.0.0"))
    wait_for("1.0.0 Stable", phase_is(objs, "Stable", "1.0.0"), 30)
    # Metrics are configured but the operator has no Prometheus: every analysis is the
    # same Error, and errorLimit 2 pauses the rollout.
    objs.apply_mdep(mdep("2.0.0", analysis=ERRORS))
    paused = wait_for("Paused on errors", phase_is(objs, "Paused"), 30)
    assert paused["pauseReason"] == "errors"
    objs.events_until("digits", "Paused")
    time.sleep(1.5)  # the verdict of the pausing analysis has been posted
    before = {e.metadata.name: e.count for e in modeldeploy_events(objs, "digits")}
    (errors,) = [e for e in modeldeploy_events(objs, "digits") if e.reason == "AnalysisError"]
    assert errors.count == 2, "two identical verdicts are one Event with count 2"
    assert errors.last_timestamp > errors.first_timestamp or errors.count > 1
    last = paused["lastAnalysis"]["time"]
    # Paused on errors, the operator keeps analysing (to resume by itself) every second.
    wait_for("more analyses while paused", lambda: objs.status("digits")["lastAnalysis"]["time"] > last, 10)
    time.sleep(4)
    after = {e.metadata.name: e.count for e in modeldeploy_events(objs, "digits")}
    assert after == before, "an unchanged verdict while paused was posted again"


def posted_history(objs: Objects, name: str) -> tuple[list[dict], dict[str, list]]:
    obj = objs.mdep(name)
    history = (obj.get("status") or {}).get("history") or []
    by_name: dict[str, list] = {}
    for e in modeldeploy_events(objs, name):
        by_name.setdefault(e.metadata.name, []).append(e)
    return history, by_name


def assert_each_transition_posted_once(objs: Objects, name: str) -> list[dict]:
    history, by_name = posted_history(objs, name)
    assert history, "status.history is empty"
    meta = objs.mdep(name)["metadata"]
    for entry in history:
        events = by_name.get(history_event_name(meta, entry["seq"]), [])
        assert len(events) == 1 and events[0].count == 1, (entry, events)
        assert (events[0].reason, events[0].message) == (entry["reason"], entry["message"])
    transitions = {e["reason"] for e in history}
    extra = [n for n, evs in by_name.items() if evs[0].reason in transitions and n not in
             {history_event_name(meta, e["seq"]) for e in history}]
    assert not extra, f"transition events outside the history: {extra}"
    return history


def test_a_restarted_operator_posts_the_missing_history_events_and_no_others(objs, seldon, operator) -> None:
    objs.apply_mdep(mdep("1.0.0"))
    wait_for("1.0.0 Stable", phase_is(objs, "Stable", "1.0.0"), 30)
    objs.apply_mdep(mdep("2.0.0"))
    wait_for("2.0.0 Stable", phase_is(objs, "Stable", "2.0.0"), 40)
    objs.events_until("digits", "Promoted")
    operator.kill()
    history = assert_each_transition_posted_once(objs, "digits")
    # As if the operator had died after writing status, before posting the last two.
    meta = objs.mdep("digits")["metadata"]
    for entry in history[-2:]:
        objs.core.delete_namespaced_event(history_event_name(meta, entry["seq"]), objs.namespace)
    operator.start()
    wanted = {history_event_name(meta, e["seq"]) for e in history}
    wait_for("the lost events re-posted", lambda: wanted <= set(posted_history(objs, "digits")[1]), 20)
    time.sleep(1)
    assert_each_transition_posted_once(objs, "digits")


def test_kills_right_after_status_writes_lose_and_duplicate_no_event(cluster, objs, seldon, operator) -> None:
    """A watcher SIGKILLs the operator the moment it sees a new history entry in status,
    i.e. within milliseconds of the status write, before or while its Event is posted."""
    objs.apply_mdep(mdep("1.0.0"))
    wait_for("1.0.0 Stable", phase_is(objs, "Stable", "1.0.0"), 30)
    kills, stop = [], threading.Event()

    def killer() -> None:
        seen = len(objs.status("digits").get("history") or [])
        stream = watch.Watch().stream(objs.custom.list_namespaced_custom_object, *MDEP[:2], objs.namespace, MDEP[2],
                                      field_selector="metadata.name=digits", timeout_seconds=90)
        try:
            for ev in stream:
                history = (ev["object"].get("status") or {}).get("history") or []
                if len(history) > seen and len(kills) < 6 and not stop.is_set():
                    operator.kill()
                    kills.append(history[-1]["reason"])
                    operator.start()
                seen = len(history)
                if stop.is_set():
                    return
        except ProtocolError:  # the stream cut when the test ends; too few kills fail below
            return

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    time.sleep(1)  # the watch is established
    spec = {"strategy": {"canary": {"steps": [10, 20, 40, 60, 100], "stepDuration": "2s"}, "progressDeadline": "30s"}}
    objs.apply_mdep(mdep("2.0.0", **spec))
    wait_for("2.0.0 Stable", phase_is(objs, "Stable", "2.0.0"), 120)
    stop.set()
    objs.events_until("digits", "Promoted")
    time.sleep(1)
    print(f"killed right after: {kills}")
    assert len(kills) >= 4, kills
    history = assert_each_transition_posted_once(objs, "digits")
    assert [e["reason"] for e in history].count("StepAdvanced") == 4
