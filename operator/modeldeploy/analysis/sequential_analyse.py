"""The sequential analysis of one look: query cumulative counts, run the sequential checks.

Which counts, and why:

* latency and outputs: everything since the candidate's first traffic
  (`Evidence.since_rollout_s`, from status.trafficStartedAt) for the counts shown, and
  compared step by step: each step's counts (`since_step_s`) are a stratum of their own,
  and the earlier steps' strata come from status.carriedEvidence (`Evidence.strata`), so a
  later step starts with all the earlier evidence instead of from nothing, and a change
  between steps is not read as a difference between the versions
  (`sequential_checks.latency` says why). Not since the rollout began: until the candidate
  is ready only the baseline serves, and its requests from then (while the candidate's
  pods start and load the node) are from another time than any of the candidate's. In
  the sandbox that alone read a candidate 7-14 % faster than it was.
* errors: the failure test conditions on the routing share, which is constant only within
  a step, so it reads the counts since the step began (`since_step_s`) and multiplies its
  e-value with those of the earlier steps (`Evidence.carried`, from status.carriedEvidence):
  one test for the whole rollout at the full alpha. Its pass test is two-sample and uses
  the counts since the candidate's first traffic, pooled over the steps (not stratified
  yet: a change between steps can bias it either way).

Pure except through the provider, like `analyse`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from datetime import datetime

from ..providers import MetricProvider
from ..state import PROGRESSING, Status, parse_time
from ..verdicts import AnalysisResult
from . import sequential_checks as sc
from .config import AnalysisSpec
from .kinds import KINDS
from .kinds.base import SequentialLook
from .query import QuerySession, Target
from .templates import Templates, format_duration


@dataclass(frozen=True)
class Evidence:
    """Where the rollout is: the two evidence windows and the candidate's routing share."""

    since_rollout_s: float
    since_step_s: float
    share: float  # the candidate's share of requests in this step (0.5 for a shadow: both serve all)
    exposure: float = 1.0  # the candidate's share of users once this step passes (1: promotion)
    # Per check name, the log e-value its step-by-step test gathered in earlier steps.
    carried: Mapping[str, float] = field(default_factory=dict)
    # The rollout's previous look, its checks by name (status.lastAnalysis); None before the first.
    previous: Mapping[str, Mapping[str, Any]] | None = None
    # Per check stratified by step, the earlier steps' (score, information) per key.
    strata: Mapping[str, Mapping[str, tuple[float, float]]] = field(default_factory=dict)

    def fitted_before(self, name: str) -> bool:
        """Could an earlier look of this rollout already fit check `name` (at least
        MIN_OBSERVATIONS requests per version)? Counts are cumulative, so the previous
        look tells. Unknown (an Error, a check added since) counts as yes: the latency
        check's fixed-sample test must never run twice, and skipping it only costs power."""
        if self.previous is None:
            return False
        prev = self.previous.get(name) or {}
        nb, nc = prev.get("n_baseline"), prev.get("n_candidate")
        return nb is None or nc is None or min(nb, nc) >= sc.MIN_OBSERVATIONS

    @classmethod
    def of_status(cls, status: Status, now: datetime, steps: Sequence[int] = ()) -> Evidence:
        """From the rollout's status: the windows start at trafficStartedAt (the candidate's
        first traffic; rolloutStartedAt for a status written before that field existed)
        and at stepStartedAt.

        With the canary's `steps`, a pass of a step that leads to another step is judged at
        that step's weight (`sequential_checks.Margins`); a shadow, an A/B test and the last
        step lead to promotion and are judged at 100 %.
        """
        rollout_start = parse_time(status.trafficStartedAt) or parse_time(status.rolloutStartedAt) or now
        step_start = parse_time(status.stepStartedAt) or now
        share = 0.5 if status.shadow else status.candidateWeight / 100
        exposure = 1.0
        if steps and not status.shadow and status.phase == PROGRESSING:
            exposure = next((w for w in sorted(steps) if w > status.candidateWeight), 100) / 100
        carried = status.carriedEvidence.logE if status.carriedEvidence else {}
        strata = status.carriedEvidence.strata if status.carriedEvidence else {}
        last = status.lastAnalysis
        previous = {str(c.get("name")): c for c in last.checks} if last is not None else None
        return cls((now - rollout_start).total_seconds(), (now - step_start).total_seconds(), share, exposure,
                   dict(carried), previous, dict(strata))

    def stratum(self, name: str, key: str = "") -> tuple[float, float]:
        """Check `name`'s earlier steps' (score, information) for `key`; (0, 0) for none."""
        return self.strata.get(name, {}).get(key, (0.0, 0.0))


def _window(seconds: float) -> str:
    return format_duration(max(1, int(seconds)))


def analyse_sequential(spec: AnalysisSpec, target: Target, provider: MetricProvider, evidence: Evidence,
                       templates: Templates | None = None, *, at: float | None = None,
                       beta: float = sc.DEFAULT_BETA, bins: tuple[float, ...] | None = None) -> AnalysisResult:
    """Every configured metric, decided sequentially against its ``maxIncrease``;
    `bins` as for `analyse.analyse`."""
    tmpl = spec.templates(templates)
    rollout = QuerySession(provider, Target(target.namespace, target.deployment, target.baseline, target.candidate,
                                            _window(evidence.since_rollout_s)).validated(spec.window), at,
                           spec.interval)
    step = QuerySession(provider, Target(target.namespace, target.deployment, target.baseline, target.candidate,
                                         _window(evidence.since_step_s)).validated(spec.window), at, spec.interval)
    custom = QuerySession(provider, target.validated(spec.window), at, spec.interval)
    look = SequentialLook(tmpl, rollout, step, custom, evidence, beta, bins)
    return AnalysisResult.of([KINDS[m.kind].sequential(m, look) for m in spec.metrics])
