"""``spec.analysis`` as typed values, parsed once by `spec.parse`.

The CRD's schema is the first line of validation; this is the second, with the same
limits, and the defaults of both come from `schema.DEFAULTS`. The analysis code gets the
parsed `AnalysisSpec` and never reads the raw mapping. To add a field to a check, add it
to the dataclass of the check's kind in `kinds/` and read it in that kind's `parse` (and the CRD).
Fields, as the API server stores them::

    analysis:
      method: sequential       # or window: the classical per-window tests (see below)
      interval: 30s            # Go duration, 1s..720h; how often the operator analyses
      window: <derived>        # h/m/s/ms duration, 1s..720h; default max(2 x interval, 1m)
      minSamples: 100          # per version per window, else Inconclusive
      failureLimit: 2          # read by the rollout state machine
      inconclusiveLimit: 6     #   "
      errorLimit: 4            #   "
      queries:                 # per-object template overrides (see Templates); admin opt-in
        {latency, errors, outputs, reward, feedback}: "<PromQL with {{placeholders}}>"
      metrics:                 # each item has a name and exactly one kind
        - name: p99
          latency: {quantile: 0.99, maxMs: <none>, maxRatioToBaseline: <none>, significance: 0.0033,
                    maxIncrease: <none>}   # sequential: tolerated slow-down (0.25 = 25 %)
        - name: errors
          errorRate: {max: 0.01, significance: 0.0033, maxIncrease: <none>}  # sequential: points (0.005)
        - name: outputs
          outputDistribution: {maxJensenShannon: 0.05*, maxPSI: <none>, significance: 0.0033, test: chiSquare}
        - name: custom
          query: "<PromQL returning one series>"   # admin opt-in (allow_custom_queries)
          min: <none>
          max: <none>          # at least one of min/max
    # * 0.05 when neither maxJensenShannon nor maxPSI is set; only maxPSI: PSI gate alone

With ``method: sequential`` (the default) ``significance`` is each check's alpha (its
probability of ever failing an acceptable candidate), ``maxIncrease`` the tolerance it is
tested against, and ``minSamples``, ``window``, ``maxMs``, ``maxRatioToBaseline``,
``max`` and ``maxPSI`` belong to the window method only (see docs/analysis.md).

Why these defaults (of the window method):

* ``window`` twice the interval so every request is seen by two analyses (none falls
  between windows when scrapes jitter), and at least a minute so a Prometheus scraping
  every 15 s has four samples per series for ``increase()``. Consecutive windows
  therefore overlap: verdicts are not independent, which is why the false-fail target
  is met per analysis, not just per rollout.
* ``significance`` 0.0033 per check: an analysis fails if any check fails, so the
  probability of failing identical versions is at most the sum over checks, 1 % for the
  usual three (Bonferroni). For the sequential method that bound holds for the whole
  rollout, however many analyses run; for the per-window tests it is per analysis.
* ``latency`` without limits fails only when the candidate is significantly slower and
  its quantile is above the baseline's. A ratio limit is opt-in because Seldon's coarse
  buckets distort quantile ratios: a true +30 % p99 reads anywhere from +4 % to +117 %
  depending on where it falls in a bucket, so a default ratio limit would miss real
  regressions. ``maxMs`` and ``maxRatioToBaseline`` are each a reason to fail (OR).
* ``maxJensenShannon`` 0.05 (distance, natural log, as scipy) is half the common 0.1
  drift threshold: the chi-square test guards against noise, the gate against tiny
  shifts that big traffic makes significant, and a 0.1 shift clears it with margin.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..schema import DEFAULTS, DNS_LABEL, MAX_DURATION_S, MIN_DURATION_S, SpecError, positive_duration
from ..verdicts import SEQUENTIAL
from .errors import AnalysisConfigError
from .kinds import KINDS
from .kinds.base import Metric, only, promql
from .kinds.custom import CustomMetric
from .templates import Templates, format_duration

MIN_DEFAULT_WINDOW_S = 60.0
#: sequential: anytime-valid tests on evidence accumulated over the rollout (sequential.py);
#: window: the classical tests on each window (checks.py).
METHODS = (SEQUENTIAL, "window")
# The window is put into PromQL and timed in CEL, so it takes the grammar both understand.
_WINDOW = re.compile(r"(\d+h)?(\d+m)?(\d+s)?(\d+ms)?")
_WINDOW_UNITS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
CUSTOM_QUERIES_REFUSED = (
    "per-object PromQL is disabled on this operator, because it could read any namespace's metrics through the "
    "operator's Prometheus credentials; remove it and use latency, errorRate or outputDistribution checks, or ask "
    "the cluster admin to install the chart with analysis.allowCustomQueries=true")
#: Flat kinds (their fields beside ``name``) and the fields only they may have there.
_FLAT = tuple(k for k, kind in KINDS.items() if k in kind.FIELDS)
_FLAT_FIELDS = tuple(f for k in _FLAT for f in KINDS[k].FIELDS if f not in KINDS)


@dataclass(frozen=True)
class AnalysisSpec:
    """``spec.analysis``; `interval` in seconds, `window` a Prometheus duration."""

    method: str = DEFAULTS["analysis.method"]
    interval: float = positive_duration(DEFAULTS["analysis.interval"], "analysis.interval")
    window: str = "1m"
    min_samples: int = DEFAULTS["analysis.minSamples"]
    failure_limit: int = DEFAULTS["analysis.failureLimit"]
    inconclusive_limit: int = DEFAULTS["analysis.inconclusiveLimit"]
    error_limit: int = DEFAULTS["analysis.errorLimit"]
    queries: Mapping[str, str] | None = None
    metrics: tuple[Metric, ...] = ()

    @property
    def has_metrics(self) -> bool:
        return bool(self.metrics)

    def templates(self, base: Templates | None = None) -> Templates:
        """Operator-wide templates (or the defaults) with this object's overrides."""
        return (base or Templates()).merged(self.queries, "spec.analysis.queries")


def go_seconds(value: object, field_name: str) -> float:
    """Seconds of a duration field, within the CRD's range (1s to 720h)."""
    try:
        return positive_duration(value, field_name)
    except SpecError as e:
        raise AnalysisConfigError(str(e)) from None


def default_window(interval_s: float) -> str:
    """max(2 x interval, 1m), as a Prometheus duration (see the module docstring)."""
    return format_duration(max(2 * interval_s, MIN_DEFAULT_WINDOW_S))


def _window(value: Any, field_name: str) -> str:
    m = _WINDOW.fullmatch(value) if isinstance(value, str) and value and len(value) <= 32 else None
    if not m:
        raise AnalysisConfigError(f"{field_name}: {value!r} is not a Prometheus duration: whole numbers with units "
                                  "h, m, s, ms in that order, such as 30s, 2m or 1m30s")
    seconds = sum(float(g[:-len(u)]) * _WINDOW_UNITS[u] for g, u in zip(m.groups(), ("h", "m", "s", "ms")) if g)
    if not MIN_DURATION_S <= seconds <= MAX_DURATION_S:
        raise AnalysisConfigError(f"{field_name}: {value!r} must be at least 1s and at most 720h (e.g. 2m)")
    return value


def _int(d: Mapping[str, Any], key: str, where: str, hi: int) -> int:
    value = d.get(key, DEFAULTS[f"analysis.{key}"])
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
        raise AnalysisConfigError(f"{where}.{key}: must be a whole number from 1 to {hi}, got {value!r}")
    return value


def _metric(item: Any, where: str) -> Metric:
    if not isinstance(item, Mapping):
        raise AnalysisConfigError(f"{where}: must be a mapping with a name and one of {', '.join(KINDS)}")
    name = item.get("name")
    if not isinstance(name, str) or len(name) > 63 or not DNS_LABEL.fullmatch(name):
        raise AnalysisConfigError(f"{where}.name: {name!r} must be a DNS label of at most 63 lowercase letters, "
                                  "digits and '-', such as p99 or error-rate")
    keys = [k for k in KINDS if k in item]
    if len(keys) != 1:
        raise AnalysisConfigError(f"{where}: needs exactly one of {', '.join(KINDS)}, found {keys or 'none'}")
    key = keys[0]
    kind = KINDS[key]
    if key in _FLAT:
        only(item, ("name", *kind.FIELDS), where)
        return kind.parse(name, item, where)
    if any(f in item for f in _FLAT_FIELDS):
        raise AnalysisConfigError(f"{where}: {' and '.join(_FLAT_FIELDS)} belong to a {' or '.join(_FLAT)} metric "
                                  "only; remove them")
    only(item, ("name", key), where)
    return kind.parse(name, only(item[key], kind.FIELDS, f"{where}.{key}"), f"{where}.{key}")


def parse_analysis(analysis: Mapping[str, Any] | None, where: str = "spec.analysis", *,
                   allow_custom_queries: bool = True) -> AnalysisSpec:
    """Validate ``spec.analysis`` and fill in defaults; AnalysisConfigError names the field.

    `allow_custom_queries` False (the operator's default) refuses ``queries`` and query
    metrics: raw PromQL can select any namespace's series.
    """
    a = only(analysis, ("method", "interval", "window", "minSamples", "failureLimit", "inconclusiveLimit",
                         "errorLimit", "queries", "metrics"), where)
    method = a.get("method", DEFAULTS["analysis.method"])
    if method not in METHODS:
        raise AnalysisConfigError(f"{where}.method: {method!r} must be one of {', '.join(METHODS)}")
    interval = go_seconds(a.get("interval", DEFAULTS["analysis.interval"]), f"{where}.interval")
    window = _window(a["window"], f"{where}.window") if a.get("window") is not None else default_window(interval)
    queries = a.get("queries") or None
    if queries is not None:
        if not allow_custom_queries:
            raise AnalysisConfigError(f"{where}.queries: {CUSTOM_QUERIES_REFUSED}")
        if not isinstance(queries, Mapping):
            raise AnalysisConfigError(f"{where}.queries: must be a mapping of query name to PromQL")
        for k, v in queries.items():
            promql(f"{where}.queries.{k}", v, per_version=True)
    raw_metrics = a.get("metrics") or []
    if not isinstance(raw_metrics, list):
        raise AnalysisConfigError(f"{where}.metrics: must be a list")
    if len(raw_metrics) > 20:
        raise AnalysisConfigError(f"{where}.metrics: at most 20 checks, got {len(raw_metrics)}")
    metrics = tuple(_metric(m, f"{where}.metrics[{i}]") for i, m in enumerate(raw_metrics))
    names = [m.name for m in metrics]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise AnalysisConfigError(f"{where}.metrics: duplicate name(s) {', '.join(dupes)}")
    if not allow_custom_queries:
        for i, m in enumerate(metrics):
            if isinstance(m, CustomMetric):
                raise AnalysisConfigError(f"{where}.metrics[{i}].query: {CUSTOM_QUERIES_REFUSED}")
    spec = AnalysisSpec(
        method=method, interval=interval, window=window,
        min_samples=_int(a, "minSamples", where, 1_000_000_000),
        failure_limit=_int(a, "failureLimit", where, 1000),
        inconclusive_limit=_int(a, "inconclusiveLimit", where, 1000),
        error_limit=_int(a, "errorLimit", where, 1000),
        queries=dict(queries) if queries is not None else None,
        metrics=metrics,
    )
    spec.templates()  # validates the overrides (unknown names) now rather than at the first analysis
    return spec
