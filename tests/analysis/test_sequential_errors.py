"""The error check's failure test over a whole canary: type-I error under optional stopping
when its evidence is multiplied across steps of different routing shares, and at the edge
of a tolerance (`maxIncrease`), where the null share of errors rests on the baseline's
confidence sequence.

Same harness as test_sequential.py: alpha 0.05, 300 seeded rollouts of 40 looks, a
tolerance of 0.03 on the measured rate.
"""

from __future__ import annotations

import numpy as np
import pytest

from modeldeploy.analysis import sequential_checks as sc
from modeldeploy.verdicts import Outcome

from .test_sequential import ALPHA, LOOKS, RUNS, TOLERANCE

BASELINE_RATE = 0.005
SHARES = (0.1, 0.25, 0.5)  # a canary's steps: each step's counts restart, its evidence carries


def _canary_ever_fails(rng: np.random.Generator, rate_c: float, per_look: int, margin: float | None = None,
                       carry: bool = True) -> bool:
    """One rollout through SHARES (LOOKS split evenly), carrying each step's last look as the
    operator does (`state.CarriedEvidence`: the look before the step's clock restarts), or
    with `carry` off, each step starting from nothing at a third of alpha."""
    # Steps on their own are three tests: a third of alpha each keeps the rollout at alpha.
    m = sc.Margins.of(margin, sc.DEFAULT_ERROR_PASS_MARGIN, ALPHA if carry else ALPHA / len(SHARES))
    total_b, total_c = np.zeros(2, int), np.zeros(2, int)  # (requests, errors)
    carried = 0.0
    for share in SHARES:
        step_b, step_c = np.zeros(2, int), np.zeros(2, int)
        last = 0.0
        for _ in range(LOOKS // len(SHARES)):
            n_c = rng.binomial(per_look, share)
            served_b = np.array([per_look - n_c, rng.binomial(per_look - n_c, BASELINE_RATE)])
            served_c = np.array([n_c, rng.binomial(n_c, rate_c)])
            step_b, step_c, total_b, total_c = step_b + served_b, step_c + served_c, total_b + served_b, total_c + served_c
            r = sc.error_rate("errors", _codes(step_b), _codes(step_c), share, _codes(total_b), _codes(total_c), m,
                              carried_log_e=carried)
            if r.outcome == Outcome.FAIL:
                return True
            last = r.step_log_e
        carried += last if carry else 0.0
    return False


def _codes(counts: np.ndarray) -> dict[str, float]:
    return {"200": float(counts[0] - counts[1]), "500": float(counts[1])}


def _rate(*args) -> float:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(20261203)
    return sum(_canary_ever_fails(rng, *args) for _ in range(RUNS)) / RUNS


@pytest.mark.parametrize("per_look", [60, 600])  # 2 and 20 requests per second at 30 s looks
def test_a_a_canary_across_steps_fails_at_most_alpha(per_look: int) -> None:
    assert _rate(BASELINE_RATE, per_look) <= ALPHA + TOLERANCE


def test_a_candidate_at_the_tolerance_fails_at_most_alpha() -> None:
    assert _rate(BASELINE_RATE + 0.01, 600, 0.01) <= ALPHA + TOLERANCE


def test_carried_evidence_finds_what_steps_on_their_own_miss() -> None:
    """4x the baseline's rate at 2 req/s: multiplying the steps' evidence finds it about twice
    as often as steps testing on their own at a third of alpha each (both valid at alpha)."""
    carried, separate = _rate(0.02, 60), _rate(0.02, 60, None, False)
    assert carried >= 0.55 and carried > separate + 0.2


def test_a_clear_regression_beyond_the_tolerance_is_caught() -> None:
    assert _rate(0.08, 600, 0.01) >= 0.95
