"""The sequential analysis of one look: query cumulative counts, run the sequential checks.

Which counts, and why:

* latency and outputs: everything since the rollout began (`Evidence.since_rollout_s`).
  Their tests are two-sample (each version's requests are a sample of that version), so
  weight changes between steps do not bias them and evidence keeps accumulating across
  steps: a later step starts with all the earlier evidence instead of from nothing.
* errors: the failure test conditions on the routing share, which is constant only within
  a step, so it reads the counts since the step began (`since_step_s`) and spends alpha
  across steps (80 % at the first, then a fifth of the rest at each: the total stays <= alpha);
  its pass test is two-sample and uses the counts since the rollout began.

Pure except through the provider, like `analyse`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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
    step: int = 0  # index of the step, for spending alpha across steps
    exposure: float = 1.0  # the candidate's share of users once this step passes (1: promotion)

    @classmethod
    def of_status(cls, status: Status, now: datetime, steps: Sequence[int] = ()) -> Evidence:
        """From the rollout's status: the windows start at rolloutStartedAt and stepStartedAt.

        With the canary's `steps`, a pass of a step that leads to another step is judged at
        that step's weight (`sequential_checks.Margins`); a shadow, an A/B test and the last
        step lead to promotion and are judged at 100 %.
        """
        rollout_start = parse_time(status.rolloutStartedAt) or now
        step_start = parse_time(status.stepStartedAt) or now
        share = 0.5 if status.shadow else status.candidateWeight / 100
        exposure = 1.0
        if steps and not status.shadow and status.phase == PROGRESSING:
            exposure = next((w for w in sorted(steps) if w > status.candidateWeight), 100) / 100
        return cls((now - rollout_start).total_seconds(), (now - step_start).total_seconds(), share, status.step,
                   exposure)

    def step_alpha(self, alpha: float) -> float:
        """Alpha for a test that restarts at every step: 80 % at the first, where a bad
        candidate is met, then a fifth of the rest at each later one (the sum is alpha)."""
        return alpha * 0.8 * 0.2 ** self.step


def _window(seconds: float) -> str:
    return format_duration(max(1, int(seconds)))


def analyse_sequential(spec: AnalysisSpec, target: Target, provider: MetricProvider, evidence: Evidence,
                       templates: Templates | None = None, *, at: float | None = None,
                       beta: float = sc.DEFAULT_BETA, bins: tuple[float, ...] | None = None) -> AnalysisResult:
    """Every configured metric, decided sequentially against its ``maxIncrease``;
    `bins` as for `analyse.analyse`."""
    tmpl = spec.templates(templates)
    rollout = QuerySession(provider, Target(target.namespace, target.deployment, target.baseline, target.candidate,
                                            _window(evidence.since_rollout_s)).validated(spec.window), at)
    step = QuerySession(provider, Target(target.namespace, target.deployment, target.baseline, target.candidate,
                                         _window(evidence.since_step_s)).validated(spec.window), at)
    custom = QuerySession(provider, target.validated(spec.window), at)
    # The look `sequential_checks.latency` spends part of alpha on with a fixed-sample test:
    # the first at least FIRST_LOOK_S (or an interval) after the rollout began. Looks are at
    # least an interval apart (less the status's millisecond timestamps), so at most one
    # falls in a window 0.9 of an interval long; a late look may miss it (power lost, never
    # validity).
    start = max(sc.FIRST_LOOK_S, spec.interval)
    first_look = start <= evidence.since_rollout_s < start + 0.9 * spec.interval
    look = SequentialLook(tmpl, rollout, step, custom, evidence, beta, bins, first_look)
    return AnalysisResult.of([KINDS[m.kind].sequential(m, look) for m in spec.metrics])
