"""The fault campaign's operator half, seeded: SIGKILLs of the operator as shipped at random
moments of a canary rollout, each restarted at once. Whatever the moment, the rollout
is Promoted with the exact weight sequence, every step runs its stepDuration on the
operator's clock and ends at the first tick past it, users never get a shorter step, and
every transition has exactly one Event. The targeted moments are in test_step_clock
(status write, Seldon patch, observation) and test_events (right after status writes).

`make test` runs one seed, 5 kills; `make soak` (marker `soak`) three seeds of 10 kills,
each over as many rollouts (1.0.0 -> 2.0.0 -> 3.0.0 ...) as the kills take."""

from __future__ import annotations

import random
import threading
import time

import pytest

from sandbox.harness import wait_for

from .tape import Tape, assert_step_clocks
from .test_events import assert_each_transition_posted_once
from .test_operator import mdep, objs, operator, phase_is, seldon  # noqa: F401 - fixtures

STEPS = [10, 20, 40, 60, 100]


def spec(step_seconds: int) -> dict:
    return {"strategy": {"canary": {"steps": STEPS, "stepDuration": f"{step_seconds}s"}, "progressDeadline": "60s"},
            "analysis": {"interval": "1s"}}


class RandomKiller:
    """Once the (restarted) operator writes status, wait a seeded random 0-3 s, SIGKILL it
    and restart it at once: `kills` times, so the kills land at random moments all along
    the rollouts rather than in a restart loop."""

    def __init__(self, operator, seed: int, kills: int) -> None:
        self.operator, self.rng, self.wanted = operator, random.Random(seed), kills
        self.tape: Tape | None = None  # the current rollout's
        self.kills: list[float] = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.t0 = 0.0

    def _writes(self) -> tuple[int, int]:
        return id(self.tape), sum(m.kind == "status" for m in (self.tape.marks if self.tape else ()))

    def _run(self) -> None:
        while len(self.kills) < self.wanted and not self.stop.is_set():
            seen, deadline = self._writes(), time.monotonic() + 30
            while self._writes() == seen and time.monotonic() < deadline and not self.stop.wait(0.05):
                pass
            if self.stop.wait(self.rng.uniform(0.0, 3.0)):
                break
            self.operator.kill()
            self.kills.append(round(time.monotonic() - self.t0, 2))
            self.operator.start()
        self.stop.wait()  # the operator started last dies with this thread: keep it alive

    def __enter__(self) -> RandomKiller:
        self.t0 = time.monotonic()
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(15)
        # A child dies with the thread that started it (PR_SET_PDEATHSIG): the operator
        # that goes on must be started here, by the test's own thread.
        self.operator.kill()
        self.operator.start()


def check_rollout(tape: Tape, old: str, new: str, step_seconds: int) -> None:
    assert tape.weights_of(new) == [0, *STEPS]
    assert tape.weights_of(old) == [100, *(100 - w for w in STEPS)]
    try:
        lines = assert_step_clocks(tape, new, step_seconds=step_seconds)
    except AssertionError:
        print(tape.dump())
        raise
    print(f"{old} -> {new} steps: " + "; ".join(lines))


def campaign(objs, operator, seed: int, kills: int, step_seconds: int, rollouts: int = 6) -> None:
    """Canary rollouts 1.0.0 -> 2.0.0 -> 3.0.0 ... while the killer runs, until it has
    killed `kills` times (at most `rollouts` rollouts)."""
    objs.apply_mdep(mdep("1.0.0"))
    wait_for("1.0.0 Stable", phase_is(objs, "Stable", "1.0.0"), 30)
    started, done = time.monotonic(), []
    with RandomKiller(operator, seed, kills) as killer:
        for n in range(2, rollouts + 2):
            old, new = f"{n - 1}.0.0", f"{n}.0.0"
            with Tape(objs, "digits") as tape:
                killer.tape = tape
                objs.apply_mdep(mdep(new, **spec(step_seconds)))
                wait_for(f"{new} Stable", phase_is(objs, "Stable", new), 60 + 12 * kills)
                time.sleep(0.3)
            st = objs.status("digits")
            assert st["lastRollout"]["version"] == new and st["lastRollout"]["result"] == "Promoted", st["lastRollout"]
            check_rollout(tape, old, new, step_seconds)
            done.append(new)
            if len(killer.kills) >= kills:
                break
    print(f"seed {seed}: {len(killer.kills)} kills at {killer.kills} s over {len(done)} rollouts "
          f"in {time.monotonic() - started:.1f}s")
    assert len(killer.kills) >= kills

    def complete() -> list[dict] | None:
        try:
            return assert_each_transition_posted_once(objs, "digits")
        except AssertionError:
            return None

    if not wait_for_or_none(complete, 30):
        assert_each_transition_posted_once(objs, "digits")  # fails, saying what is missing or repeated
    history = assert_each_transition_posted_once(objs, "digits")
    reasons = [e["reason"] for e in history]
    assert reasons.count("Promoted") == len(done) and reasons.count("StepAdvanced") == (len(STEPS) - 1) * len(done)


def wait_for_or_none(probe, timeout: float):
    try:
        return wait_for("every transition posted exactly once", probe, timeout, 0.5)
    except AssertionError:
        return None


def test_seeded_random_kills_change_nothing_a_user_or_an_auditor_sees(objs, seldon, operator) -> None:
    campaign(objs, operator, seed=18, kills=5, step_seconds=4)


@pytest.mark.soak
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_soak_ten_seeded_random_kills_over_several_rollouts(objs, seldon, operator, seed) -> None:
    campaign(objs, operator, seed=seed, kills=10, step_seconds=6)
