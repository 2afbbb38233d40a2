"""The plugin reads what the state machine recorded (status.history's version and stable
fields), not the wording of its messages, and shows the weights the operator routes."""

from __future__ import annotations

import re
from datetime import timedelta

from modeldeploy.cli_data import status_history
from modeldeploy.cli_format import render_status
from modeldeploy.cli_history import group_rollouts
from modeldeploy.verdicts import Outcome

from .rollout_sim import Sim, make_spec, rolled_out


def test_a_rollout_run_by_the_state_machine_is_grouped_from_its_recorded_versions() -> None:
    sim = rolled_out(make_spec())
    sim.run_until("Stable", step_seconds=30, outcome=Outcome.PASS)
    history = [dict(h) for h in sim.status["history"]]
    for h in history:  # reword every message: only the recorded fields can group them
        h["message"] = "reworded"
    rows = status_history({"status": {"history": history}})
    assert rows is not None
    groups = [(g.kind, g.version, g.stable, g.result) for g in group_rollouts(rows)]
    assert groups == [("deployment", "1.0.0", None, "Available"), ("rollout", "2.0.0", "1.0.0", "Promoted")]


def test_entries_without_the_fields_still_group_by_their_message() -> None:
    history = [{"seq": 1, "time": "2025-01-01T12:00:00Z", "type": "Normal", "reason": "RolloutStarted",
                "message": "Rolling out 2.0.0 (stable 1.0.0): candidate predictor v2-0-0"}]
    rows = status_history({"status": {"history": history}})
    assert rows is not None
    assert [(g.version, g.stable) for g in group_rollouts(rows)] == [("2.0.0", "1.0.0")]


def test_the_plugin_shows_the_weights_the_operator_routes_in_every_phase() -> None:
    sim = Sim(make_spec(strategy__shadow={"duration": "1m"}, strategy__readinessGrace="1m"))
    seen = set()

    def check() -> None:
        decided = {p.name: ("shadow" if p.shadow else f"{p.traffic}%") for p in sim.applied}
        out = render_status({"metadata": {"name": "d", "namespace": "n"}, "spec": sim.spec, "status": sim.status},
                            [], sim.now + timedelta(seconds=1))
        shown = dict(re.findall(r"^  (?:stable|candidate) +(\S+) +\S+ +(\S+)", out, re.M))
        assert shown == decided, (sim.phase, out)
        seen.add((sim.phase, tuple(sorted(decided.values()))))

    sim.to_stable()
    sim.bump("2.0.0")
    sim.tick()
    check()  # shadow, the candidate not ready yet: 100/0, nothing mirrored
    sim.ready.add(sim.status["candidatePredictor"])
    unready_once = True
    for _ in range(40):
        sim.tick(15, outcome=Outcome.PASS)
        check()
        if unready_once and sim.phase == "Progressing" and sim.status["candidateWeight"] == 25:
            unready_once = False  # unready: its weight drops to 0 at once, then returns
            sim.ready.discard(sim.status["candidatePredictor"])
            sim.partial.add(sim.status["candidatePredictor"])
            sim.tick(1)
            check()
            sim.ready.add(sim.status["candidatePredictor"])
            sim.partial.discard(sim.status["candidatePredictor"])
        if sim.phase == "Stable":
            break
    phases = {phase for phase, _ in seen}
    assert phases >= {"Shadowing", "Progressing", "Promoting", "Stable"}, seen
    assert ("Shadowing", ("0%", "100%")) in seen and ("Progressing", ("0%", "100%")) in seen, seen
