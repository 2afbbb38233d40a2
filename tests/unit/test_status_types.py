"""Status sub-objects are typed in the core and written exactly as before: every status
the state machine writes reads back into the same dict."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta

import yaml

from modeldeploy import rollout
from modeldeploy.spec import parse
from modeldeploy.state import (ABTest, CarriedEvidence, Counters, LastAnalysis, OutputBins, Phase, Result, Reward, RolloutRecord,
                               Status)
from modeldeploy.verdicts import Outcome

from .rollout_sim import ab_test, make_spec, rolled_out


def test_counters_and_the_rollout_record_round_trip() -> None:
    c = {"failed": 2, "inconclusive": 1, "errors": 0}
    assert Counters.from_dict(c).to_dict() == c
    assert Counters.from_dict(None) == Counters()
    r = {"version": "2.0.0", "result": "RolledBack", "reason": "2 failed analyses", "finishedAt": "2026-01-01T00:00:00.000Z"}
    record = RolloutRecord.from_dict(r)
    assert record.result == Result.ROLLED_BACK and record.to_dict() == r
    assert type(RolloutRecord("2", Result.PROMOTED).to_dict()["result"]) is str


def test_the_last_analysis_round_trips_with_and_without_its_window_start() -> None:
    checks = [{"name": "p99", "outcome": "Pass", "message": "ok", "baseline": 1.0, "candidate": 1.1}]
    a = {"time": "2026-01-01T00:01:00.000Z", "outcome": "Pass", "message": "Pass: p99", "checks": checks}
    assert LastAnalysis.from_dict(a).to_dict() == a
    b = {**a, "since": "2026-01-01T00:00:00.000Z"}
    assert LastAnalysis.from_dict(b).to_dict() == b
    assert LastAnalysis.from_dict(b).outcome == Outcome.PASS
    assert Status(lastAnalysis=b).to_dict()["lastAnalysis"] == b


def test_the_reward_comparison_and_the_ab_test_round_trip() -> None:
    r = {"outcome": "Pass", "message": "candidate wins: reward 0.978 (1200) vs baseline 0.893 (1180)",
         "winner": "candidate", "confidence": 0.95, "baselineRate": 0.893, "candidateRate": 0.978,
         "nBaseline": 1180.0, "nCandidate": 1200.0, "difference": 0.085, "lower": 0.05, "upper": 0.12,
         "pValue": 0.0001}
    reward = Reward.from_dict(r)
    assert reward.outcome == Outcome.PASS and reward.winner == "candidate" and reward.to_dict() == r
    ab = {**r, "time": "2026-01-01T00:01:00.000Z", "frozen": True}
    assert ABTest.from_dict(ab).to_dict() == ab
    assert ABTest.of(reward, ab["time"], frozen=True) == ABTest.from_dict(ab)
    assert Status(abTest=ab).abTest == ABTest.from_dict(ab) and Status(abTest=ab).to_dict()["abTest"] == ab
    # A comparison that could not be made has no numbers; written over one that had them,
    # it clears them (None in a merge patch) rather than leave them beside its Error.
    error = ABTest.of(Reward("Error", "no data"), ab["time"]).to_dict()
    assert error["lower"] is None and error["winner"] is None and error["frozen"] is False
    assert ABTest.from_dict({k: v for k, v in error.items() if v is not None}) == ABTest.from_dict(error)


def test_a_status_built_from_the_apis_dicts_is_typed() -> None:
    st = Status(phase=Phase.FAILED, counters={"failed": 1}, lastRollout={"version": "2", "result": "Aborted"})
    assert st.counters == Counters(failed=1) and st.lastRollout == RolloutRecord("2", "Aborted")
    assert Status.from_dict({"counters": {"errors": 3}}).counters.errors == 3


def test_every_status_the_state_machine_writes_reads_back_unchanged() -> None:
    sim = rolled_out(make_spec())
    seen = []
    for outcome in (Outcome.FAIL, Outcome.PASS, Outcome.INCONCLUSIVE, Outcome.FAIL, None, None):
        sim.tick(30, outcome=outcome)
        seen.append(json.loads(json.dumps(sim.status)))
    assert sim.status["lastRollout"]["result"] == "RolledBack" and seen[0]["counters"]["failed"] == 1
    for d in seen:
        back = Status.from_dict(d).to_dict()
        assert back == d
        # Plain strings only: what the Kubernetes client's JSON and the plugin's YAML take.
        assert yaml.safe_load(yaml.safe_dump(back)) == d


def test_every_ab_test_status_reads_back_unchanged_and_the_frozen_winner_stays() -> None:
    sim = ab_test(promoteWinner=False)
    seen = []
    for reward in (Reward("Inconclusive", "too little feedback"), Reward("Pass", "wins", winner="candidate",
                                                                          baselineRate=0.8, candidateRate=0.9)):
        sim.tick(30, reward=reward)
        seen.append(json.loads(json.dumps(sim.status)))
    assert seen[0]["abTest"]["frozen"] is False and seen[1]["abTest"]["frozen"] is True
    assert seen[1]["abTest"]["candidateRate"] == 0.9 and sim.phase == Phase.AB_TESTING
    for d in seen:
        assert Status.from_dict(d).to_dict() == d


def test_carried_evidence_round_trips_and_folds_each_look_once() -> None:
    carried = CarriedEvidence("2026-01-01T00:01:00.000Z", {"errors": 1.5})
    assert CarriedEvidence.from_dict(json.loads(json.dumps(carried.to_dict()))) == carried
    status = Status(carriedEvidence=carried.to_dict())
    assert status.carriedEvidence == carried and Status.from_dict(status.to_dict()) == status
    look = LastAnalysis("2026-01-01T00:01:30.000Z", "Pass", checks=({"name": "errors", "step_log_e": 2.0},
                                                                    {"name": "p99", "e_value": 3.0}))
    folded = CarriedEvidence.fold(carried, look)
    assert folded == CarriedEvidence("2026-01-01T00:01:30.000Z", {"errors": 3.5})
    assert CarriedEvidence.fold(folded, look) == folded  # the same look again: nothing new
    assert CarriedEvidence.fold(None, look) == CarriedEvidence(look.time, {"errors": 2.0})
    assert CarriedEvidence.fold(carried, None) == carried
    no_step_test = LastAnalysis("2026-01-01T00:02:00.000Z", "Pass", checks=({"name": "p99", "e_value": 3.0},))
    assert CarriedEvidence.fold(None, no_step_test) is None


def test_carried_strata_add_up_step_by_step_and_survive_the_api() -> None:
    """A stratified check's (score, information) per key: each step's look folded once,
    keys of either side kept, and the status's JSON round trip loses nothing."""
    first = LastAnalysis("2026-01-01T00:01:00.000Z", "Pass", checks=(
        {"name": "p99", "step_strata": {"": [2.0, 10.0]}},
        {"name": "outputs", "step_strata": {"0": [1.0, 4.0], "1": [-1.0, 4.0]}}))
    carried = CarriedEvidence.fold(None, first)
    assert carried == CarriedEvidence(first.time, {}, {"p99": {"": (2.0, 10.0)},
                                                      "outputs": {"0": (1.0, 4.0), "1": (-1.0, 4.0)}})
    second = LastAnalysis("2026-01-01T00:02:00.000Z", "Pass", checks=(
        {"name": "p99", "step_strata": {"": [1.0, 5.0]}}, {"name": "outputs", "step_strata": {"2": [0.5, 2.0]}},
        {"name": "errors", "step_log_e": 1.0}))
    both = CarriedEvidence.fold(carried, second)
    assert both is not None and both.logE == {"errors": 1.0}
    assert both.strata == {"p99": {"": (3.0, 15.0)}, "outputs": {"0": (1.0, 4.0), "1": (-1.0, 4.0), "2": (0.5, 2.0)}}
    assert CarriedEvidence.fold(both, second) == both
    assert Status.from_dict(json.loads(json.dumps(Status(carriedEvidence=both).to_dict()))).carriedEvidence == both


def test_output_bins_are_recorded_once_per_rollout_and_cleared_by_the_next() -> None:
    bins = OutputBins((106.0, 158.0), "1.0.0", 400, "2026-01-01T00:00:00.000Z", "2026-01-01T01:00:00.000Z")
    assert OutputBins.from_dict(json.loads(json.dumps(bins.to_dict()))) == bins
    assert Status(outputBins=bins.to_dict()).outputBins == bins
    sim = rolled_out(make_spec())
    spec, now = parse(sim.spec), sim.now + timedelta(seconds=1)

    def step(status: Status, fixed: OutputBins | None) -> Status:
        obs = dataclasses.replace(sim.observation(), output_bins=fixed)
        return Status.from_dict(json.loads(json.dumps(rollout.step(spec, status, obs, now).status.to_dict())))

    current = Status.from_dict(sim.status)
    assert current.outputBins is None
    recorded = step(current, bins)
    assert recorded.outputBins == bins
    other = dataclasses.replace(bins, edges=(1.0,))
    assert step(recorded, other).outputBins == bins, "fixed once: a later observation does not move them"
    assert step(recorded, None).outputBins == bins
    sim.status = recorded.to_dict()
    sim.bump("3.0.0")
    sim.tick()
    assert sim.status["phase"] == "Progressing" and sim.status["candidateVersion"] == "3.0.0"
    assert sim.status["outputBins"] is None, "a new rollout fixes its own"
