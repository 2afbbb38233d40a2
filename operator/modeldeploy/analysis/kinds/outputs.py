"""``outputDistribution``: the candidate's outputs (classes, or a regressor's bins) against
the baseline's, by a chi-square test and an effect-size gate."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from ...providers import MetricQueryError
from ...schema import DEFAULT_MAX_JENSEN_SHANNON, DEFAULTS, MAX_JENSEN_SHANNON
from ...verdicts import SEQUENTIAL, CheckResult
from .. import checks, output_bins
from .. import sequential_checks as sc
from ..errors import AnalysisConfigError
from ..query import QuerySession
from ..templates import CLASS_LABEL, REASON_LABEL, UNREADABLE_OUTPUTS
from .base import DEFAULT_SIGNIFICANCE, SequentialLook, WindowLook, both, number, significance

KEY = "outputDistribution"
FIELDS = ("maxJensenShannon", "maxPSI", "significance", "test")


@dataclass(frozen=True)
class OutputMetric:
    """Both effect sizes are optional; with neither set, JS distance 0.05 applies.
    Setting only maxPSI switches the gate to PSI; setting both fires on either."""

    kind: ClassVar[str] = KEY
    name: str
    max_js: float | None = None
    max_psi: float | None = None
    significance: float = DEFAULT_SIGNIFICANCE

    @property
    def js_limit(self) -> float | None:
        if self.max_js is None and self.max_psi is None:
            return DEFAULT_MAX_JENSEN_SHANNON
        return self.max_js


def parse(name: str, d: Mapping[str, Any], w: str) -> OutputMetric:
    if d.get("test", DEFAULTS["analysis.metrics[].outputDistribution.test"]) != "chiSquare":
        raise AnalysisConfigError(f"{w}.test: only chiSquare is supported, got {d['test']!r}")
    return OutputMetric(
        name,
        max_js=number(d, "maxJensenShannon", w, None, 0.0, MAX_JENSEN_SHANNON, lo_open=True),
        max_psi=number(d, "maxPSI", w, None, 0.0, math.inf, lo_open=True),
        significance=significance(d, w),
    )


def unreadable_outputs(name: str, session: QuerySession) -> CheckResult | None:
    """Inconclusive when the output monitor could not read responses of either version.

    Asked before the outputs themselves: a model whose every response is unreadable has
    no output counts at all, and "no data" would not say why. A predictor without the
    monitor has no such series (none unreadable); any other query problem is left to the
    outputs query, which meets it too and reports it.
    """
    if UNREADABLE_OUTPUTS is None:
        return None
    counts = {}
    for version, predictor in (("baseline", session.target.baseline), ("candidate", session.target.candidate)):
        try:
            counts[f"{version} {predictor}"] = session.by(UNREADABLE_OUTPUTS, predictor, REASON_LABEL)
        except MetricQueryError:
            counts[f"{version} {predictor}"] = {}
    return checks.outputs_unreadable(name, counts)


def _counts(metric: OutputMetric, session: QuerySession, look: WindowLook | SequentialLook,
            method: str | None, unreadable: bool = True) -> tuple[dict[str, float], dict[str, float]] | CheckResult:
    """Both versions' output counts, merged into the regressor's bins if it has them;
    `unreadable`: ask first whether the monitor could read them (once per look is enough:
    a window inside one already asked about has nothing new to say)."""
    if unreadable and (found := unreadable_outputs(metric.name, session)):
        return found
    got = both(metric.name, session, lambda s, p: s.by(look.templates.outputs, p, CLASS_LABEL))
    if isinstance(got, CheckResult):
        return got
    base_counts, cand_counts = got
    if look.bins == ():
        return output_bins.pending(metric.name, base_counts, cand_counts, method)
    if look.bins is not None:
        base_counts, cand_counts = output_bins.merge(base_counts, look.bins), output_bins.merge(cand_counts, look.bins)
    return base_counts, cand_counts


def window(metric: OutputMetric, look: WindowLook) -> CheckResult:
    got = _counts(metric, look.session, look, None)
    return got if isinstance(got, CheckResult) else checks.output_distribution(metric, *got, look.min_samples,
                                                                               look.window)


def sequential(metric: OutputMetric, look: SequentialLook) -> CheckResult:
    got = _counts(metric, look.rollout, look, SEQUENTIAL)
    if isinstance(got, CheckResult):
        return got
    step = _counts(metric, look.step, look, SEQUENTIAL, unreadable=False)
    if isinstance(step, CheckResult):
        return step
    # PSI has no sequential test here; a PSI-only metric keeps the default JS limit.
    limit = metric.js_limit if metric.js_limit is not None else DEFAULT_MAX_JENSEN_SHANNON
    return sc.output_distribution(metric.name, *got, limit, metric.significance, step=step,
                                  carried=look.evidence.strata.get(metric.name))
