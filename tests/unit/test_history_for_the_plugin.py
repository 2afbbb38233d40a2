"""The plugin's history reads what the state machine recorded (status.history's version
and stable fields), not the wording of its messages."""

from __future__ import annotations

from modeldeploy.cli_data import status_history
from modeldeploy.cli_history import group_rollouts
from modeldeploy.verdicts import Outcome

from .rollout_sim import make_spec, rolled_out


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
