"""``query``: one PromQL value of the candidate within ``min``/``max`` (admin opt-in:
`config.parse_analysis` refuses it unless custom queries are allowed).

A flat kind: ``query``, ``min`` and ``max`` sit beside ``name`` (`FIELDS` holds `KEY`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ...providers import MetricQueryError
from ...verdicts import CheckResult
from .. import checks
from ..errors import AnalysisConfigError
from .base import SequentialLook, WindowLook, number, promql

KEY = "query"
FIELDS = ("query", "min", "max")


@dataclass(frozen=True)
class CustomMetric:
    kind: ClassVar[str] = KEY
    name: str
    query: str
    min: float | None = None
    max: float | None = None

    @property
    def per_version(self) -> bool:
        return "predictor" in re.findall(r"\{\{\s*([^{}]*?)\s*\}\}", self.query)


def parse(name: str, item: Mapping[str, Any], where: str) -> CustomMetric:
    query = promql(f"{where}.query", item["query"], per_version=False)
    lo = number(item, "min", where, None, -math.inf, math.inf)
    hi = number(item, "max", where, None, -math.inf, math.inf)
    if lo is None and hi is None:
        raise AnalysisConfigError(f"{where}: a query metric needs min, max or both")
    if lo is not None and hi is not None and lo > hi:
        raise AnalysisConfigError(f"{where}: min {lo:g} is greater than max {hi:g}")
    return CustomMetric(name, query, lo, hi)


def window(metric: CustomMetric, look: WindowLook) -> CheckResult:
    t = look.session.target
    try:
        candidate = look.session.value(metric.query, t.candidate)
    except MetricQueryError as e:
        return checks.from_query_error(metric.name, f"candidate {t.candidate}", e)
    baseline = None
    if metric.per_version:
        try:
            baseline = look.session.value(metric.query, t.baseline)
        except MetricQueryError:
            pass  # shown for context only; the verdict is about the candidate
    return checks.custom(metric, candidate, baseline)


def sequential(metric: CustomMetric, look: SequentialLook) -> CheckResult:
    t = look.custom.target  # a scalar has no sample size to accumulate: judged over spec.analysis.window
    try:
        candidate = look.custom.value(metric.query, t.candidate)
    except MetricQueryError as e:
        return checks.from_query_error(metric.name, f"candidate {t.candidate}", e)
    return checks.custom(metric, candidate)
