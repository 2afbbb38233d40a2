"""PromQL templates and the only place values are substituted into PromQL.

Templates are trusted (operator configuration, or the author of the ModelDeployment,
who can only hurt their own rollout); the values put into them are not: a namespace, a
deployment or predictor name and a window come from objects, and a crafted one must not
turn ``predictor_name="{{predictor}}"`` into ``predictor_name="x"} or vector(1) #"``.
So every value is *validated* against the grammar Kubernetes and Prometheus already
impose on it (DNS-1123 names, Prometheus durations) and rejected with the field named,
and then *escaped* for a PromQL string literal anyway, so the template stays safe even
if a validator is loosened one day.

The metric names and labels come from the router's `MetricSeries` (Seldon Core v1's in
`routers.seldon_v1`); `default_queries` turns them into the default PromQL.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from ..routers.seldon_v1 import SERIES as SELDON_V1_SERIES
from ..routing import MetricSeries
from .errors import AnalysisConfigError

# Labels that give the query results their shape (one series per le, code or class).
#: The output monitor's labels: the class or bin it counted, why it could not read a response.
OUTPUT_LABEL = "output"
REASON_LABEL = "reason"
CLASS_LABEL = "class"
CODE_LABEL = "code"
LE_LABEL = "le"


# How far back a counter's earlier samples say it existed before a window (a longer
# outage makes it look new; 1 h of samples is cheap at any usual scrape interval).
SERIES_MEMORY = "1h"


def window_count(selector: str) -> str:
    """PromQL for the number of events a counter counted during the window.

    Not ``increase()``: it extrapolates to the window's edges, inflating counts by
    window / (time between the first and last sample) — on average x1.33 for a 1m
    window at 15 s scrapes, x2 at 30 s — and the statistical tests would then treat
    invented requests as evidence (an A/A false-fail rate of 20 % and more). Instead
    the value now minus the value at the window's start, which is, in order:

    * the last sample at most ``{{lookback}}`` before the start (the analysis interval,
      at least a scrape interval; capped at the window): exact up to a scrape;
    * across a longer scrape gap (Prometheus or the target down when the window began),
      the first sample inside the window. A plain ``offset`` would reach back up to the
      5-minute lookback, to before the gap, and count requests from before the window:
      another step's routing share (a 10 s Prometheus restart at a step's start made
      the next step's counts 30 % candidate at 50 % routing, and the rollout stalled).
      The lookback must not grow with the window, or a later look would reach back;
    * 0 for a series born inside the window (a counter starts at 0): one with no sample
      in the `SERIES_MEMORY` before it. A range, not ``offset`` alone, because a failed
      scrape marks a target's series stale and an instant lookup then finds nothing:
      a target down at the window's start would count its whole lifetime;
    * no value when no sample falls inside the window at all: nothing is known of it
      (with a window shorter than the scrape interval), and the series counts nothing
      rather than its whole lifetime.

    ``clamp_min`` drops a series whose counter reset (a restarted pod) rather than
    letting it go negative.
    """
    w = "{{window}}"
    existed = f"last_over_time({selector}[{SERIES_MEMORY}] offset {w})"
    start = (f"last_over_time({selector}[{{{{lookback}}}}] offset {w})"
             f" or (min_over_time({selector}[{w}]) and {existed})"
             f" or ({selector} * 0 unless {existed})")
    return f"clamp_min({selector} - ({start}), 0)"


#: Istio's standard request counter (one sidecar/gateway metric for every request).
ISTIO_REQUESTS = "istio_requests_total"


def default_queries(series: MetricSeries) -> dict[str, str]:
    """The PromQL of each measurement for a router's metric series, by Templates field."""
    select = (f'{series.namespace_label}="{{{{namespace}}}}", {series.deployment_label}="{{{{deployment}}}}", '
              f'{series.predictor_label}="{{{{predictor}}}}"')
    # Requests to one predictor's Service that Envoy itself answered (``response_flags``
    # not ``-``: no healthy upstream, connection refused, reset, timeout), so the data
    # plane never saw them. The ingress gateway and client sidecars report them
    # (``reporter="source"``).
    istio = ('reporter="source", destination_service_namespace="{{namespace}}", '
             f'destination_service_name="{series.service_name}", response_flags!="-"')
    hist = series.latency_histogram
    return {
        # Histogram buckets of one version: one series per ``le``.
        "latency": f"sum by ({LE_LABEL}) ("
                   + window_count(f"{hist}_bucket{{{select}, {series.predict_filter}}}") + ")",
        # Requests of one version by status code: one series per ``code``. The data
        # plane's (REST codes, gRPC status names) plus Envoy's own answers from Istio, as
        # ``code``: the HTTP code, or ``Unavailable`` for a gRPC call Envoy failed (HTTP
        # 200, grpc-status 14).
        "errors": f"sum by ({CODE_LABEL}) ("
                  + window_count(f"{hist}_count{{{select}, {series.predict_filter}}}")
                  + f' or label_replace(label_replace({window_count(f"{ISTIO_REQUESTS}{{{istio}}}")}, '
                  f'"{CODE_LABEL}", "$1", "response_code", "(.*)"), "{CODE_LABEL}", "Unavailable", '
                  '"grpc_response_status", "14"))',
        "outputs": _outputs(series, select),
        # Sum of rewards of one version, and its number of feedback calls (truth rows),
        # from the same target and scrapes: one series each.
        "reward": "sum(" + window_count(f"{series.reward_counter}{{{select}}}") + ")",
        "feedback": "sum(" + window_count(f"{series.feedback_counter}{{{select}}}") + ")",
    }


def _outputs(series: MetricSeries, select: str) -> str:
    """Outputs of one version by class (or bin): one series per ``class``. The output
    monitor's counts when the predictor has any; else the model server's own (a predictor
    rendered before the monitor existed), never a mix of the two."""
    own = f"sum by ({CLASS_LABEL}) (" + window_count(f"{series.predictions_counter}{{{select}}}") + ")"
    if not series.outputs_counter:
        return own
    monitor = (f"sum by ({CLASS_LABEL}) (label_replace(" + window_count(f"{series.outputs_counter}{{{select}}}")
               + f', "{CLASS_LABEL}", "$1", "{OUTPUT_LABEL}", "(.*)"))')
    return f"{monitor} or ({own} unless on() {monitor})"


def unreadable_query(series: MetricSeries) -> str | None:
    """Responses of one version the output monitor could not read, by ``reason``; not a
    template users replace: it is the monitor's, whatever the outputs query reads."""
    if not series.unreadable_counter:
        return None
    select = (f'{series.namespace_label}="{{{{namespace}}}}", {series.deployment_label}="{{{{deployment}}}}", '
              f'{series.predictor_label}="{{{{predictor}}}}"')
    return f"sum by ({REASON_LABEL}) (" + window_count(f"{series.unreadable_counter}{{{select}}}") + ")"


# The defaults fit the default router (Seldon Core v1).
_DEFAULTS = default_queries(SELDON_V1_SERIES)
DEFAULT_LATENCY = _DEFAULTS["latency"]
DEFAULT_ERRORS = _DEFAULTS["errors"]
DEFAULT_OUTPUTS = _DEFAULTS["outputs"]
DEFAULT_REWARD = _DEFAULTS["reward"]
DEFAULT_FEEDBACK = _DEFAULTS["feedback"]
UNREADABLE_OUTPUTS = unreadable_query(SELDON_V1_SERIES)

PLACEHOLDERS = ("namespace", "deployment", "predictor", "window", "lookback")
# Placeholders that take a Prometheus duration.
DURATIONS = ("window", "lookback")
_PLACEHOLDER = re.compile(r"\{\{\s*([^{}]*?)\s*\}\}")

# Kubernetes' own grammars: namespaces and Seldon predictor names are DNS-1123 labels,
# object names DNS-1123 subdomains. Nothing in them can close a PromQL string.
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# Prometheus 2.x durations: units in descending order, integers only ("1m30s", "90s").
_PROM_DURATION = re.compile(r"^(?:(\d+)y)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?(?:(\d+)ms)?$")
_PROM_UNITS = (365 * 86400, 7 * 86400, 86400, 3600, 60, 1, 0.001)


def prometheus_seconds(value: str) -> float:
    """Seconds in a Prometheus duration; ValueError if it is not one (or is zero)."""
    m = _PROM_DURATION.fullmatch(value) if isinstance(value, str) and value else None
    if not m:
        raise ValueError(value)
    seconds = sum(int(g) * unit for g, unit in zip(m.groups(), _PROM_UNITS) if g)
    if seconds <= 0:
        raise ValueError(value)
    return seconds


def format_duration(seconds: float) -> str:
    """A Prometheus duration for a whole number of seconds (or milliseconds)."""
    ms = int(round(seconds * 1000))
    if ms % 1000:
        return f"{ms}ms"
    s = ms // 1000
    for unit, size in (("h", 3600), ("m", 60)):
        if s % size == 0:
            return f"{s // size}{unit}"
    return f"{s}s"


def escape_label_value(value: str) -> str:
    """Escape for a double-quoted PromQL string: backslash, quote and newline."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def validate_value(field_name: str, placeholder: str, value: object) -> str:
    """The value, checked against its grammar; AnalysisConfigError names the field."""
    if not isinstance(value, str):
        raise AnalysisConfigError(f"{field_name}: must be a string, got {type(value).__name__}")
    shown = value if len(value) <= 80 else value[:77] + "..."
    if placeholder in DURATIONS:
        try:
            prometheus_seconds(value)
        except ValueError:
            raise AnalysisConfigError(
                f"{field_name}: {shown!r} is not a Prometheus duration such as 30s, 1m or 1h30m "
                "(whole numbers, units y w d h m s ms, in that order)"
            ) from None
        return value
    if placeholder == "deployment":
        ok, grammar = len(value) <= 253 and _DNS1123_SUBDOMAIN.fullmatch(value), "a DNS-1123 subdomain"
    else:
        ok, grammar = len(value) <= 63 and _DNS1123_LABEL.fullmatch(value), "a DNS-1123 label"
    if not ok:
        raise AnalysisConfigError(
            f"{field_name}: {shown!r} is not {grammar} (lower-case letters, digits and '-'"
            f"{', dots between labels' if placeholder == 'deployment' else ''}); "
            "values put into PromQL must be plain Kubernetes names"
        )
    return value


def check_template(field_name: str, template: object, per_version: bool = True) -> str:
    """A template's placeholders are all known (and ``{{predictor}}`` is there if needed)."""
    if not isinstance(template, str) or not template.strip():
        raise AnalysisConfigError(f"{field_name}: must be a non-empty PromQL string")
    used = _PLACEHOLDER.findall(template)
    unknown = sorted({u for u in used if u not in PLACEHOLDERS})
    if unknown:
        raise AnalysisConfigError(
            f"{field_name}: unknown placeholder(s) {', '.join('{{' + u + '}}' for u in unknown)}; "
            f"known: {', '.join('{{' + p + '}}' for p in PLACEHOLDERS)}"
        )
    if per_version and "predictor" not in used:
        raise AnalysisConfigError(
            f"{field_name}: needs {{{{predictor}}}}, or baseline and candidate would read the same series"
        )
    return template


def render(template: str, values: Mapping[str, str], field_prefix: str = "target") -> str:
    """Substitute validated, escaped values in one pass (a value is never re-expanded)."""
    checked = {p: escape_label_value(validate_value(f"{field_prefix}.{p}", p, v)) for p, v in values.items()}

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name not in checked:
            raise AnalysisConfigError(f"{field_prefix}: no value for {{{{{name}}}}} in template {template!r}")
        return checked[name]

    return _PLACEHOLDER.sub(sub, template)


@dataclass(frozen=True)
class Templates:
    """The PromQL for each kind of measurement; every one is rendered per version.

    Defaults fit Seldon Core v1 with Prometheus adding a ``namespace`` label (as
    kube-prometheus' pod and service monitors do). Operator configuration replaces any
    of them (`from_mapping`), and ``spec.analysis.queries`` replaces them per object
    (`merged`). The shapes are fixed: latency one series per ``le``, errors per
    ``code``, outputs per ``class``, reward and feedback a single series.
    """

    latency: str = DEFAULT_LATENCY
    errors: str = DEFAULT_ERRORS
    outputs: str = DEFAULT_OUTPUTS
    reward: str = DEFAULT_REWARD
    feedback: str = DEFAULT_FEEDBACK

    def __post_init__(self) -> None:
        for f in fields(self):
            check_template(f"queries.{f.name}", getattr(self, f.name))

    def merged(self, overrides: Mapping[str, str] | None, field_prefix: str = "queries") -> Templates:
        """These templates with some replaced; unknown keys are an error, not ignored."""
        if not overrides:
            return self
        if not isinstance(overrides, Mapping):
            raise AnalysisConfigError(f"{field_prefix}: must be a mapping of query name to PromQL")
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise AnalysisConfigError(
                f"{field_prefix}: unknown query {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        for k, v in overrides.items():
            check_template(f"{field_prefix}.{k}", v)
        return replace(self, **dict(overrides))

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, str] | None, field_prefix: str = "queries") -> Templates:
        """Operator configuration: the defaults with the given templates replaced."""
        return cls().merged(mapping, field_prefix)
