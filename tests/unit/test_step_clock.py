"""A step's clock starts when its routing is first seen in the SeldonDeployment, to the
millisecond, whichever of the shell's writes a crash interrupts: status written but
Seldon not patched, Seldon patched but the routing not yet observed."""

from __future__ import annotations

from datetime import timedelta

from modeldeploy import rollout
from modeldeploy.spec import parse
from modeldeploy.state import parse_time

from .rollout_sim import make_spec, rolled_out

STEP = 60.0  # make_spec's stepDuration "1m"; analyses every 30 s


def canary():
    sim = rolled_out(make_spec("1.0.0"), wait=0.25)
    assert sim.weights()["2.0.0"] == 10 and sim.status["stepObserved"] is True
    return sim


def advance_with_crash(sim, **crash) -> None:
    """Ticks until the decision to go from 10 % to 25 %, crashing the shell as told."""
    for _ in range(10):
        before = sim.status["stepWeight"]
        sim.tick(30, **crash)
        if sim.status["stepWeight"] != before:
            return
    raise AssertionError("never advanced")


def step_end(sim) -> float:
    """Seconds from stepStartedAt to the next routing change, ticking every second."""
    started, weight = parse_time(sim.status["stepStartedAt"]), sim.weights()["2.0.0"]
    while sim.weights()["2.0.0"] == weight:
        sim.tick(1)
    return (sim.now - started).total_seconds()


def test_the_clock_starts_at_the_observation_with_milliseconds() -> None:
    sim = canary()
    stamp = sim.status["stepStartedAt"]
    assert parse_time(stamp) == sim.now and stamp.endswith(".250Z"), stamp
    seconds = step_end(sim)
    assert STEP <= seconds <= STEP + 30 + 1  # the first Pass after the step's time: at most one interval late


def test_killed_after_the_status_write_the_step_starts_when_seldon_shows_it() -> None:
    sim = canary()
    advance_with_crash(sim, crash_before_apply=True)
    assert sim.status["stepWeight"] == 25 and sim.weights()["2.0.0"] == 10 and not sim.status["stepObserved"]
    sim.tick(90)  # down 90 s, longer than the step: users still have 10 %
    assert sim.weights()["2.0.0"] == 25, "the restarted shell patches Seldon"
    assert parse_time(sim.status["stepStartedAt"]) == sim.now and sim.status["stepObserved"]
    seconds = step_end(sim)
    assert STEP <= seconds <= STEP + 31


def test_killed_after_the_seldon_patch_the_step_starts_at_the_first_observation() -> None:
    sim = canary()
    advance_with_crash(sim, crash_before_observe=True)
    assert sim.weights()["2.0.0"] == 25 and not sim.status["stepObserved"]
    decided = parse_time(sim.status["stepStartedAt"])
    assert not rollout.analysis_due(parse(sim.spec), rollout.Status.from_dict(sim.status), decided + timedelta(hours=1))
    sim.tick(7.5)  # the restarted operator's first tick sees the routing
    assert parse_time(sim.status["stepStartedAt"]) == sim.now and sim.status["stepObserved"]
    seconds = step_end(sim)
    assert STEP <= seconds <= STEP + 31


def test_nothing_is_due_for_a_step_nobody_has_seen() -> None:
    sim = canary()
    advance_with_crash(sim, crash_before_apply=True)
    st = rollout.Status.from_dict(sim.status)
    later = sim.now + timedelta(seconds=STEP * 10)
    assert rollout.next_action_at(parse(sim.spec), st, sim.now) is None
    assert not rollout.analysis_due(parse(sim.spec), st, later)


def test_the_candidates_evidence_starts_at_its_first_observed_traffic_and_stays_there() -> None:
    """trafficStartedAt: the first step's observed start, kept through later steps and
    crashes, so that both versions' evidence covers the same time; a new rollout clears it."""
    sim = canary()
    first = sim.status["stepStartedAt"]
    assert sim.status["trafficStartedAt"] == first
    assert parse_time(first) > parse_time(sim.status["rolloutStartedAt"])  # the candidate had to start first
    advance_with_crash(sim, crash_before_observe=True)
    sim.tick(7.5)
    assert sim.status["stepWeight"] == 25 and sim.status["stepStartedAt"] != first
    assert sim.status["trafficStartedAt"] == first
    assert rollout.Status.from_dict(sim.status).trafficStartedAt == first
    sim.bump("3.0.0")  # superseded: a new rollout, whose candidate has had no traffic yet
    sim.tick()
    assert sim.status["candidateVersion"] == "3.0.0" and sim.status["trafficStartedAt"] is None
