"""docs/argocd/health.lua, run by a real Lua interpreter (lupa, from PyPI) the way Argo CD
runs it (the resource as the global `obj`, a table with status and message returned),
against statuses of every phase that the rollout state machine itself produces."""

from __future__ import annotations

import json
from pathlib import Path

import lupa  # the dev extra: a missing interpreter fails the tests, never skips them
import pytest

from modeldeploy import state
from modeldeploy.verdicts import Outcome
from tests.unit.rollout_sim import Sim, make_spec


SCRIPT = (Path(__file__).resolve().parents[2] / "docs" / "argocd" / "health.lua").read_text()
PHASES = (state.PENDING, state.STABLE, state.SHADOWING, state.PROGRESSING, state.AB_TESTING, state.PAUSED,
          state.PROMOTING, state.ROLLING_BACK, state.FAILED)


def health(obj: dict) -> dict:
    lua = lupa.LuaRuntime(unpack_returned_tuples=True)
    # As Argo CD does it: JSON objects and arrays become tables, null becomes nil (absent).
    lua.globals().obj = lua.table_from(drop_nulls(obj), recursive=True)
    result = lua.execute(SCRIPT)
    return {"status": result["status"], "message": result["message"]}


def drop_nulls(v):
    if isinstance(v, dict):
        return {k: drop_nulls(x) for k, x in v.items() if x is not None}
    if isinstance(v, list):
        return [drop_nulls(x) for x in v]
    return v


def statuses() -> dict[str, dict]:
    """One status per phase, from rollouts run by the pure state machine."""
    seen: dict[str, dict] = {}

    def watch(sim: Sim) -> None:
        seen.setdefault(sim.phase, json.loads(json.dumps(sim.status)))

    def run(sim: Sim, ticks: int, outcome: Outcome | None = None, ready: bool = True) -> None:
        for _ in range(ticks):
            sim.tick(5, outcome=outcome)
            if ready:
                sim.ready |= {p.name for p in sim.applied}
            watch(sim)

    healthy = Sim(make_spec("1.0.0"))
    healthy.tick()
    watch(healthy)  # Pending
    healthy.to_stable()
    healthy.bump("2.0.0")
    run(healthy, 120)
    failing = Sim(make_spec("1.0.0"))
    failing.to_stable()
    failing.bump("2.0.0")
    run(failing, 60, Outcome.FAIL)
    shadow = Sim(make_spec("1.0.0", strategy__shadow={"duration": "1m"}))
    shadow.to_stable()
    shadow.bump("2.0.0")
    run(shadow, 6)
    ab = Sim(make_spec("1.0.0", strategy={"type": "ABTest", "abTest": {"split": 50}}))
    ab.to_stable()
    ab.bump("2.0.0")
    run(ab, 6)
    paused = Sim(make_spec("1.0.0"))
    paused.to_stable()
    paused.bump("2.0.0")
    run(paused, 4)
    paused.spec["paused"] = True
    run(paused, 2)
    return seen


STATUSES = statuses()
EXPECTED = {state.STABLE: "Healthy", state.PAUSED: "Suspended", state.FAILED: "Degraded"}


def test_the_state_machine_reached_every_phase() -> None:
    assert set(STATUSES) >= set(PHASES), sorted(STATUSES)


@pytest.mark.parametrize("phase", PHASES)
def test_every_phase_maps_to_an_argo_cd_health(phase: str) -> None:
    st = STATUSES[phase]
    h = health({"metadata": {"name": "digits", "generation": 1}, "status": st})
    assert h["status"] == EXPECTED.get(phase, "Progressing"), (phase, h)
    assert h["message"]
    if phase == state.FAILED:
        assert h["message"].startswith("2.0.0 RolledBack: "), h
    if phase == state.PAUSED:
        assert h["message"].startswith("Paused (user): "), h


def test_no_status_a_newer_spec_and_an_invalid_spec() -> None:
    assert health({"metadata": {"generation": 1}})["status"] == "Progressing"
    stale = health({"metadata": {"generation": 3}, "status": {**STATUSES[state.STABLE], "observedGeneration": 2}})
    assert stale["status"] == "Progressing" and "generation 3" in stale["message"]
    invalid = {"message": "spec.model.version: 'x y' must be a valid label value", "observedGeneration": 1}
    assert health({"metadata": {"generation": 1}, "status": invalid}) == {"status": "Degraded",
                                                                           "message": invalid["message"]}
    assert health({"metadata": {"generation": 1}, "status": {"phase": "Martian", "observedGeneration": 1}})["status"] == "Unknown"
