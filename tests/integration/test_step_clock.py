"""Exact step clocks under SIGKILL, from the operator as shipped: killed right after it
wrote a step's status (before or while it patches Seldon), right after the Seldon patch
(before it observed the routing) and right after the observation, every step still runs
its stepDuration on the operator's clock and ends at the first tick past it, and users
never have a step for less than stepDuration."""

from __future__ import annotations

import time

from sandbox.harness import wait_for

from .tape import Mark, Tape, assert_step_clocks
from .test_events import assert_each_transition_posted_once
from .test_operator import mdep, objs, operator, phase_is, seldon  # noqa: F401 - fixtures

STEPS = [10, 20, 40, 60, 100]
SPEC = {"strategy": {"canary": {"steps": STEPS, "stepDuration": "2s"}, "progressDeadline": "30s"},
        "analysis": {"interval": "1s"}}
# Which moment of each step's start to kill at, in order of the steps.
MOMENTS = ["status", "routing", "observed", "status"]


class TargetedKiller:
    """Kills (SIGKILL) and restarts the operator at one moment of each step's start."""

    def __init__(self, operator, version: str) -> None:
        self.operator, self.version = operator, version
        self.kills: list[dict] = []
        self.done: set[tuple[str, int]] = set()

    def moment(self, tape: Tape, m: Mark) -> tuple[str, int] | None:
        if m.kind == "routing":
            w = m.data.get(self.version, 0)
            return ("routing", w) if 0 < w < 100 else None
        if m.data.get("candidateVersion") != self.version or not 0 < (m.data.get("stepWeight") or 0) < 100:
            return None
        return ("observed" if m.data.get("stepObserved") else "status", m.data["stepWeight"])

    def __call__(self, tape: Tape, m: Mark) -> None:
        at = self.moment(tape, m)
        if at is None or at in self.done:
            return
        self.done.add(at)
        step = STEPS.index(at[1])
        if step >= len(MOMENTS) or MOMENTS[step] != at[0]:
            return
        self.operator.kill()
        routing = next((r.data for r in reversed(tape.marks) if r.kind == "routing"), {})
        status = next((s.data for s in reversed(tape.marks) if s.kind == "status"), {})
        self.kills.append({"after": at[0], "step": at[1], "routed": routing.get(self.version),
                           "observed": status.get("stepObserved")})
        self.operator.start()


def test_kills_between_status_write_seldon_patch_and_observation_keep_every_step_exact(objs, seldon, operator) -> None:
    objs.apply_mdep(mdep("1.0.0"))
    wait_for("1.0.0 Stable", phase_is(objs, "Stable", "1.0.0"), 30)
    killer = TargetedKiller(operator, "2.0.0")
    started = time.monotonic()
    with Tape(objs, "digits", on_mark=killer) as tape:
        objs.apply_mdep(mdep("2.0.0", **SPEC))
        wait_for("2.0.0 Stable", phase_is(objs, "Stable", "2.0.0"), 120)
        time.sleep(0.3)
    print(f"rollout with {len(killer.kills)} kills took {time.monotonic() - started:.1f}s")
    for k in killer.kills:
        print(f"killed right after the {k['after']} of {k['step']}%: Seldon had {k['routed']}%, "
              f"status observed={k['observed']}")
    assert [k["after"] for k in killer.kills] == MOMENTS
    assert tape.weights_of("2.0.0") == [0, *STEPS]
    try:
        lines = assert_step_clocks(tape, "2.0.0", step_seconds=2.0)
    except AssertionError:
        print(tape.dump())
        raise
    print("steps: " + "; ".join(lines))
    objs.events_until("digits", "Promoted")
    time.sleep(1)
    history = assert_each_transition_posted_once(objs, "digits")
    assert [e["reason"] for e in history].count("StepAdvanced") == len(STEPS) - 1
