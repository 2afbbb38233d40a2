"""``spec.analysis`` as typed values, with every default in one place.

The CRD's schema is the first line of validation; this is the second (and the source
of the defaults the schema repeats). Fields, as the API server stores them::

    analysis:
      method: sequential       # or window: the classical per-window tests (see below)
      interval: 30s            # Go duration; how often the operator analyses
      window: <derived>        # Prometheus duration; default max(2 x interval, 1m)
      minSamples: 100          # per version per window, else Inconclusive
      failureLimit: 2          # read by the rollout state machine
      inconclusiveLimit: 6     #   "
      errorLimit: 4            #   "
      queries:                 # optional per-object template overrides (see Templates)
        {latency, errors, outputs, reward, feedback}: "<PromQL with {{placeholders}}>"
      metrics:                 # each item has a name and exactly one kind
        - name: p99
          latency: {quantile: 0.99, maxMs: <none>, maxRatioToBaseline: <none>, significance: 0.005,
                    maxIncrease: <none>}   # sequential: tolerated slow-down (0.25 = 25 %)
        - name: errors
          errorRate: {max: 0.01, significance: 0.005, maxIncrease: <none>}  # sequential: points (0.005)
        - name: outputs
          outputDistribution: {maxJensenShannon: 0.05*, maxPSI: <none>, significance: 0.005, test: chiSquare}
        - name: custom
          query: "<PromQL returning one series>"
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
* ``significance`` 0.005 per check: an analysis fails if any check fails, so its
  false-fail rate on identical versions is at most the sum over checks (1.5 % for the
  usual three, measured ~1 % by ``benchmarks/simulate_analysis.py``), while a 30 %
  latency increase is still caught at 500 requests per version and a JS 0.1 output
  shift over 10 classes at 1000.
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

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Union

from ..spec import LABEL_VALUE, SpecError, parse_duration
from .errors import AnalysisConfigError
from .templates import Templates, check_template, format_duration, prometheus_seconds

DEFAULT_INTERVAL = "30s"
#: sequential: anytime-valid tests on evidence accumulated over the rollout (sequential.py);
#: window: the classical tests on each window (checks.py).
METHODS = ("sequential", "window")
DEFAULT_METHOD = "sequential"
MIN_DEFAULT_WINDOW_S = 60.0
DEFAULT_MIN_SAMPLES = 100
DEFAULT_FAILURE_LIMIT = 2
DEFAULT_INCONCLUSIVE_LIMIT = 6
DEFAULT_ERROR_LIMIT = 4
DEFAULT_SIGNIFICANCE = 0.005
DEFAULT_QUANTILE = 0.99
DEFAULT_MAX_ERROR_RATE = 0.01
DEFAULT_MAX_JENSEN_SHANNON = 0.05
MAX_JENSEN_SHANNON = math.sqrt(math.log(2))  # the largest JS distance there is (natural log)

_NAME = LABEL_VALUE  # metric names follow the label-value grammar
_KINDS = ("latency", "errorRate", "outputDistribution", "query")


@dataclass(frozen=True)
class LatencyMetric:
    name: str
    quantile: float = DEFAULT_QUANTILE
    max_ms: float | None = None
    max_ratio: float | None = None
    significance: float = DEFAULT_SIGNIFICANCE
    max_increase: float | None = None  # sequential: tolerated slow-down, 0.25 = 25 %


@dataclass(frozen=True)
class ErrorRateMetric:
    name: str
    max: float = DEFAULT_MAX_ERROR_RATE
    significance: float = DEFAULT_SIGNIFICANCE
    max_increase: float | None = None  # sequential: tolerated rise of the error rate, 0.005 = half a point


@dataclass(frozen=True)
class OutputMetric:
    """Both effect sizes are optional; with neither set, JS distance 0.05 applies.
    Setting only maxPSI switches the gate to PSI; setting both fires on either."""

    name: str
    max_js: float | None = None
    max_psi: float | None = None
    significance: float = DEFAULT_SIGNIFICANCE

    @property
    def js_limit(self) -> float | None:
        if self.max_js is None and self.max_psi is None:
            return DEFAULT_MAX_JENSEN_SHANNON
        return self.max_js


@dataclass(frozen=True)
class CustomMetric:
    name: str
    query: str
    min: float | None = None
    max: float | None = None

    @property
    def per_version(self) -> bool:
        return "predictor" in re.findall(r"\{\{\s*([^{}]*?)\s*\}\}", self.query)


Metric = Union[LatencyMetric, ErrorRateMetric, OutputMetric, CustomMetric]


@dataclass(frozen=True)
class AnalysisSpec:
    method: str = DEFAULT_METHOD
    interval_s: float = 30.0
    window: str = "1m"
    min_samples: int = DEFAULT_MIN_SAMPLES
    failure_limit: int = DEFAULT_FAILURE_LIMIT
    inconclusive_limit: int = DEFAULT_INCONCLUSIVE_LIMIT
    error_limit: int = DEFAULT_ERROR_LIMIT
    queries: Mapping[str, str] | None = None
    metrics: tuple[Metric, ...] = ()

    def templates(self, base: Templates | None = None) -> Templates:
        """Operator-wide templates (or the defaults) with this object's overrides."""
        return (base or Templates()).merged(self.queries, "spec.analysis.queries")


def go_seconds(value: object, field_name: str) -> float:
    try:
        seconds = parse_duration(value, field_name)  # type: ignore[arg-type]
    except SpecError as e:
        raise AnalysisConfigError(str(e)) from None
    if seconds <= 0:
        raise AnalysisConfigError(f"{field_name}: must be longer than zero")
    return seconds


def default_window(interval_s: float) -> str:
    """max(2 x interval, 1m), as a Prometheus duration (see the module docstring)."""
    return format_duration(max(2 * interval_s, MIN_DEFAULT_WINDOW_S))


def _number(d: Mapping[str, Any], key: str, where: str, default: float | None, lo: float, hi: float,
            lo_open: bool = False, hi_open: bool = False) -> float | None:
    value = d.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise AnalysisConfigError(f"{where}.{key}: must be a number, got {value!r}")
    if value < lo or (lo_open and value == lo) or value > hi or (hi_open and value == hi):
        low, high = f"({lo:g}" if lo_open else f"[{lo:g}", f"{hi:g})" if hi_open else f"{hi:g}]"
        raise AnalysisConfigError(f"{where}.{key}: {value!r} is outside {low}, {high}")
    return float(value)


def _required(d: Mapping[str, Any], key: str, where: str, default: float, lo: float, hi: float,
              lo_open: bool = False, hi_open: bool = False) -> float:
    value = _number(d, key, where, default, lo, hi, lo_open, hi_open)
    if value is None:  # an explicit null: the CRD schema would not let it through
        raise AnalysisConfigError(f"{where}.{key}: must be a number, got null")
    return value


def _significance(d: Mapping[str, Any], where: str) -> float:
    return _required(d, "significance", where, DEFAULT_SIGNIFICANCE, 0.0, 0.5, lo_open=True)


def _int(d: Mapping[str, Any], key: str, where: str, default: int) -> int:
    value = d.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AnalysisConfigError(f"{where}.{key}: must be a whole number of at least 1, got {value!r}")
    return value


def _only(d: Any, allowed: tuple[str, ...], where: str) -> Mapping[str, Any]:
    if d is None:
        return {}
    if not isinstance(d, Mapping):
        raise AnalysisConfigError(f"{where}: must be a mapping")
    unknown = sorted(set(d) - set(allowed))
    if unknown:
        raise AnalysisConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(allowed)}")
    return d


def _metric(item: Any, where: str) -> Metric:
    if not isinstance(item, Mapping):
        raise AnalysisConfigError(f"{where}: must be a mapping with a name and one of {', '.join(_KINDS)}")
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.match(name):
        raise AnalysisConfigError(f"{where}.name: {name!r} must be 1-63 letters, digits, '-', '_' or '.'")
    kinds = [k for k in _KINDS if k in item]
    if len(kinds) != 1:
        raise AnalysisConfigError(f"{where}: needs exactly one of {', '.join(_KINDS)}, found {kinds or 'none'}")
    kind = kinds[0]
    if kind == "query":
        _only(item, ("name", "query", "min", "max"), where)
        query = check_template(f"{where}.query", item["query"], per_version=False)
        lo = _number(item, "min", where, None, -math.inf, math.inf)
        hi = _number(item, "max", where, None, -math.inf, math.inf)
        if lo is None and hi is None:
            raise AnalysisConfigError(f"{where}: a query metric needs min, max or both")
        if lo is not None and hi is not None and lo > hi:
            raise AnalysisConfigError(f"{where}: min {lo:g} is greater than max {hi:g}")
        return CustomMetric(name, query, lo, hi)
    _only(item, ("name", kind), where)
    w = f"{where}.{kind}"
    if kind == "latency":
        d = _only(item[kind], ("quantile", "maxMs", "maxRatioToBaseline", "significance", "maxIncrease"), w)
        return LatencyMetric(
            name,
            quantile=_required(d, "quantile", w, DEFAULT_QUANTILE, 0.0, 1.0, lo_open=True, hi_open=True),
            max_ms=_number(d, "maxMs", w, None, 0.0, math.inf, lo_open=True),
            max_ratio=_number(d, "maxRatioToBaseline", w, None, 0.0, math.inf, lo_open=True),
            significance=_significance(d, w),
            max_increase=_number(d, "maxIncrease", w, None, 0.0, 10.0),
        )
    if kind == "errorRate":
        d = _only(item[kind], ("max", "significance", "maxIncrease"), w)
        return ErrorRateMetric(
            name,
            max=_required(d, "max", w, DEFAULT_MAX_ERROR_RATE, 0.0, 1.0),
            significance=_significance(d, w),
            max_increase=_number(d, "maxIncrease", w, None, 0.0, 1.0),
        )
    d = _only(item[kind], ("maxJensenShannon", "maxPSI", "significance", "test"), w)
    if d.get("test", "chiSquare") != "chiSquare":
        raise AnalysisConfigError(f"{w}.test: only chiSquare is supported, got {d['test']!r}")
    return OutputMetric(
        name,
        max_js=_number(d, "maxJensenShannon", w, None, 0.0, MAX_JENSEN_SHANNON, lo_open=True),
        max_psi=_number(d, "maxPSI", w, None, 0.0, math.inf, lo_open=True),
        significance=_significance(d, w),
    )


def parse_analysis(analysis: Mapping[str, Any] | None, where: str = "spec.analysis") -> AnalysisSpec:
    """Validate ``spec.analysis`` and fill in defaults; AnalysisConfigError names the field."""
    a = _only(analysis, ("method", "interval", "window", "minSamples", "failureLimit", "inconclusiveLimit",
                         "errorLimit", "queries", "metrics"), where)
    method = a.get("method", DEFAULT_METHOD)
    if method not in METHODS:
        raise AnalysisConfigError(f"{where}.method: {method!r} must be one of {', '.join(METHODS)}")
    interval_s = go_seconds(a.get("interval", DEFAULT_INTERVAL), f"{where}.interval")
    window = a.get("window") or default_window(interval_s)
    try:
        prometheus_seconds(window)
    except ValueError:
        raise AnalysisConfigError(
            f"{where}.window: {window!r} is not a Prometheus duration such as 30s, 1m or 1h30m") from None
    queries = a.get("queries") or None
    spec_ = AnalysisSpec(
        method=method,
        interval_s=interval_s,
        window=window,
        min_samples=_int(a, "minSamples", where, DEFAULT_MIN_SAMPLES),
        failure_limit=_int(a, "failureLimit", where, DEFAULT_FAILURE_LIMIT),
        inconclusive_limit=_int(a, "inconclusiveLimit", where, DEFAULT_INCONCLUSIVE_LIMIT),
        error_limit=_int(a, "errorLimit", where, DEFAULT_ERROR_LIMIT),
        queries=dict(queries) if isinstance(queries, Mapping) else queries,
    )
    spec_.templates()  # validates the overrides now rather than at the first analysis
    raw_metrics = a.get("metrics") or []
    if not isinstance(raw_metrics, list):
        raise AnalysisConfigError(f"{where}.metrics: must be a list")
    metrics = tuple(_metric(m, f"{where}.metrics[{i}]") for i, m in enumerate(raw_metrics))
    names = [m.name for m in metrics]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise AnalysisConfigError(f"{where}.metrics: duplicate name(s) {', '.join(dupes)}")
    return AnalysisSpec(**{**spec_.__dict__, "metrics": metrics})
