"""Kopf wiring: event-driven reconciles on the watch, a bounded pool for blocking calls.

Kopf watches ModelDeployments and SeldonDeployments (one stream per kind; SeldonDeployments
are kept in a Kopf index, the local cache). Each ModelDeployment has an *async* daemon,
a coroutine and not a thread, that runs `reconcile_once` when a watch event about the
object or its SeldonDeployment wakes it, when time alone can change the decision
(`scheduler.next_due`: the next analysis, the end of a step, a deadline), and once per
resync period. An idle object costs no API request. The reconciles themselves (Kubernetes
writes, Prometheus queries: blocking calls) run in a pool of MODELDEPLOY_CONCURRENCY
threads, so thousands of objects share a few threads and none is starved.

Order within a reconcile: decide, write status, post events, consume the command, then
make the SeldonDeployment match. Dying between any two of these is safe (see `rollout`;
events of status.history are posted idempotently, see `events`). A write happens only when
something changed, so our own writes, coming back as watch events, settle at once.
"""

from __future__ import annotations

import asyncio
import copy
import ctypes
import hashlib
import json
import logging
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import kopf
from kubernetes.client.exceptions import ApiException

from . import COMMAND_ANNOTATION, GROUP, PLURAL, VERSION, metrics, notify, rollout, routers
from .analyzer import Analyzer
from .kube import Kube, api_client
from .scheduler import Book, newer, next_due
from .spec import SpecError, parse_object
from .validation import invalid_spec_status

log = logging.getLogger("modeldeploy")
#: Reconciles (and so Kubernetes/Prometheus calls) running at once.
CONCURRENCY = max(1, int(os.environ.get("MODELDEPLOY_CONCURRENCY", "8")))
#: Every object is reconciled at least this often, from the cache (no request unless
#: something drifted); it also keeps the stall alert's heartbeat fresh.
RESYNC_SECONDS = float(os.environ.get("MODELDEPLOY_RESYNC_SECONDS", "60"))
#: First retry after a failed reconcile; doubles up to 30 s.
RETRY_SECONDS = float(os.environ.get("MODELDEPLOY_TICK_SECONDS", "1"))
#: Events of history entries older than this are not re-posted after a restart (Events
#: expire after an hour by default; re-creating them would only resurrect old news).
CATCH_UP = timedelta(hours=1)
#: How often freed heap memory is handed back to the system while reconciles write.
TRIM_SECONDS = 2.0
_SLACK = 0.005  # timers may fire a little early; being late by 5 ms is harmless
#: The traffic router (MODELDEPLOY_ROUTER, default seldon-v1); its resource is watched below.
ROUTER = routers.from_env()


@dataclass
class Outcome:
    decision: rollout.Decision | None
    mdep: dict[str, Any] | None = None  # as written by us (None: no write)
    sdep: dict[str, Any] | None = None
    due: datetime | None = None


def _normal(v: Any) -> Any:
    """Status as the API server keeps it: a merge patch drops None, JSON has no tuples."""
    if isinstance(v, dict):
        return {k: _normal(x) for k, x in v.items() if x is not None}
    if isinstance(v, (list, tuple)):
        return [_normal(x) for x in v]
    return v


def status_changed(stored: dict[str, Any], decided: rollout.Status) -> bool:
    """Compared as stored: `stableModel.sha256: None` equals an absent sha256 (comparing
    dataclasses, it never did, and every tick re-wrote an unchanged status)."""
    new = decided.to_dict()
    return _normal(new) != _normal({k: v for k, v in stored.items() if k in new})


def _digest(status: rollout.Status) -> str:
    """A status as stored, hashed: the book keeps this, not a copy of every object's status."""
    text = json.dumps(_normal(status.to_dict()), sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _repeated_verdict(before: rollout.Status, after: rollout.Status, event: rollout.Event) -> bool:
    """An analysis verdict, while paused, that says what the last one said."""
    if not event.reason.startswith("Analysis") or before.phase != rollout.PAUSED or after.phase != rollout.PAUSED:
        return False
    old, new = before.lastAnalysis, after.lastAnalysis
    return (old and (old.outcome, old.message)) == (new and (new.outcome, new.message))


def post_events(kube: Kube, mdep: Mapping[str, Any], before: rollout.Status, decision: rollout.Decision,
                book: Book, now: datetime) -> None:
    """History entries the cluster may not have yet (by seq, idempotent), then the rest."""
    meta = mdep["metadata"]
    history = list(decision.status.history)
    if book.uid != meta.get("uid"):
        book.uid, book.posted_seq = meta.get("uid"), None
    if history:
        if book.posted_seq is None:
            # First sight since start-up: post backwards until one already exists.
            for entry in reversed(history):
                when = rollout.parse_time(entry.get("time"))
                if when is not None and now - when > CATCH_UP or not kube.post_history(mdep, entry):
                    break
            book.posted_seq = max(int(e["seq"]) for e in history)
        for entry in history:
            if int(entry["seq"]) > book.posted_seq:
                kube.post_history(mdep, entry)
                book.posted_seq = int(entry["seq"])
    for event in decision.events:
        if history and event.seq is not None:
            continue  # posted above, from status.history
        if _repeated_verdict(before, decision.status, event):
            continue
        kube.post_event(mdep, event.type, event.reason, event.message)
    for event in decision.events:
        log.info("%s/%s %s: %s", meta["namespace"], meta["name"], event.reason, event.message)


def reconcile_once(kube: Kube, analyzer: Analyzer, mdep: Mapping[str, Any], sdep: Mapping[str, Any] | None,
                   book: Book, now: datetime) -> Outcome:
    """One observe-decide-act pass on the cached objects. Raises ApiException(409) when
    an object changed under us; the caller runs it again on the newer copy."""
    meta = mdep["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    if meta.get("deletionTimestamp"):
        return Outcome(None)
    raw_status = mdep.get("status") or {}
    try:
        spec = parse_object(mdep, allow_custom_queries=analyzer.allow_custom_queries)
    except SpecError as e:  # before any traffic moves; reported once per error and generation
        report = invalid_spec_status(raw_status, meta.get("generation"), e, now)
        written = None
        if report is not None:
            written = kube.patch_status(mdep, report)
            kube.post_event(mdep, "Warning", "InvalidSpec", report["message"])
        return Outcome(None, written)
    status = rollout.Status.from_dict(raw_status)
    current = rollout.predictors(status)
    applied = bool(current) and ROUTER.in_sync(sdep, ROUTER.render(name, namespace, mdep, current))
    due = rollout.analysis_due(spec, status, now)
    started = now.timestamp()
    bins = analyzer.output_bins(spec, status, namespace, name, now) if due else None
    analysis = analyzer.analyse(spec, status, namespace, name, now, bins) if due else None
    reward = analyzer.rewards(spec, status, namespace, name, now) if due and status.phase == rollout.AB_TESTING else None
    analysis_seconds = datetime.now(timezone.utc).timestamp() - started if due else None
    command = (meta.get("annotations") or {}).get(COMMAND_ANNOTATION)
    obs = rollout.Observation(
        routing=ROUTER.observe(sdep), applied=applied, analysis=analysis, reward=reward,
        command=command.strip().lower() if command else None, generation=meta.get("generation"), output_bins=bins,
    )
    decision = rollout.step(spec, status, obs, now)
    out = Outcome(decision, due=next_due(spec, decision.status, now))
    if status_changed(raw_status, decision.status):
        digest = _digest(decision.status)
        if book.written == (meta["resourceVersion"], digest):
            # We wrote exactly this and nobody wrote since, yet it reads back different:
            # writing again would only loop (write, watch event, write...).
            log.warning("%s/%s: status reads back unlike what was written; not writing it again", namespace, name)
        else:
            out.mdep = mdep = kube.patch_status(mdep, decision.status.to_dict())
            book.written = (mdep["metadata"]["resourceVersion"], digest)
    post_events(kube, mdep, status, decision, book, now)
    notify.on_decision(mdep, status, decision, now)  # queued for webhooks; never blocks the reconcile
    # After status and events: a 409 retry of this reconcile is not counted twice.
    metrics.record(namespace, name, decision, analysis_seconds, analysis)
    if command:
        out.mdep = kube.consume_command(mdep, command) or out.mdep
    desired = ROUTER.render(name, namespace, mdep, decision.predictors)
    if not ROUTER.in_sync(sdep, desired):
        if sdep is not None and applied:
            log.info("%s/%s: SeldonDeployment changes routing as decided", namespace, name)
        out.sdep = kube.apply_routing(ROUTER.resource, sdep, desired)
    return out


# -- the asynchronous shell --------------------------------------------------------------
_Handler = TypeVar("_Handler", bound=Callable[..., Any])


def handler(register: Callable[[Any], object]) -> Callable[[_Handler], _Handler]:
    """`@handler(kopf.on.event(...))` registers like `@kopf.on.event(...)`. Kopf's handler
    protocols (IndexingFn, WatchingFn, DaemonFn) list every keyword it passes, type
    `namespace` optional for cluster-scoped kinds and cannot name an index argument; our
    handlers take the few keywords they use (**_), for namespaced kinds, and the index by
    name. This is the one place where their signatures meet Kopf's, unchecked."""
    def decorate(fn: _Handler) -> _Handler:
        register(fn)
        return fn
    return decorate


_kube: Kube | None = None
_analyzer: Analyzer | None = None
_pool: ThreadPoolExecutor | None = None
_books: dict[tuple[str, str], Book] = {}
_writes = 0  # reconciles that wrote so far; the heap is trimmed only after some did
_turns = asyncio.Semaphore(2 * CONCURRENCY)  # reconciles in the pool or queued for it
_trimmer: asyncio.Task[None] | None = None


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    global _kube, _analyzer, _pool
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
    settings.execution.max_workers = CONCURRENCY
    # Kopf handles each object's watch events in a worker task and, unbounded, runs one per
    # object at once; its aiohttp connection pool is unbounded too (limit=0). At the start-up
    # of 1,000 new objects, 1,000 workers PATCHing their finalizers at once raised RSS by
    # about 200 MB in 20 s, the operator's peak; with bounded workers the operator held at
    # most 48 file descriptors and peaked 90 MB lower. A worker whose object has no more
    # events gives way at once: reconciles run in our pool, so a slot is held only briefly.
    settings.queueing.worker_limit = 8 * CONCURRENCY
    settings.queueing.idle_timeout = 0.1
    # A replica that dies without saying so is presumed dead after this long (peering).
    settings.peering.lifetime = int(os.environ.get("MODELDEPLOY_PEERING_LIFETIME", "60"))
    instance = os.environ.get("POD_ID") or socket.gethostname()
    _pool = ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="reconcile")
    _kube = Kube(api_client(CONCURRENCY + 1), instance=instance)
    _analyzer = Analyzer.from_env(series=ROUTER.series, wrap=metrics.instrument)  # counts query errors by kind
    metrics.serve_from_env()  # MODELDEPLOY_METRICS_PORT; unset, 0 or off: no server
    log.info("reconciling with %d threads, resync every %.0fs", CONCURRENCY, RESYNC_SECONDS)


@kopf.on.startup()
async def start_heap_trimming(**_: Any) -> None:
    global _trimmer
    _trimmer = asyncio.get_running_loop().create_task(_trim_heap())


async def _trim_heap(every: float = TRIM_SECONDS) -> None:
    """glibc returns only the top of its heap to the system: after a burst of reconciles
    (start-up, a thousand version changes) about 100 MB of freed memory between live
    objects stayed resident for good. `malloc_trim(0)` gives back every free page (about
    0.1 s for a fragmented 150 MB heap, off the event loop). It runs only after writes
    (what the bursts are made of), so an idle operator, which only resyncs, never does."""
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return  # not glibc
    trimmed_at = -1
    while True:
        await asyncio.sleep(every)
        if _writes != trimmed_at:
            trimmed_at = _writes
            await asyncio.to_thread(trim, 0)  # ctypes lets go of the GIL: the loop runs on


@kopf.on.cleanup()
def shutdown(**_: Any) -> None:
    if _pool is not None:
        _pool.shutdown(wait=False, cancel_futures=True)


@handler(kopf.index(ROUTER.resource.group, ROUTER.resource.version, ROUTER.resource.plural))
def seldondeployments(namespace: str, name: str, body: kopf.Body, **_: Any) -> dict[tuple[str, str], str]:
    """SeldonDeployments by (namespace, name), which is their ModelDeployment's, as compact
    JSON (see `packed`): decoded only when their ModelDeployment reconciles."""
    return {(namespace, name): packed(body)}


def _wake(namespace: str, name: str) -> None:
    book = _books.get((namespace, name))
    if book is not None:
        book.wake.set()


@handler(kopf.on.event(ROUTER.resource.group, ROUTER.resource.version, ROUTER.resource.plural))
async def seldon_changed(namespace: str, name: str, type: str | None, **_: Any) -> None:  # noqa: A002 - Kopf's name
    book = _books.get((namespace, name))
    if book is not None and type == "DELETED":
        book.sdep = None  # our last write no longer stands for it
    _wake(namespace, name)


@handler(kopf.on.event(GROUP, VERSION, PLURAL))
async def mdep_changed(namespace: str, name: str, type: str | None, meta: kopf.Meta, **_: Any) -> None:  # noqa: A002
    if type == "DELETED" and _kube is not None:
        _kube.events.forget(meta)
    _wake(namespace, name)


def _api_message(e: ApiException) -> str:
    try:
        return str(json.loads(e.body or "").get("message"))[:500]
    except (ValueError, AttributeError):
        return str(e.body)[:500]


def lean(body: Any) -> dict[str, Any]:
    """A private copy without metadata.managedFields (often half of an object, never read
    here): with thousands of objects cached, that is most of the operator's memory."""
    out = copy.deepcopy({k: v for k, v in body.items() if k != "metadata"})
    out["metadata"] = copy.deepcopy({k: v for k, v in body["metadata"].items() if k != "managedFields"})
    return out


def packed(body: Any) -> str:
    """`lean(body)` as one compact JSON string: a cached object costs its text (about 2 KB
    for a SeldonDeployment) instead of a tree of dicts and strings ten times that size."""
    meta = {k: v for k, v in body["metadata"].items() if k != "managedFields"}
    return json.dumps({**body, "metadata": meta}, separators=(",", ":"))


def unpacked(cached: str | None) -> dict[str, Any] | None:
    return None if cached is None else json.loads(cached)


@handler(kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=10.0))
async def rollout_daemon(name: str, namespace: str, body: kopf.Body, seldondeployments: kopf.Index,
                         logger: logging.Logger, **_: Any) -> None:
    global _writes
    assert _kube is not None and _analyzer is not None and _pool is not None
    key = (namespace, name)
    book = _books[key] = Book()
    metrics.watched(namespace, name)  # a series from the start: a starved object shows as stalled
    loop = asyncio.get_running_loop()
    backoff = RETRY_SECONDS
    turn = False
    # Dropped after each reconcile (below): declared here so that None is a valid value.
    job: asyncio.Future[Outcome] | None = None
    out: Outcome | None = None
    try:
        while True:
            # Copies are made only with a turn: 1,000 objects waking at once (start-up, a
            # burst of changes) do not each hold theirs while queueing for a thread.
            await _turns.acquire()
            turn = True
            book.wake.clear()
            mdep = newer(lean(body), book.mdep)
            sdep = newer(unpacked(next(iter(seldondeployments.get(key, ())), None)), book.sdep)
            # Our own writes are kept only until the watch has delivered them.
            book.mdep = book.mdep if mdep is book.mdep else None
            book.sdep = book.sdep if sdep is book.sdep else None
            now = datetime.now(timezone.utc)
            job = loop.run_in_executor(_pool, reconcile_once, _kube, _analyzer, mdep, sdep, book, now)
            delay: float | None = RESYNC_SECONDS
            try:
                out = await asyncio.shield(job)
            except asyncio.CancelledError:
                # Stopping (deleted, paused by a peer, shutdown): let the started reconcile
                # finish its ordered writes rather than act after we are gone.
                await asyncio.wait([job], timeout=10)
                raise
            except ApiException as e:
                if e.status == 409:  # an object moved under us: decide again on the newer copy
                    delay = 1.0  # the watch event of the change wakes us sooner
                else:
                    metrics.reconcile_failed(namespace, name)
                    logger.warning("reconcile failed (%s %s: %s); retrying in %.0fs", e.status, e.reason,
                                   _api_message(e), backoff)
                    delay, backoff = backoff, min(backoff * 2, 30)
            except Exception:  # noqa: BLE001 - keep the daemon alive; status is the source of truth
                metrics.reconcile_failed(namespace, name)
                logger.exception("reconcile failed; retrying in %.0fs", backoff)
                delay, backoff = backoff, min(backoff * 2, 30)
            else:
                backoff = RETRY_SECONDS
                book.mdep = lean(out.mdep) if out.mdep else book.mdep
                book.sdep = lean(out.sdep) if out.sdep else book.sdep
                metrics.reconciled(namespace, name)  # heartbeat for the "stopped reconciling" alert
                _writes += 1 if out.mdep or out.sdep else 0
                if out.due is not None:
                    left = (out.due - datetime.now(timezone.utc)).total_seconds()
                    delay = min(RESYNC_SECONDS, max(0.0, left) + _SLACK)
            mdep = sdep = job = out = None  # a sleeping object keeps no copies (memory)
            _turns.release()
            turn = False
            await book.sleep(delay)
    finally:
        if turn:
            _turns.release()
        if _books.get(key) is book:
            del _books[key]
        metrics.forget(namespace, name)  # the object is gone (or this replica stands by)
