"""Notifications against real HTTP receivers on loopback: the bodies (CloudEvents, Slack),
who gets what (webhook filters, the per-object annotation), retries with backoff, and a
receiver that hangs or fails never delaying the caller or the other webhooks."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from modeldeploy import notify
from modeldeploy.notify import NotifyConfigError, Notifier, Settings, Webhook
from modeldeploy.state import Decision, Event, Status

from .receivers import Receiver

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2025, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
MDEP = {"metadata": {"name": "digits", "namespace": "team-a", "uid": "u-1", "generation": 3}}
STARTED = Decision(Status(phase="Progressing", stableVersion="1.0.0", candidateVersion="2.0.0", candidateWeight=0),
                   (Event("Normal", "RolloutStarted", "Rolling out 2.0.0 (stable 1.0.0)"),
                    Event("Normal", "StepAdvanced", "2.0.0 is ready; step 1/4: 10% of traffic.")), ())
ROLLED_BACK = Decision(Status(phase="Failed", stableVersion="1.0.0",
                              lastRollout={"version": "2.0.0", "result": "RolledBack"}),
                       (Event("Warning", "RolledBack", "2.0.0 was rolled back (p99 too slow)"),), ())
QUIET = Decision(Status(phase="Progressing"), (Event("Normal", "AnalysisPass", "all checks pass"),), ())
FAST = Settings(timeout=0.5, retries=3, backoff=0.05, backoff_max=0.2)


def notifier(*hooks: Webhook, settings: Settings = FAST) -> Notifier:
    return Notifier(hooks, settings)


def test_cloudevents_and_slack_bodies_for_each_transition() -> None:
    with Receiver() as ce, Receiver() as sl:
        n = notifier(Webhook("generic", ce.url), Webhook("slack", sl.url, "slack"))
        n.on_decision(MDEP, STARTED, NOW)
        n.on_decision(MDEP, QUIET, NOW)  # an analysis is no transition
        n.on_decision(MDEP, ROLLED_BACK, NOW)
        assert n.flush(10)
        n.stop()
    events = [r.body for r in ce.received]
    assert [e["type"] for e in events] == ["io.modeldeploy.rollout.started", "io.modeldeploy.rollout.stepAdvanced",
                                           "io.modeldeploy.rollout.rolledBack"]
    first = events[0]
    assert first["specversion"] == "1.0" and first["time"] == "2025-01-01T12:00:00Z"
    assert first["source"] == "/apis/modeldeploy.io/v1alpha1/namespaces/team-a/modeldeployments/digits"
    assert first["subject"] == "team-a/digits" and len({e["id"] for e in events}) == 3
    assert first["data"].items() >= {"name": "digits", "namespace": "team-a", "phase": "Progressing",
                                     "stableVersion": "1.0.0", "candidateVersion": "2.0.0", "generation": 3}.items()
    assert events[2]["data"]["candidateVersion"] == "2.0.0" and events[2]["data"]["severity"] == "Warning"
    assert ce.received[0].headers["Content-Type"].startswith("application/cloudevents+json")
    texts = [r.body["text"] for r in sl.received]
    assert len(texts) == 3 and "*team-a/digits*: RolledBack" in texts[2] and "p99 too slow" in texts[2]
    assert sl.received[2].body["attachments"][0]["color"] == "danger"


def test_webhook_event_filters_and_the_per_object_annotation() -> None:
    with Receiver() as all_, Receiver() as results, Receiver() as optin:
        n = notifier(Webhook("all", all_.url), Webhook("results", results.url, events=frozenset({"rolledBack"})),
                     Webhook("oncall", optin.url, default=False))
        n.on_decision(MDEP, STARTED, NOW)
        n.on_decision(MDEP, ROLLED_BACK, NOW)
        silenced = {"metadata": {**MDEP["metadata"], "annotations": {notify.ANNOTATION: "false"}}}
        n.on_decision(silenced, ROLLED_BACK, NOW)
        named = {"metadata": {**MDEP["metadata"], "annotations": {notify.ANNOTATION: "oncall, results"}}}
        n.on_decision(named, STARTED, NOW)
        n.on_decision(named, ROLLED_BACK, NOW)
        assert n.flush(10)
        n.stop()
    assert [r.body["data"]["reason"] for r in all_.received] == ["RolloutStarted", "StepAdvanced", "RolledBack"]
    assert [r.body["data"]["reason"] for r in results.received] == ["RolledBack", "RolledBack"]
    assert [r.body["data"]["reason"] for r in optin.received] == ["RolloutStarted", "StepAdvanced", "RolledBack"]


def test_a_failing_receiver_is_retried_with_backoff_and_keeps_order() -> None:
    with Receiver("fail:2") as flaky:
        n = notifier(Webhook("flaky", flaky.url))
        n.on_decision(MDEP, STARTED, NOW)
        assert n.flush(10)
        n.stop()
    assert [r.body["data"]["reason"] for r in flaky.received] == ["RolloutStarted", "StepAdvanced"]
    gaps = [b - a for a, b in zip(flaky.attempts, flaky.attempts[1:])]
    assert len(flaky.attempts) == 4 and gaps[0] >= 0.04 and gaps[1] >= 0.09, gaps  # 0.05s, then 0.1s
    assert (n.stats("flaky").delivered, n.stats("flaky").failed) == (2, 0)


def test_a_500_receiver_gets_the_retries_then_is_given_up_and_a_404_is_not_retried() -> None:
    with Receiver("500") as broken, Receiver("404") as gone:
        n = notifier(Webhook("broken", broken.url), Webhook("gone", gone.url))
        started = time.monotonic()
        n.on_decision(MDEP, ROLLED_BACK, NOW)
        assert time.monotonic() - started < 0.05
        assert n.flush(10)
        n.stop()
    assert len(broken.attempts) == 1 + FAST.retries and n.stats("broken").failed == 1
    assert len(gone.attempts) == 1 and n.stats("gone").failed == 1


def test_a_hanging_receiver_delays_neither_the_caller_nor_the_other_webhooks() -> None:
    settings = Settings(timeout=1.0, retries=0, queue_size=3)
    with Receiver("hang") as hung, Receiver() as fine:
        n = notifier(Webhook("hung", hung.url), Webhook("fine", fine.url), settings=settings)
        started = time.monotonic()
        for i in range(5):
            before = time.monotonic()
            n.on_decision(MDEP, STARTED, NOW)  # 2 notifications each: 10 for a queue of 3
            assert time.monotonic() - before < 0.05
            assert len(fine.wait_for(2 * (i + 1), timeout=2)) == 2 * (i + 1)
        # behind the hung receiver, the first message alone would have waited its 1s timeout
        assert fine.received[-1].time - started < 1.0, fine.received[-1].time - started
        assert n.stats("hung").dropped >= 5  # the queue is bounded: memory is too
        assert n.flush(15)
        n.stop()
    stats = n.stats("hung")
    assert stats.failed + stats.dropped == 10 and stats.delivered == 0
    assert stats.attempts == stats.failed and len(hung.attempts) == stats.failed  # each timed out


def test_on_decision_reads_the_environment_and_never_raises(monkeypatch) -> None:
    with Receiver() as r:
        monkeypatch.setenv("MODELDEPLOY_NOTIFY_WEBHOOKS", json.dumps([{"name": "ops", "urlEnv": "OPS_URL"}]))
        monkeypatch.setenv("OPS_URL", r.url)
        monkeypatch.setenv("MODELDEPLOY_NOTIFY_CLUSTER", "prod-eu")
        notify.reset()
        try:
            notify.on_decision(MDEP, Status(phase="Stable"), ROLLED_BACK, NOW)
            notify.on_decision(MDEP, ROLLED_BACK.status, ROLLED_BACK, NOW)  # status unchanged: already told
            assert len(r.wait_for(1)) == 1
            time.sleep(0.2)
            assert len(r.received) == 1 and r.received[0].body["data"]["cluster"] == "prod-eu"
            monkeypatch.setenv("MODELDEPLOY_NOTIFY_WEBHOOKS", "[{")
            notify.reset()
            notify.on_decision(MDEP, Status(), ROLLED_BACK, NOW)  # logged, notifications off; no exception
        finally:
            notify.reset()


@pytest.mark.parametrize("raw,env,fragment", [
    ({"name": "x"}, {}, "must be a JSON list"),
    ([{"url": "http://x"}], {}, "[0].name must be a unique"),
    ([{"name": "a", "url": "ftp://x"}], {}, "[0].url must be an http(s) URL"),
    ([{"name": "a", "urlEnv": "HOOK"}], {}, "the variable HOOK (from the Secret) must be"),
    ([{"name": "a", "url": "http://x", "format": "teams"}], {}, "[0].format must be one of cloudevents, slack"),
    ([{"name": "a", "url": "http://x", "events": ["promote"]}], {}, "[0].events: unknown ['promote']; use started"),
])
def test_bad_webhook_settings_name_the_field(raw, env, fragment) -> None:
    with pytest.raises(NotifyConfigError) as e:
        notify.webhooks_from(raw, env)
    assert fragment in str(e.value)


def test_the_chart_schema_and_the_operator_know_the_same_transitions() -> None:
    schema = json.loads((REPO / "values.schema.json").read_text())
    hook = schema["properties"]["notifications"]["properties"]["webhooks"]["items"]
    assert hook["properties"]["events"]["items"]["enum"] == list(notify.TRANSITION_NAMES)
    readme = (REPO / "README.md").read_text()
    assert all(f"`{t}`" in readme for t in notify.TRANSITION_NAMES)
