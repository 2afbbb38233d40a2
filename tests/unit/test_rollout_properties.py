"""Property tests: random histories of time, verdicts, readiness, commands, version bumps
and operator crashes between the status write and the Seldon write."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modeldeploy import rollout
from modeldeploy.verdicts import Outcome

from .rollout_sim import Sim, make_spec

STEPS = [0, 10, 25, 50, 100]

action = st.one_of(
    st.tuples(st.just("tick"), st.integers(0, 90), st.sampled_from(list(Outcome)), st.sampled_from([False, False, False, True]),
              st.sampled_from([False, False, False, True])),
    st.tuples(st.just("ready"), st.booleans()),
    st.tuples(st.just("fail"), st.booleans()),
    st.tuples(st.just("bump"), st.sampled_from(["1.0.0", "2.0.0", "3.0.0"])),
    st.tuples(st.just("command"), st.sampled_from(rollout.COMMANDS)),
    st.tuples(st.just("paused"), st.booleans()),
)


def run(actions, outcomes_allowed=None) -> Sim:
    sim = Sim(make_spec("1.0.0"))
    sim.to_stable()
    ever_ready = set(sim.ready)
    prev = {p.name: p for p in sim.applied}
    rollout_weights: dict[str, list[int]] = {}
    for a in actions:
        kind = a[0]
        cand = sim.status.get("candidatePredictor")
        if kind == "tick":
            _, secs, outcome, crash_s, crash_a = a
            if outcomes_allowed is not None and outcome not in outcomes_allowed:
                outcome = outcomes_allowed[0]
            sim.tick(secs, outcome=outcome, crash_before_status=crash_s, crash_before_apply=crash_a)
        elif kind == "ready" and cand:
            (sim.ready.add if a[1] else sim.ready.discard)(cand)
        elif kind == "fail" and cand:
            if a[1]:
                sim.failed[cand] = "scripted failure"
            else:
                sim.failed.pop(cand, None)
        elif kind == "bump":
            sim.bump(a[1])
        elif kind == "command":
            sim.tick(1, command=a[1])
        elif kind == "paused":
            sim.spec["paused"] = a[1]
        ever_ready |= sim.ready & {p.name for p in sim.applied}

        now = {p.name: p for p in sim.applied}
        live = [p for p in now.values() if not p.shadow]
        assert sum(p.traffic for p in live) == 100
        # Traffic (or mirrored requests) only ever reach a predictor Seldon reported ready,
        # except the very first version, which has nothing to protect.
        for p in now.values():
            if (p.traffic > 0 or p.shadow) and len(now) > 1:
                assert p.name in ever_ready or p.name == sim.status.get("stablePredictor"), (p, sim.reasons()[-5:])
        # A ready predictor that served users is removed only when ready predictors take
        # all of its traffic in the same write.
        for name, old in prev.items():
            if name not in now and old.traffic > 0 and not old.shadow and name in ever_ready:
                assert all(p.name in ever_ready for p in live if p.traffic > 0), (old, now)
        # The stable version is served until a promotion completes.
        assert sim.status.get("stablePredictor") in now or not now
        # Within one rollout the candidate's weight walks the steps in order, one at a time.
        key = sim.status.get("rolloutStartedAt")
        if key and cand and cand in now and not now[cand].shadow:
            seen = rollout_weights.setdefault(f"{key}/{cand}", [])
            w = now[cand].traffic
            if not seen or seen[-1] != w:
                if seen and w not in (0, 100):
                    assert STEPS.index(w) == STEPS.index(seen[-1]) + 1, (seen, w)
                seen.append(w)
        prev = now
    return sim


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(action, min_size=1, max_size=60))
def test_invariants_hold_for_any_history(actions) -> None:
    run(actions)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(action.filter(lambda a: a[0] != "command"), min_size=1, max_size=80))
def test_missing_data_or_errors_alone_never_promote(actions) -> None:
    sim = run(actions, outcomes_allowed=[Outcome.INCONCLUSIVE, Outcome.ERROR])
    for reason in ("Promoting", "Promoted"):
        assert reason not in sim.reasons()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([0, 1, 5, 29, 30, 31, 59, 60, 61, 120]), min_size=10, max_size=80),
       st.lists(st.booleans(), min_size=80, max_size=80))
def test_crashes_never_skip_or_repeat_a_step(gaps, crashes) -> None:
    """Same history, with and without crashes between status and Seldon writes: the
    candidate visits exactly the same weights, in order."""
    def walk(crash: bool) -> list[int]:
        # A promotion whose routing stays out of Seldon past progressDeadline goes back to
        # the stable version (tested in test_rollout_safety); here the question is only
        # whether crashes skip or repeat steps, so the deadline is out of reach.
        sim = Sim(make_spec("1.0.0", strategy__progressDeadline="10h"))
        sim.to_stable()
        sim.bump("2.0.0")
        sim.tick()
        sim.ready.add(sim.status["candidatePredictor"])
        visited = []  # what Seldon routed to the candidate, not what status said

        def seen() -> None:
            w = sim.weights().get("2.0.0", 0)
            if w and (not visited or visited[-1] != w):
                visited.append(w)

        for i, g in enumerate(gaps):
            sim.tick(g, crash_before_apply=crash and crashes[i], crash_before_status=crash and crashes[-i - 1])
            seen()
        while sim.phase not in (rollout.STABLE, rollout.FAILED):
            sim.tick(60)
            seen()
        assert sim.status["stableVersion"] == "2.0.0"
        return visited

    assert walk(False) == walk(True) == [10, 25, 50, 100]
