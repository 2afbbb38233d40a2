"""Property tests of the invariants in `rollout`'s docstring over random histories of
every strategy (canary, A/B, shadow then canary, shadow then A/B), steps shorter than
the analysis interval, windows that start before a step, readiness flaps of both
predictors, Seldon failures, spec edits mid-rollout (version, steps, paused), every
command in every phase, and crashes between the status write and the Seldon write."""

from __future__ import annotations

import copy

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modeldeploy import rollout
from modeldeploy.state import Reward
from modeldeploy.verdicts import Outcome

from .rollout_sim import Sim, make_spec

REWARDS = [
    None,
    Reward("Pass", "candidate better", winner="candidate"),
    Reward("Pass", "tie"),
    Reward("Pass", "baseline better", winner="baseline"),
    Reward("Inconclusive", "too little feedback"),
]
STEP_EDITS = [[10, 25, 50, 100], [20, 100], [50, 100], [5, 10, 100], [30, 60, 90, 100]]
TERMINAL = (rollout.STABLE, rollout.FAILED)


def spec_for(kind: str, step_duration: str, promote_winner: bool) -> dict:
    spec = make_spec("1.0.0", strategy__canary__stepDuration=step_duration, strategy__readinessGrace="45s",
                     strategy__progressDeadline="5m")
    if kind.endswith("ab"):
        del spec["strategy"]["canary"]  # the parser refuses both
        spec["strategy"].update(type="ABTest", abTest={"split": 30, "maxDuration": "4m", "promoteWinner": promote_winner})
    if kind.startswith("shadow"):
        spec["strategy"]["shadow"] = {"duration": "20s"}
    return spec


tick = st.tuples(st.just("tick"), st.sampled_from([0, 1, 5, 10, 15, 29, 30, 31, 45, 60, 90]),
                 st.sampled_from([Outcome.PASS, Outcome.PASS, Outcome.FAIL, Outcome.INCONCLUSIVE, Outcome.ERROR]),
                 st.sampled_from(REWARDS), st.sampled_from([False] * 5 + [True]), st.sampled_from([False] * 5 + [True]))
action = st.one_of(
    tick, tick, tick, tick,
    st.tuples(st.just("ready"), st.sampled_from(["candidate", "candidate", "stable"]), st.booleans()),
    st.tuples(st.just("partial"), st.booleans()),
    st.tuples(st.just("fail"), st.sampled_from([False, False, True])),
    st.tuples(st.just("bump"), st.sampled_from(["1.0.0", "2.0.0", "3.0.0"])),
    st.tuples(st.just("command"), st.sampled_from(list(rollout.COMMANDS) + ["bogus"])),
    st.tuples(st.just("paused"), st.booleans()),
    st.tuples(st.just("steps"), st.sampled_from(STEP_EDITS)),
)
# Most histories start a rollout of a ready candidate, so the random part exercises the
# steps, not only the wait for readiness.
start = st.sampled_from([[], [("bump", "2.0.0"), ("tick", 1, Outcome.PASS, None, False, False), ("ready", "candidate", True)]] * 1
                        + [[("bump", "2.0.0"), ("tick", 1, Outcome.PASS, None, False, False),
                            ("ready", "candidate", True)]] * 3)
histories = st.builds(lambda a, b: a + b, start, st.lists(action, min_size=15, max_size=60))
setup = st.tuples(st.sampled_from(["canary", "ab", "shadow-canary", "shadow-ab"]), st.sampled_from(["10s", "1m"]),
                  st.sampled_from([None, 20.0, 60.0]), st.booleans())


def check_tick(sim: Sim, before: rollout.Status, ready_seen: set[str], command: str | None,
               decision: rollout.Decision) -> None:
    """The invariants for one decision, given the status and readiness it was made on."""
    after = decision.status
    stable = after.stablePredictor
    # 2. Weight (or mirrored traffic) only goes to a predictor Seldon reported ready; an
    # unready candidate loses its weight in the same tick.
    for p in decision.predictors:
        if p.name != stable and (p.traffic > 0 or p.shadow) and after.phase != rollout.STABLE:
            assert p.name in ready_seen, (p, before.phase, after.phase, [e.reason for e in decision.events])
    # 1. Every move up (a step, the end of a shadow, a promotion) rests on a Pass of the
    # current step, unless a person promoted.
    moved = [e for e in decision.events if e.reason in ("StepAdvanced", "ABTestStarted", "Promoting")]
    from_readiness = before.stepStartedAt is None and before.phase != rollout.PROMOTING
    if moved and not from_readiness and command != "promote":
        last = after.lastAnalysis
        started = rollout.parse_time(before.stepStartedAt)
        assert last is not None and last.outcome == Outcome.PASS.value, (moved, last)
        assert rollout.parse_time(last.time) > started, (moved, last, before.stepStartedAt)
        if last.since is not None:
            assert rollout.parse_time(last.since) >= started, (moved, last, before.stepStartedAt)
    if after.phase == rollout.PROMOTING and before.phase != rollout.PROMOTING:
        assert command == "promote" or "overriding" not in (after.pendingResult or {}).get("reason", "")
    # 4. Pause holds: while paused by a person, the candidate's routed weight never rises.
    if before.phase == rollout.PAUSED and after.phase == rollout.PAUSED:
        assert after.candidateWeight <= before.candidateWeight
    # Transitions are recorded with consecutive sequence numbers.
    seqs = [h["seq"] for h in after.history]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


def check_bins(before: rollout.Status, after: rollout.Status) -> None:
    """Regressor bins are fixed once per rollout: never moved within it (they stay after it
    ends, as a record) and never carried into the next one."""
    same_rollout = before.rolloutStartedAt == after.rolloutStartedAt
    if same_rollout and before.outputBins is not None:
        assert after.outputBins == before.outputBins, (before.outputBins, after.outputBins, after.phase)
    if not same_rollout and before.outputBins is not None:
        assert after.outputBins != before.outputBins, (after.phase, after.outputBins)


def check_traffic_start(before: rollout.Status, after: rollout.Status) -> None:
    """The evidence start (trafficStartedAt) is the rollout's first observed step: set
    once the candidate's routing is seen in a walking phase, and never moved within the
    rollout (crashes, readiness flaps, pauses, step edits included)."""
    if before.rolloutStartedAt == after.rolloutStartedAt and before.trafficStartedAt:
        assert after.trafficStartedAt == before.trafficStartedAt, (before.trafficStartedAt, after.trafficStartedAt)
    if after.phase in (rollout.PROGRESSING, rollout.AB_TESTING, rollout.SHADOWING) and after.stepStartedAt \
            and after.stepObserved:
        assert after.trafficStartedAt is not None, after.phase
        assert rollout.parse_time(after.trafficStartedAt) <= rollout.parse_time(after.stepStartedAt)
    if after.trafficStartedAt:
        assert rollout.parse_time(after.trafficStartedAt) >= rollout.parse_time(after.rolloutStartedAt)


class CarryCheck:
    """Evidence carried across steps (status.carriedEvidence: the e-values and the strata)
    counts each look at most once, never shrinks within a rollout and starts afresh with
    each rollout. Every look reports one nat and a stratum of information 1
    (`Sim.step_evidence`), so each carried total is at most the number of looks this
    rollout recorded."""

    def __init__(self) -> None:
        self.looks = 0

    def __call__(self, before: rollout.Status, after: rollout.Status) -> None:
        new_look = after.lastAnalysis is not None and after.lastAnalysis != before.lastAnalysis
        if before.rolloutStartedAt != after.rolloutStartedAt:
            self.looks = 0
            before = rollout.Status()
        self.looks += new_look
        for of in (lambda c: c.logE.get("p99", 0.0), lambda c: c.strata.get("p99", {}).get("", (0.0, 0.0))[1]):
            carried = of(after.carriedEvidence) if after.carriedEvidence else 0.0
            earlier = of(before.carriedEvidence) if before.carriedEvidence else 0.0
            assert carried <= self.looks, (carried, self.looks, after.phase)
            if after.phase not in TERMINAL:
                assert carried >= earlier, (earlier, carried, after.phase)
        if after.carriedEvidence:  # the strata are folded with the e-values: the same looks, once each
            ev = after.carriedEvidence
            assert ev.strata.get("p99", {}).get("", (0.0, 0.0))[1] == ev.logE.get("p99", 0.0), ev


def run(kind: str, step_duration: str, window: float | None, promote_winner: bool, actions,
        offer_bins: bool = False, step_evidence: bool = False) -> Sim:
    sim = Sim(spec_for(kind, step_duration, promote_winner))
    sim.window = window
    sim.offer_bins = offer_bins
    sim.step_evidence = step_evidence
    carry = CarryCheck()
    sim.to_stable()
    for a in actions:
        cand, stable = sim.status.get("candidatePredictor"), sim.status.get("stablePredictor")
        if a[0] in ("tick", "command"):
            before = rollout.Status.from_dict(copy.deepcopy(sim.status))
            ready_seen = sim.ready & {p.name for p in sim.applied}
            if a[0] == "tick":
                _, secs, outcome, reward, crash_s, crash_a = a
                d = sim.tick(secs, outcome=outcome, reward=reward, crash_before_status=crash_s, crash_before_apply=crash_a)
                command = None
            else:
                command = a[1]
                d = sim.tick(1, command=command)
            check_tick(sim, before, ready_seen, command, d)
            check_traffic_start(before, rollout.Status.from_dict(sim.status))
            if offer_bins:
                check_bins(before, d.status)
            if step_evidence:
                carry(before, rollout.Status.from_dict(sim.status))
        elif a[0] == "ready":
            name = cand if a[1] == "candidate" else stable
            if name:
                (sim.ready.add if a[2] else sim.ready.discard)(name)
        elif a[0] == "partial" and cand:
            (sim.partial.add if a[1] else sim.partial.discard)(cand)
        elif a[0] == "fail" and cand:
            if a[1]:
                sim.failed[cand] = "scripted failure"
            else:
                sim.failed.pop(cand, None)
        elif a[0] == "bump":
            sim.bump(a[1])
        elif a[0] == "paused":
            sim.spec["paused"] = a[1]
        elif a[0] == "steps" and "canary" in sim.spec["strategy"]:
            sim.spec["strategy"]["canary"]["steps"] = a[1]
        live = [p for p in sim.applied if not p.shadow]
        assert sum(p.traffic for p in live) == 100
        assert sim.status.get("stablePredictor") in {p.name for p in sim.applied}
    return sim


def drain(sim: Sim, limit: int, dead_candidate: bool = False, **tick) -> None:
    for _ in range(limit):
        if dead_candidate:  # whichever version is the candidate now never becomes ready
            sim.ready.discard(sim.status.get("candidatePredictor") or "")
        if (sim.status.get("abTest") or {}).get("frozen") and sim.phase == rollout.AB_TESTING:
            sim.tick(1, command="promote")  # a winner frozen for a person ends when they act
        if sim.phase in TERMINAL and sim.status.get("stableVersion") and not sim.status.get("candidateVersion"):
            if sim.phase == rollout.STABLE or sim.spec["model"]["version"] == sim.status.get("lastRollout", {}).get("version"):
                return
        sim.tick(30, **tick)
    raise AssertionError(f"stuck in {sim.phase}: {sim.reasons()[-8:]}")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setup, histories)
def test_invariants_hold_and_a_healthy_rollout_then_ends(setup, actions) -> None:
    """3. Every phase can end: once both versions are ready and analyses pass, whatever
    happened before, the rollout reaches Stable or Failed (a winner frozen for a person
    is ended by the person's promote)."""
    sim = run(*setup, actions)
    sim.spec["paused"] = False
    sim.failed.clear()
    sim.ready |= {p.name for p in sim.applied} | {sim.status.get("candidatePredictor") or ""}
    if sim.phase == rollout.PAUSED and sim.status.get("pauseReason") == rollout.PAUSE_COMMAND:
        sim.tick(1, command="resume")
    drain(sim, 200, outcome=Outcome.PASS, reward=REWARDS[1])


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setup, histories, st.booleans())
def test_abort_ends_every_phase_and_a_dead_candidate_never_strands_a_rollout(setup, actions, abort) -> None:
    """3. `abort` ends any phase of a rollout; a candidate that never becomes (or stays)
    ready is rolled back within progressDeadline or readinessGrace."""
    sim = run(*setup, actions)
    sim.spec["paused"] = False
    sim.ready.add(sim.status.get("stablePredictor") or "")
    sim.ready.discard(sim.status.get("candidatePredictor") or "")
    if abort:
        sim.tick(1, command="abort")
    elif sim.phase == rollout.PAUSED and sim.status.get("pauseReason") == rollout.PAUSE_COMMAND:
        sim.tick(1, command="resume")  # a person's pause holds until they resume
    drain(sim, 40, dead_candidate=True, outcome=Outcome.INCONCLUSIVE)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setup, histories)
def test_regressor_bins_are_fixed_once_per_rollout_in_every_strategy_and_phase(setup, actions) -> None:
    run(*setup, actions, offer_bins=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setup, histories)
def test_step_evidence_is_carried_once_per_look_in_every_strategy_and_phase(setup, actions) -> None:
    run(*setup, actions, step_evidence=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setup, st.lists(action.filter(lambda a: a[0] != "command"), min_size=15, max_size=60))
def test_no_data_never_promotes_in_any_strategy(setup, actions) -> None:
    """6. With only Inconclusive and Error verdicts, nothing is ever promoted."""
    actions = [(a[0], a[1], Outcome.INCONCLUSIVE if a[2] == Outcome.PASS else Outcome.ERROR, *a[3:])
               if a[0] == "tick" else a for a in actions]
    sim = run(*setup, actions)
    assert "Promoting" not in sim.reasons() and "Promoted" not in sim.reasons()


ticks_only = st.lists(st.tuples(st.just("tick"), st.sampled_from([0, 1, 5, 10, 15, 29, 30, 31, 45, 60]),
                                st.sampled_from([Outcome.PASS, Outcome.PASS, Outcome.PASS, Outcome.FAIL, Outcome.INCONCLUSIVE]),
                                st.sampled_from(REWARDS), st.just(False), st.sampled_from([False] * 5 + [True])),
                      min_size=5, max_size=40)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(setup, ticks_only)
def test_every_move_rests_on_a_pass_of_its_own_step(setup, ticks) -> None:
    """1. Time, verdicts and rewards only, from a ready candidate: the densest search for
    a step, a shadow's end or an A/B winner that moves on an analysis of an earlier step
    or on a failing guard (`check_tick` asserts it after every tick)."""
    start = [("bump", "2.0.0"), ("tick", 1, Outcome.PASS, None, False, False), ("ready", "candidate", True)]
    run(*setup, start + ticks)
