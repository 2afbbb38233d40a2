"""Outcomes of analysis: what the rollout state machine consumes.

Four outcomes, after Argo Rollouts: a check that lacks data is *Inconclusive* and a
check whose provider failed is an *Error*; neither is a *Fail*. Flagger treats "no values
found" as a failure and rolls back healthy canaries that simply got no traffic; we hold
the weight instead and pause past a limit.
"""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field
from collections.abc import Mapping
from datetime import datetime
from typing import Any


SEQUENTIAL = "sequential"


class Outcome(enum.StrEnum):
    PASS = "Pass"  # noqa: S105 - a verdict, not a password
    FAIL = "Fail"
    INCONCLUSIVE = "Inconclusive"
    ERROR = "Error"


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict with the numbers behind it (they go into status and events)."""

    name: str
    outcome: Outcome
    message: str
    baseline: float | None = None
    candidate: float | None = None
    threshold: float | None = None
    n_baseline: int | None = None
    n_candidate: int | None = None
    statistic: float | None = None
    p_value: float | None = None
    # Sequential (anytime-valid) checks only: the evidence, so an engineer can see how
    # close a decision is. `e_value` is against "within the tolerated increase" (Fail at
    # 1/alpha); `lower`/`upper` the confidence sequence for the increase at level alpha;
    # `margin` the tolerated increase; `pass_margin` what the increase must be shown below.
    method: str | None = None  # "sequential" or None (the classical per-window tests)
    e_value: float | None = None
    alpha: float | None = None
    estimate: float | None = None
    lower: float | None = None
    upper: float | None = None
    margin: float | None = None
    pass_margin: float | None = None
    # A test that restarts with every step (errorRate's failure test): the log e-value of
    # this step alone, which the rollout carries into the next (state.CarriedEvidence).
    step_log_e: float | None = None
    # A test stratified by step (latency, outputs): this step's stratum, per key (an output
    # class; "" for the latency shift) its score and information, which the rollout
    # carries into the next step (state.CarriedEvidence) and adds up.
    step_strata: Mapping[str, tuple[float, float]] | None = None

    @property
    def collecting(self) -> bool:
        """A sequential check that has data but no decision yet: evidence is accumulating,
        which is progress, not missing data."""
        return (self.method == SEQUENTIAL and self.outcome == Outcome.INCONCLUSIVE
                and bool(self.n_baseline) and bool(self.n_candidate))

    def to_status(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if v is not None}
        d["outcome"] = self.outcome.value
        for k in ("baseline", "candidate", "threshold", "statistic", "p_value", "e_value", "alpha", "estimate",
                  "lower", "upper", "margin", "pass_margin", "step_log_e"):
            if k in d:
                d[k] = float(f"{d[k]:.6g}")
        if self.step_strata is not None:
            d["step_strata"] = {k: [float(f"{x:.9g}") for x in v] for k, v in self.step_strata.items()}
        return d


def combine(checks: list[CheckResult] | tuple[CheckResult, ...]) -> Outcome:
    """The overall outcome: any Fail wins, then Error, then Inconclusive; no checks pass.

    Fail outranks Error because a check that did measure a regression is evidence,
    whatever happened to the others.
    """
    outcomes = {c.outcome for c in checks}
    for o in (Outcome.FAIL, Outcome.ERROR, Outcome.INCONCLUSIVE):
        if o in outcomes:
            return o
    return Outcome.PASS


@dataclass(frozen=True)
class AnalysisResult:
    outcome: Outcome
    checks: tuple[CheckResult, ...] = field(default_factory=tuple)
    # The start of the data the verdict rests on (now - window, or the step's start for
    # evidence accumulated over the step). A step only advances on a Pass whose data all
    # comes from inside that step; None when no metric was read.
    since: datetime | None = None

    @classmethod
    def of(cls, checks: list[CheckResult] | tuple[CheckResult, ...], since: datetime | None = None) -> AnalysisResult:
        return cls(combine(checks), tuple(checks), since)

    @property
    def decisive_fail(self) -> bool:
        """A sequential check failed: its evidence is valid at any stopping time, so one
        crossing is the decision (counting repeated looks, as failureLimit does for the
        per-window tests, would only add delay)."""
        return self.outcome == Outcome.FAIL and any(
            c.outcome == Outcome.FAIL and c.method == SEQUENTIAL for c in self.checks)

    @property
    def collecting(self) -> bool:
        """Inconclusive only because sequential checks are still accumulating evidence."""
        inconclusive = [c for c in self.checks if c.outcome == Outcome.INCONCLUSIVE]
        return self.outcome == Outcome.INCONCLUSIVE and all(c.collecting for c in inconclusive)

    def summary(self) -> str:
        if not self.checks:
            return f"{self.outcome.value}: no metrics configured (steps advance on time and readiness)"
        return f"{self.outcome.value}: " + "; ".join(f"{c.name} {c.outcome.value}: {c.message}" for c in self.checks)
