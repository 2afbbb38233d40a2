"""Kopf wiring: one daemon per ModelDeployment runs `reconcile_once` every tick.

A daemon rather than on-update handlers because a rollout is driven by time (step
durations, analysis intervals) as much as by changes; and a daemon that re-reads the
object every tick needs no in-memory state, so a restarted operator simply resumes from
`status`. Order within a tick: decide, write status, post events, consume the command,
then make the SeldonDeployment match. Dying between any two of these is safe (see
`rollout`).
"""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timezone
from typing import Any

import kopf
from kubernetes.client.exceptions import ApiException

from . import GROUP, PLURAL, VERSION, metrics, notify, rollout, seldon
from .analyzer import Analyzer
from .kube import COMMAND_ANNOTATION, Kube, api_client
from .spec import SpecError, parse_object
from .validation import invalid_spec_status

log = logging.getLogger("modeldeploy")
TICK_SECONDS = float(os.environ.get("MODELDEPLOY_TICK_SECONDS", "1"))


def reconcile_once(kube: Kube, analyzer: Analyzer, namespace: str, name: str, now: datetime) -> rollout.Decision | None:
    """One observe-decide-act pass. Raises ApiException(409) when the object changed
    under us; the caller simply runs it again."""
    mdep = kube.get_mdep(namespace, name)
    if mdep is None or mdep["metadata"].get("deletionTimestamp"):
        return None
    raw_status = mdep.get("status") or {}
    try:
        spec = parse_object(mdep, allow_custom_queries=analyzer.allow_custom_queries)
    except SpecError as e:  # before any traffic moves; reported once per error and generation
        report = invalid_spec_status(raw_status, mdep["metadata"].get("generation"), e, now)
        if report is not None:
            kube.patch_status(mdep, report)
            kube.post_event(mdep, "Warning", "InvalidSpec", report["message"])
        return None
    status = rollout.Status.from_dict(raw_status)
    sdep = kube.get_sdep(namespace, name)
    current = rollout.predictors(status)
    applied = bool(current) and seldon.in_sync(sdep, seldon.render(name, namespace, mdep, list(current)))
    due = rollout.analysis_due(spec, status, now)
    started = time.monotonic()
    analysis = analyzer.analyse(spec, status, namespace, name, now) if due else None
    reward = analyzer.rewards(spec, status, namespace, name, now) if due and status.phase == rollout.AB_TESTING else None
    analysis_seconds = time.monotonic() - started if due else None
    command = (mdep["metadata"].get("annotations") or {}).get(COMMAND_ANNOTATION)
    obs = rollout.Observation(
        seldon=seldon.observe(sdep), applied=applied, analysis=analysis, reward=reward,
        command=command.strip().lower() if command else None, generation=mdep["metadata"].get("generation"),
    )
    decision = rollout.step(spec, status, obs, now)
    if decision.status != status:
        kube.patch_status(mdep, decision.status.to_dict())
    for event in decision.events:
        kube.post_event(mdep, event.type, event.reason, event.message)
        log.info("%s/%s %s: %s", namespace, name, event.reason, event.message)
    notify.on_decision(mdep, status, decision, now)  # queued for webhooks; never blocks the tick
    # After status and events: a 409 retry of this tick is not counted twice.
    metrics.record(namespace, name, decision, analysis_seconds, analysis)
    if command:
        kube.consume_command(mdep, command)
    desired = seldon.render(name, namespace, mdep, list(decision.predictors))
    if not seldon.in_sync(sdep, desired):
        if sdep is not None and applied:
            log.info("%s/%s: SeldonDeployment changes routing as decided", namespace, name)
        kube.apply_sdep(sdep, desired)
    return decision


_kube: Kube | None = None
_analyzer: Analyzer | None = None


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    global _kube, _analyzer
    # Kopf's own bookkeeping goes to annotations: status belongs to the rollout alone.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP, key="last-handled-configuration")
    settings.posting.level = logging.WARNING  # our own events say what happened
    # Watch streams can go silent without closing (kopf#585, #847): bound them.
    settings.watching.server_timeout = 120
    settings.watching.client_timeout = 150
    settings.watching.connect_timeout = 30
    # Namespaces come from the command line, so no need to list CRDs or namespaces.
    settings.scanning.disabled = True
    _kube = Kube(api_client())
    _analyzer = Analyzer.from_env()
    _analyzer.provider = metrics.instrument(_analyzer.provider)  # counts query errors by kind
    metrics.serve_from_env()  # MODELDEPLOY_METRICS_PORT; unset, 0 or off: no server


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10.0)
def rollout_daemon(name: str, namespace: str, stopped: kopf.DaemonStopped, logger: logging.Logger, **_: Any) -> None:
    assert _kube is not None and _analyzer is not None
    backoff = TICK_SECONDS
    while not stopped:
        try:
            reconcile_once(_kube, _analyzer, namespace, name, datetime.now(timezone.utc))
            metrics.reconciled(namespace, name)  # heartbeat for the "stopped reconciling" alert
            backoff = TICK_SECONDS
        except ApiException as e:
            if e.status == 409:  # the object or the SeldonDeployment moved: decide again
                continue
            metrics.reconcile_failed(namespace, name)
            logger.warning("reconcile failed (%s %s); retrying in %.0fs", e.status, e.reason, backoff)
            backoff = min(backoff * 2, 30)
        except Exception:  # noqa: BLE001 - keep the daemon alive; status is the source of truth
            metrics.reconcile_failed(namespace, name)
            logger.exception("reconcile failed; retrying in %.0fs", backoff)
            backoff = min(backoff * 2, 30)
        stopped.wait(backoff)
    metrics.forget(namespace, name)  # the object is gone (or the operator stops): drop its series

