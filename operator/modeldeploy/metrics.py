"""The operator's own Prometheus metrics, served on ``GET /metrics``.

A shell module: it turns what the rollout decided (`rollout.Decision`) and what the
analysis measured (`AnalysisResult`) into gauges and counters, and never influences a
decision. docs/metrics.md documents every name and label; the Grafana dashboard and the
alert rules use only what is defined here (tests/oncall checks both).

Wiring (handlers.py)::

    metrics.serve_from_env()                        # startup: MODELDEPLOY_METRICS_PORT
    provider = metrics.instrument(provider)         # counts Prometheus query errors by kind
    metrics.record(ns, name, decision, seconds, analysis)   # after status + events are written
    metrics.watched(ns, name)                       # when the operator starts looking after it
    metrics.reconciled(ns, name) / metrics.reconcile_failed(ns, name)   # each reconcile
    metrics.forget(ns, name)                        # when the object's daemon exits

Label values are Kubernetes names and our own enums, so cardinality is bounded by the
number of ModelDeployments times their checks. Series of a deleted object are removed.

Prometheus attaches target labels (``namespace``, ``pod``...) to everything it scrapes;
our ``namespace`` label is the ModelDeployment's, so the scrape must honour it
(ServiceMonitor ``honorLabels: true``), or Prometheus renames it ``exported_namespace``.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Mapping
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from .providers import MetricProvider, MetricQueryError, ProviderTimeout, ProviderUnreachable, QueryFailed, Sample
from .rollout import FAILED, IN_ROLLOUT, PROMOTING, ROLLING_BACK, STABLE, Decision, Phase, Result
from .verdicts import AnalysisResult, Outcome

log = logging.getLogger("modeldeploy.metrics")

#: Every phase gets a series (0 or 1), so `== 1` selects the current one and a phase
#: change never leaves a stale 1 behind. A phase outside this list is exported too.
PHASES = tuple(p.value for p in Phase)
#: status.lastRollout.result; NoWinner: an A/B test ended without a significantly better candidate.
RESULTS = tuple(r.value for r in Result)
VERDICTS = tuple(o.value for o in Outcome)
#: ``kind`` of modeldeploy_metric_query_errors_total: how a query to Prometheus failed.
QUERY_ERROR_KINDS = ("unreachable", "timeout", "query_failed", "other")
SERIES = ("baseline", "candidate", "threshold")
#: Sequential checks: the e-value against "within the tolerance" and the e-value that fails (1/alpha).
EVIDENCE_SERIES = ("e_value", "threshold")
#: Sequential checks: the measured increase, its confidence sequence and the two margins it is decided against.
INCREASE_SERIES = ("estimate", "lower", "upper", "margin", "pass_margin")
#: Seconds; an analysis is a dozen instant queries, each bounded by the provider's timeout.
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

OBJECT = ("namespace", "name")


class OperatorMetrics:
    """All of the operator's metrics in one registry (the process-wide one by default;
    tests pass their own)."""

    def __init__(self, registry: CollectorRegistry | None = REGISTRY) -> None:
        r = registry
        self.registry = registry
        self.phase = Gauge("modeldeploy_rollout_phase", "1 for the ModelDeployment's current status.phase, 0 for the others.",
                           (*OBJECT, "phase"), registry=r)
        self.weight = Gauge("modeldeploy_candidate_weight",
                            "Percent of live traffic routed to the candidate (0 while shadowing or with no candidate).",
                            OBJECT, registry=r)
        self.step = Gauge("modeldeploy_rollout_step", "Index of the current canary step (0-based; 0 with no rollout).",
                          OBJECT, registry=r)
        self.ready = Gauge("modeldeploy_ready", "1 when the stable version serves (condition Ready=True), else 0.",
                           OBJECT, registry=r)
        self.checks = Counter("modeldeploy_analysis_checks",
                              "Analysis checks by verdict (Pass, Fail, Inconclusive, Error).",
                              (*OBJECT, "check", "verdict"), registry=r)
        self.analyses = Counter("modeldeploy_analyses", "Analyses by overall outcome (the verdict the rollout acted on).",
                                (*OBJECT, "outcome"), registry=r)
        self.check_value = Gauge("modeldeploy_analysis_check_value",
                                 "The numbers behind the latest verdict of a check: series=baseline|candidate|threshold "
                                 "(latency in ms, error rate as a fraction, Jensen-Shannon divergence for outputs). "
                                 "Absent when the check measured nothing (Inconclusive, Error) or no rollout runs.",
                                 (*OBJECT, "check", "series"), registry=r)
        self.evidence = Gauge("modeldeploy_analysis_check_evidence",
                              "Sequential checks: series=e_value is the latest evidence (e-value) against 'the "
                              "candidate is within the check's tolerance', series=threshold the e-value at which the "
                              "check fails (1/alpha). Absent for per-window checks and while a check collects its "
                              "first requests.", (*OBJECT, "check", "series"), registry=r)
        self.increase = Gauge("modeldeploy_analysis_check_increase",
                              "Sequential checks: the candidate's increase over the baseline (series=estimate), its "
                              "confidence sequence (lower, upper), the tolerated increase (margin: fails once shown "
                              "beyond it) and the increase a pass must show it below (pass_margin). Latency relative "
                              "(0.25 = 25 % slower), errors a difference of rates, outputs the Jensen-Shannon "
                              "distance (no interval).", (*OBJECT, "check", "series"), registry=r)
        self.rollouts = Counter("modeldeploy_rollouts",
                                "Finished rollouts by result (Promoted, RolledBack, Aborted, NoWinner).",
                                (*OBJECT, "result"), registry=r)
        self.reward = Gauge("modeldeploy_ab_reward_rate",
                            "A/B tests: mean reward per feedback of each version over the test so far "
                            "(series=baseline|candidate), from status.abTest.",
                            (*OBJECT, "series"), registry=r)
        self.events = Counter("modeldeploy_events", "Kubernetes events the operator posted, by reason and type.",
                              (*OBJECT, "reason", "type"), registry=r)
        self.duration = Histogram("modeldeploy_analysis_duration_seconds",
                                  "Wall time of one analysis (all checks of one ModelDeployment).",
                                  buckets=DURATION_BUCKETS, registry=r)
        self.query_errors = Counter("modeldeploy_metric_query_errors",
                                    "Queries to the metric provider (Prometheus) that failed, by kind: unreachable, "
                                    "timeout, query_failed (Prometheus answered with an error), other.",
                                    ("kind",), registry=r)
        self.last_success = Gauge("modeldeploy_reconcile_last_success_timestamp_seconds",
                                  "Unix time of the last reconcile of this ModelDeployment that completed "
                                  "(before the first one: when the operator began watching it).",
                                  OBJECT, registry=r)
        self.reconcile_errors = Counter("modeldeploy_reconcile_errors",
                                        "Reconciles that raised (API errors other than conflicts, bugs); retried with backoff.",
                                        OBJECT, registry=r)
        self.info = Gauge("modeldeploy_operator_info", "Always 1 while the operator runs; absent means it is down.",
                          ("version",), registry=r)
        self.info.labels(_version()).set(1)
        for kind in QUERY_ERROR_KINDS:
            self.query_errors.labels(kind)
        self._lock = threading.Lock()
        self._known: set[tuple[str, str]] = set()
        self._watched: set[tuple[str, str]] = set()
        self._checks: dict[tuple[str, str], set[str]] = {}
        self._values: dict[tuple[str, str], set[str]] = {}

    # -- per reconcile ---------------------------------------------------------------
    def record(self, namespace: str, name: str, decision: Decision | None,
               analysis_seconds: float | None = None, analysis: AnalysisResult | None = None) -> None:
        """Export what one reconcile decided. Call it once the decision's status and
        events are written (so a retried tick after a 409 is not counted twice)."""
        if analysis_seconds is not None:
            self.duration.observe(analysis_seconds)
        if decision is None:
            return
        key = (namespace, name)
        st = decision.status
        with self._lock:
            if key not in self._known:
                self._known.add(key)
                # Counters start at 0, so the first rollback is an increase (alerts use increase()).
                for result in RESULTS:
                    self.rollouts.labels(namespace, name, result)
                for outcome in VERDICTS:
                    self.analyses.labels(namespace, name, outcome)
            phases = PHASES if st.phase in PHASES or not st.phase else (*PHASES, st.phase)
            for p in phases:
                self.phase.labels(namespace, name, p).set(1 if p == st.phase else 0)
            self.weight.labels(namespace, name).set(0 if st.shadow else st.candidateWeight)
            self.step.labels(namespace, name).set(st.step)
            ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.conditions)
            self.ready.labels(namespace, name).set(1 if ready else 0)
            for e in decision.events:
                self.events.labels(namespace, name, e.reason, e.type).inc()
                # Counted when the rollout has finished (NoWinner also names the event that
                # starts rolling an A/B test back).
                if e.reason in RESULTS and st.phase in (STABLE, FAILED):
                    self.rollouts.labels(namespace, name, e.reason).inc()
            if any(e.reason in ("RolloutStarted", "Superseded") for e in decision.events) or st.phase not in (
                    *IN_ROLLOUT, PROMOTING, ROLLING_BACK):
                self._clear_values(key)  # a new rollout, or none: old numbers would mislead
            ab = st.abTest
            for series, rate in (("baseline", ab.baselineRate if ab else None),
                                 ("candidate", ab.candidateRate if ab else None)):
                if rate is None or st.phase not in (*IN_ROLLOUT, PROMOTING, ROLLING_BACK):
                    self.reward.remove_by_labels({"namespace": namespace, "name": name, "series": series})
                else:
                    self.reward.labels(namespace, name, series).set(rate)
            if analysis is not None:
                self.analyses.labels(namespace, name, analysis.outcome.value).inc()
                seen = self._checks.setdefault(key, set())
                values = self._values.setdefault(key, set())
                for check in analysis.checks:
                    if check.name not in seen:
                        seen.add(check.name)
                        for v in VERDICTS:
                            self.checks.labels(namespace, name, check.name, v)
                    self.checks.labels(namespace, name, check.name, check.outcome.value).inc()
                    sequential = check.e_value is not None
                    numbers = [(self.check_value, series, getattr(check, series)) for series in SERIES]
                    numbers += [(gauge, series, getattr(check, series) if sequential else None)
                                for gauge, names in ((self.evidence, EVIDENCE_SERIES), (self.increase, INCREASE_SERIES))
                                for series in names]
                    for gauge, series, value in numbers:
                        if value is None or math.isnan(value):
                            gauge.remove_by_labels(
                                {"namespace": namespace, "name": name, "check": check.name, "series": series})
                        else:
                            gauge.labels(namespace, name, check.name, series).set(value)
                            values.add(check.name)

    def _clear_values(self, key: tuple[str, str]) -> None:
        for check in self._values.pop(key, set()):
            for gauge in (self.check_value, self.evidence, self.increase):
                gauge.remove_by_labels({"namespace": key[0], "name": key[1], "check": check})

    def watched(self, namespace: str, name: str, now: float | None = None) -> None:
        """The operator looks after this object from now on: it gets a heartbeat series at
        once, so one that is never reconciled (starved, stuck) ages into the stall alert."""
        with self._lock:
            if (namespace, name) in self._watched:
                return
            self._watched.add((namespace, name))
        self.last_success.labels(namespace, name).set(time.time() if now is None else now)

    def reconciled(self, namespace: str, name: str, now: float | None = None) -> None:
        """A reconcile of this object completed (whatever it decided, invalid spec included)."""
        self.last_success.labels(namespace, name).set(time.time() if now is None else now)

    def reconcile_failed(self, namespace: str, name: str) -> None:
        self.reconcile_errors.labels(namespace, name).inc()

    def query_error(self, kind: str) -> None:
        self.query_errors.labels(kind if kind in QUERY_ERROR_KINDS else "other").inc()

    def forget(self, namespace: str, name: str) -> None:
        """Drop every series of a ModelDeployment (deleted, or no longer watched)."""
        labels = {"namespace": namespace, "name": name}
        with self._lock:
            for m in (self.phase, self.weight, self.step, self.ready, self.checks, self.analyses, self.check_value,
                      self.evidence, self.increase, self.rollouts, self.reward, self.events, self.last_success,
                      self.reconcile_errors):
                m.remove_by_labels(labels)
            self._known.discard((namespace, name))
            self._watched.discard((namespace, name))
            self._checks.pop((namespace, name), None)
            self._values.pop((namespace, name), None)

    def names(self) -> set[str]:
        """Every sample name this registry can expose (``..._total``, ``..._bucket``...)."""
        out: set[str] = set()
        for m in self.all():
            out.update(metric_sample_names(m))
        return out

    def all(self) -> tuple[Any, ...]:
        return (self.phase, self.weight, self.step, self.ready, self.checks, self.analyses, self.check_value,
                self.evidence, self.increase, self.rollouts, self.reward, self.events, self.duration, self.query_errors,
                self.last_success, self.reconcile_errors, self.info)


def _version() -> str:
    try:
        from importlib.metadata import version

        return version("modeldeploy")
    except Exception:  # noqa: BLE001 - not installed as a distribution
        return "unknown"


def metric_sample_names(m: Any) -> set[str]:
    base, kind = m._name, m._type  # noqa: SLF001 - prometheus_client keeps these private
    if kind == "counter":
        return {f"{base}_total"}
    if kind == "histogram":
        return {f"{base}_bucket", f"{base}_sum", f"{base}_count"}
    return {base}


def error_kind(e: BaseException) -> str:
    if isinstance(e, ProviderUnreachable):
        return "unreachable"
    if isinstance(e, ProviderTimeout):
        return "timeout"
    if isinstance(e, QueryFailed):
        return "query_failed"
    return "other"


class InstrumentedProvider:
    """A `MetricProvider` that counts its failures in modeldeploy_metric_query_errors_total.

    The analysis turns query errors into Error verdicts deep inside; wrapping the provider
    is the one place that sees every failed query with its kind."""

    def __init__(self, provider: MetricProvider, metrics: OperatorMetrics) -> None:
        self.provider = provider
        self.metrics = metrics

    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        try:
            return self.provider.query(promql, at)
        except MetricQueryError as e:
            self.metrics.query_error(error_kind(e))
            raise
        except Exception:
            self.metrics.query_error("other")
            raise

    def is_online(self) -> bool:
        return self.provider.is_online()

    def __getattr__(self, attr: str) -> Any:
        return getattr(self.provider, attr)


# -- the process-wide instance and its module-level API --------------------------------
_default: OperatorMetrics | None = None
_default_lock = threading.Lock()
_server_port: int | None = None


def default() -> OperatorMetrics:
    global _default
    with _default_lock:
        if _default is None:
            _default = OperatorMetrics(REGISTRY)
        return _default


def record(namespace: str, name: str, decision: Decision | None, analysis_seconds: float | None = None,
           analysis: AnalysisResult | None = None) -> None:
    try:
        default().record(namespace, name, decision, analysis_seconds, analysis)
    except Exception:  # noqa: BLE001 - metrics must never break a reconcile
        log.exception("recording metrics of %s/%s failed", namespace, name)


def watched(namespace: str, name: str) -> None:
    default().watched(namespace, name)


def reconciled(namespace: str, name: str) -> None:
    default().reconciled(namespace, name)


def reconcile_failed(namespace: str, name: str) -> None:
    default().reconcile_failed(namespace, name)


def query_error(kind: str) -> None:
    default().query_error(kind)


def forget(namespace: str, name: str) -> None:
    default().forget(namespace, name)


def instrument(provider: MetricProvider) -> MetricProvider:
    """Wrap a metric provider so failed queries are counted."""
    return InstrumentedProvider(provider, default())


def serve(port: int, addr: str = "0.0.0.0") -> None:  # noqa: S104 - a pod's port, reached through its Service
    """Serve /metrics from a daemon thread (once per process; later calls are no-ops)."""
    global _server_port
    default()
    with _default_lock:
        if _server_port is not None:
            return
        start_http_server(port, addr=addr, registry=REGISTRY)
        _server_port = port
    log.info("serving metrics on %s:%d/metrics", addr, port)


def serve_from_env(env: Mapping[str, str] = os.environ) -> int | None:
    """`serve` on MODELDEPLOY_METRICS_PORT (unset, empty, 0 or "off": no server)."""
    raw = (env.get("MODELDEPLOY_METRICS_PORT") or "").strip().lower()
    if raw in ("", "0", "off", "false"):
        return None
    serve(int(raw))
    return int(raw)


__all__ = (
    "OperatorMetrics", "InstrumentedProvider", "record", "watched", "reconciled", "reconcile_failed", "query_error", "forget",
    "instrument", "serve", "serve_from_env", "default",
)
