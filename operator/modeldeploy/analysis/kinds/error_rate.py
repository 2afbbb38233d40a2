"""``errorRate``: the candidate's share of server errors against the baseline's."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ...schema import DEFAULTS
from ...verdicts import CheckResult
from .. import checks
from .. import sequential_checks as sc
from ..templates import CODE_LABEL
from .base import DEFAULT_SIGNIFICANCE, SequentialLook, WindowLook, both, number, required, significance

KEY = "errorRate"
FIELDS = ("max", "significance", "maxIncrease")
DEFAULT_MAX_ERROR_RATE: float = DEFAULTS["analysis.metrics[].errorRate.max"]


@dataclass(frozen=True)
class ErrorRateMetric:
    kind: ClassVar[str] = KEY
    name: str
    max: float = DEFAULT_MAX_ERROR_RATE
    significance: float = DEFAULT_SIGNIFICANCE
    max_increase: float | None = None  # sequential: tolerated rise of the error rate, 0.005 = half a point


def parse(name: str, d: Mapping[str, Any], w: str) -> ErrorRateMetric:
    return ErrorRateMetric(name, max=required(d, "max", w, DEFAULT_MAX_ERROR_RATE, 0.0, 1.0),
                           significance=significance(d, w),
                           max_increase=number(d, "maxIncrease", w, None, 0.0, 1.0))


def window(metric: ErrorRateMetric, look: WindowLook) -> CheckResult:
    got = both(metric.name, look.session, lambda s, p: s.by(look.templates.errors, p, CODE_LABEL))
    return got if isinstance(got, CheckResult) else checks.error_rate(metric, *got, look.min_samples, look.window)


def sequential(metric: ErrorRateMetric, look: SequentialLook) -> CheckResult:
    # The failure test reads this step's counts and carries the earlier steps' evidence (see
    # sequential_analyse); the pass test reads the rollout's counts.
    whole = both(metric.name, look.rollout, lambda s, p: s.by(look.templates.errors, p, CODE_LABEL))
    if isinstance(whole, CheckResult):
        return whole
    this = both(metric.name, look.step, lambda s, p: s.by(look.templates.errors, p, CODE_LABEL))
    if isinstance(this, CheckResult):
        return this
    ev = look.evidence
    m = sc.Margins.of(metric.max_increase, sc.DEFAULT_ERROR_PASS_MARGIN, metric.significance, look.beta, ev.exposure)
    return sc.error_rate(metric.name, this[0], this[1], ev.share, whole[0], whole[1], m,
                         carried_log_e=ev.carried.get(metric.name, 0.0))
