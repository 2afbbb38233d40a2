"""``latency``: the candidate's quantile against the baseline's, from their histograms."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ...schema import DEFAULTS
from ...verdicts import CheckResult
from .. import checks
from .. import sequential_checks as sc
from .base import DEFAULT_SIGNIFICANCE, SequentialLook, WindowLook, both, number, required, significance

KEY = "latency"
FIELDS = ("quantile", "maxMs", "maxRatioToBaseline", "significance", "maxIncrease")
DEFAULT_QUANTILE: float = DEFAULTS["analysis.metrics[].latency.quantile"]
#: latency.maxIncrease at most 10 (an 11-fold slow-down): beyond it a tolerance means nothing.
MAX_LATENCY_INCREASE = 10.0


@dataclass(frozen=True)
class LatencyMetric:
    kind: ClassVar[str] = KEY
    name: str
    quantile: float = DEFAULT_QUANTILE
    max_ms: float | None = None
    max_ratio: float | None = None
    significance: float = DEFAULT_SIGNIFICANCE
    max_increase: float | None = None  # sequential: tolerated slow-down, 0.25 = 25 %


def parse(name: str, d: Mapping[str, Any], w: str) -> LatencyMetric:
    return LatencyMetric(
        name,
        quantile=required(d, "quantile", w, DEFAULT_QUANTILE, 0.0, 1.0, lo_open=True, hi_open=True),
        max_ms=number(d, "maxMs", w, None, 0.0, math.inf, lo_open=True),
        max_ratio=number(d, "maxRatioToBaseline", w, None, 1.0, math.inf),
        significance=significance(d, w),
        max_increase=number(d, "maxIncrease", w, None, 0.0, MAX_LATENCY_INCREASE),
    )


def window(metric: LatencyMetric, look: WindowLook) -> CheckResult:
    got = both(metric.name, look.session, lambda s, p: s.histogram(look.templates.latency, p))
    return got if isinstance(got, CheckResult) else checks.latency(metric, *got, look.min_samples, look.window)


def sequential(metric: LatencyMetric, look: SequentialLook) -> CheckResult:
    got = both(metric.name, look.rollout, lambda s, p: s.histogram(look.templates.latency, p))
    if isinstance(got, CheckResult):
        return got
    step = both(metric.name, look.step, lambda s, p: s.histogram(look.templates.latency, p))
    if isinstance(step, CheckResult):
        return step
    m = sc.Margins.of(metric.max_increase, sc.DEFAULT_LATENCY_PASS_MARGIN, metric.significance, look.beta,
                      look.evidence.exposure)
    return sc.latency(metric.name, *got, m, metric.quantile, first_look=not look.evidence.fitted_before(metric.name),
                      step=step, carried=look.evidence.stratum(metric.name))
