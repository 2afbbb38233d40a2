"""The one exception the analysis package raises for bad configuration."""

from __future__ import annotations

from ..schema import SpecError


class AnalysisConfigError(SpecError):
    """`spec.analysis`, a query template or a substituted value is invalid.

    The message starts with the offending field (``spec.analysis.metrics[1].latency.quantile``,
    ``target.predictor``, ``queries.latency``) and says what would be accepted. This is
    a configuration problem, not a metric outcome: retrying will not fix it, so it is
    raised rather than folded into an Error verdict. A SpecError, so the operator turns
    one raised while parsing into InvalidSpec like any other bad field.
    """
