"""Notifications: a rollout's transitions (started, step advanced, paused, promoted, rolled
back, no winner, ...) posted to webhooks as a CloudEvent (generic JSON) or a Slack message.

Off the rollout's path by construction: the reconcile loop only builds the messages (pure
functions below) and puts them on a bounded queue per webhook (`put_nowait`, never a
wait); a thread per webhook delivers them in order, retrying failures (network errors,
timeouts, HTTP 5xx and 429) with exponential backoff, and drops what does not fit. A
hanging or broken receiver therefore delays only its own messages, never a rollout or
another webhook. Delivery is at most once per transition the operator records: a message
lost to an operator restart is not re-sent (the events and status.history keep the record).

Configuration comes from environment variables the chart fills (values `notifications`):
MODELDEPLOY_NOTIFY_WEBHOOKS, a JSON list of {name, format: cloudevents|slack, url or
urlEnv (the variable holding the URL, from a Secret), events (transition names; empty:
all), default (false: only objects that name the webhook)}; MODELDEPLOY_NOTIFY_CLUSTER,
_TIMEOUT (seconds per attempt), _RETRIES, _BACKOFF (first delay, seconds; doubles up to
_BACKOFF_MAX), _QUEUE_SIZE. Per object, the annotation modeldeploy.io/notify: "false"
silences it; "slack,oncall" sends to exactly these webhooks.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from . import GROUP, PLURAL, VERSION, __version__

log = logging.getLogger("modeldeploy.notify")

ANNOTATION = f"{GROUP}/notify"
FORMATS = ("cloudevents", "slack")
#: Event reason -> transition name (the CloudEvent type's last part, and what `events` filters on).
TRANSITIONS = {
    "RolloutStarted": "started", "Superseded": "started",
    "Shadowing": "stepAdvanced", "ABTestStarted": "stepAdvanced", "StepAdvanced": "stepAdvanced",
    "Paused": "paused", "Resumed": "resumed",
    # the candidate stopped being ready mid-rollout (its weight went back to the stable version), and came back
    "CandidateUnready": "candidateUnready", "CandidateReady": "candidateReady",
    "Promoted": "promoted", "RolledBack": "rolledBack", "Aborted": "aborted", "NoWinner": "noWinner",
    "DeployFailed": "deployFailed",
}
TRANSITION_NAMES = tuple(dict.fromkeys(TRANSITIONS.values()))
_SLACK_ICON = {"started": ":rocket:", "stepAdvanced": ":arrow_forward:", "paused": ":double_vertical_bar:",
               "resumed": ":arrow_forward:", "promoted": ":white_check_mark:", "rolledBack": ":rewind:",
               "aborted": ":no_entry_sign:", "noWinner": ":scales:", "deployFailed": ":x:",
               "candidateUnready": ":warning:", "candidateReady": ":arrow_forward:"}
_SLACK_COLOUR = {"promoted": "good", "rolledBack": "danger", "deployFailed": "danger", "paused": "warning",
                 "candidateUnready": "warning",
                 "aborted": "warning", "noWinner": "warning"}
_OFF = ("false", "off", "none", "no", "0")


class NotifyConfigError(ValueError):
    """The notification settings are invalid; the message names the setting and the fix."""


@dataclass(frozen=True)
class Webhook:
    name: str
    url: str
    format: str = "cloudevents"
    events: frozenset[str] = frozenset()  # empty: every transition
    default: bool = True  # objects without the annotation are sent to it


@dataclass(frozen=True)
class Notification:
    """One transition of one ModelDeployment, everything a message says."""

    transition: str
    reason: str
    severity: str  # the event's type: Normal | Warning
    message: str
    namespace: str
    name: str
    uid: str
    generation: int | None
    time: datetime
    phase: str | None
    stable: str | None
    candidate: str | None
    weight: int | None
    cluster: str = ""
    seq: int | None = None  # the status.history entry of this transition


# -- pure: what to send, and to whom ---------------------------------------------------------
def notifications(mdep: Mapping[str, Any], decision: Any, now: datetime, cluster: str = "") -> list[Notification]:
    """The notifications a decision's events call for (in their order)."""
    meta, st = mdep.get("metadata") or {}, decision.status
    out = []
    for e in decision.events:
        transition = TRANSITIONS.get(e.reason)
        if transition is None:
            continue
        candidate = st.candidateVersion or ((st.lastRollout.version if st.lastRollout else None) if transition in
                                            ("promoted", "rolledBack", "aborted", "noWinner") else None)
        out.append(Notification(
            transition, e.reason, e.type, e.message, meta.get("namespace", ""), meta.get("name", ""),
            meta.get("uid", ""), meta.get("generation"), now, st.phase or None, st.stableVersion, candidate,
            st.candidateWeight if st.candidateVersion else None, cluster, getattr(e, "seq", None)))
    return out


def recipients(webhooks: Sequence[Webhook], annotation: str | None, transition: str) -> list[Webhook]:
    """The webhooks one object's transition goes to: its annotation (none, or names) or
    the webhooks marked default, each filtered by its `events`."""
    if annotation is None or annotation.strip().lower() in ("", "true", "on", "yes", "default"):
        chosen = [w for w in webhooks if w.default]
    elif annotation.strip().lower() in _OFF:
        chosen = []
    else:
        names = {n.strip() for n in annotation.split(",") if n.strip()}
        chosen = [w for w in webhooks if w.name in names]
    return [w for w in chosen if not w.events or transition in w.events]


def _iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def cloudevent(n: Notification) -> dict[str, Any]:
    """A CloudEvents 1.0 event in structured JSON mode. The id is the same for the same
    transition (the object's uid and the status.history entry's seq), so a receiver can
    drop a duplicate."""
    source = f"/apis/{GROUP}/{VERSION}/namespaces/{n.namespace}/{PLURAL}/{n.name}"
    key = f"{n.uid}/{n.seq}" if n.seq is not None else f"{n.uid}/{n.reason}/{_iso(n.time)}"
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{source}#{key}")),
        "source": source,
        "type": f"io.modeldeploy.rollout.{n.transition}",
        "subject": f"{n.namespace}/{n.name}",
        "time": _iso(n.time),
        "datacontenttype": "application/json",
        "data": {"cluster": n.cluster or None, "namespace": n.namespace, "name": n.name, "uid": n.uid,
                 "generation": n.generation, "seq": n.seq, "transition": n.transition, "reason": n.reason,
                 "severity": n.severity, "message": n.message, "phase": n.phase, "stableVersion": n.stable,
                 "candidateVersion": n.candidate, "candidateWeight": n.weight,
                 "operatorVersion": __version__},
    }


def slack(n: Notification) -> dict[str, Any]:
    """A Slack incoming-webhook message (also accepted by Mattermost and Rocket.Chat)."""
    where = f"{n.namespace}/{n.name}" + (f" on {n.cluster}" if n.cluster else "")
    head = f"{_SLACK_ICON.get(n.transition, '')} *{where}*: {n.reason}".strip()
    fields = [{"title": "Phase", "value": n.phase or "-", "short": True},
              {"title": "Stable", "value": n.stable or "-", "short": True}]
    if n.candidate:
        fields.append({"title": "Candidate", "value": n.candidate, "short": True})
    if n.weight is not None:
        fields.append({"title": "Weight", "value": f"{n.weight}%", "short": True})
    return {"text": f"{head}\n{n.message}",
            "attachments": [{"color": _SLACK_COLOUR.get(n.transition, "#439FE0"), "fallback": f"{head}: {n.message}",
                             "fields": fields, "footer": f"modeldeploy {__version__}", "ts": int(n.time.timestamp())}]}


def render(webhook: Webhook, n: Notification) -> tuple[bytes, str]:
    """The request body and its content type."""
    if webhook.format == "slack":
        return json.dumps(slack(n)).encode(), "application/json"
    return json.dumps(cloudevent(n)).encode(), "application/cloudevents+json; charset=utf-8"


def webhooks_from(raw: Any, env: Mapping[str, str], where: str = "MODELDEPLOY_NOTIFY_WEBHOOKS") -> list[Webhook]:
    """Parse the webhook list (see the module docstring), naming the field at fault."""
    if not isinstance(raw, list):
        raise NotifyConfigError(f"{where} must be a JSON list of webhooks, got {type(raw).__name__}")
    hooks, names = [], set()
    for i, h in enumerate(raw):
        at = f"{where}[{i}]"
        if not isinstance(h, Mapping):
            raise NotifyConfigError(f"{at} must be an object with name and url")
        name = str(h.get("name") or "")
        if not name or name in names:
            raise NotifyConfigError(f"{at}.name must be a unique, non-empty name (got {name!r})")
        names.add(name)
        url = h.get("url") or (env.get(h["urlEnv"]) if h.get("urlEnv") else None)
        if not url or not str(url).startswith(("http://", "https://")):
            source = f"the variable {h['urlEnv']} (from the Secret)" if h.get("urlEnv") else f"{at}.url"
            raise NotifyConfigError(f"{at} ({name}): {source} must be an http(s) URL")
        fmt = h.get("format") or "cloudevents"
        if fmt not in FORMATS:
            raise NotifyConfigError(f"{at}.format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        events = frozenset(h.get("events") or ())
        unknown = sorted(events - set(TRANSITION_NAMES))
        if unknown:
            raise NotifyConfigError(f"{at}.events: unknown {unknown}; use {', '.join(TRANSITION_NAMES)}")
        hooks.append(Webhook(name, str(url), fmt, events, bool(h.get("default", True))))
    return hooks


# -- the shell: delivery off the reconcile loop -------------------------------------------
@dataclass
class Settings:
    timeout: float = 5.0
    retries: int = 5
    backoff: float = 1.0
    backoff_max: float = 60.0
    queue_size: int = 1000
    cluster: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Settings:
        s = cls()
        for attr, var, kind in [("timeout", "TIMEOUT", float), ("retries", "RETRIES", int),
                                ("backoff", "BACKOFF", float), ("backoff_max", "BACKOFF_MAX", float),
                                ("queue_size", "QUEUE_SIZE", int)]:
            raw = env.get(f"MODELDEPLOY_NOTIFY_{var}")
            if raw:
                try:
                    value = kind(raw)
                except ValueError:
                    raise NotifyConfigError(f"MODELDEPLOY_NOTIFY_{var} must be a {kind.__name__}, got {raw!r}") from None
                if value < 0 or (attr == "queue_size" and value < 1):
                    raise NotifyConfigError(f"MODELDEPLOY_NOTIFY_{var} must be positive, got {raw!r}")
                setattr(s, attr, value)
        s.cluster = env.get("MODELDEPLOY_NOTIFY_CLUSTER", "")
        return s


@dataclass
class Stats:
    delivered: int = 0
    failed: int = 0  # gave up after the retries, or refused (4xx)
    dropped: int = 0  # the queue was full
    attempts: int = 0


class _Channel:
    """One webhook: its bounded queue and the thread that delivers from it, in order."""

    def __init__(self, webhook: Webhook, settings: Settings, sleep: Callable[[float], bool]) -> None:
        self.webhook, self.settings, self._sleep = webhook, settings, sleep
        self.queue: queue.Queue[Notification | None] = queue.Queue(settings.queue_size)
        self.stats = Stats()
        self.thread = threading.Thread(target=self._run, name=f"notify-{webhook.name}", daemon=True)
        self.thread.start()

    def offer(self, n: Notification) -> None:
        try:
            self.queue.put_nowait(n)
        except queue.Full:
            self.stats.dropped += 1
            log.warning("notification to %s dropped (%d waiting; the receiver is slow or down): %s/%s %s",
                        self.webhook.name, self.settings.queue_size, n.namespace, n.name, n.reason)

    def _run(self) -> None:
        while True:
            n = self.queue.get()
            try:
                if n is None:
                    return
                self._deliver(n)
            except Exception:  # noqa: BLE001 - a bug here must not kill the channel
                log.exception("notification to %s failed", self.webhook.name)
            finally:
                self.queue.task_done()

    def _deliver(self, n: Notification) -> None:
        body, content_type = render(self.webhook, n)
        delay = self.settings.backoff
        for attempt in range(self.settings.retries + 1):
            self.stats.attempts += 1
            retry, why = self._post(body, content_type)
            if why is None:
                self.stats.delivered += 1
                return
            if not retry or attempt == self.settings.retries:
                self.stats.failed += 1
                log.warning("notification to %s not delivered after %d attempt(s): %s (%s/%s %s)", self.webhook.name,
                            attempt + 1, why, n.namespace, n.name, n.reason)
                return
            log.info("notification to %s failed (%s); retrying in %.1fs", self.webhook.name, why, delay)
            if self._sleep(delay):  # stopping
                return
            delay = min(delay * 2, self.settings.backoff_max)

    def _post(self, body: bytes, content_type: str) -> tuple[bool, str | None]:
        """(retry?, why it failed or None)."""
        req = urllib.request.Request(self.webhook.url, data=body, method="POST", headers={  # noqa: S310 - http(s) checked
            "Content-Type": content_type, "User-Agent": f"modeldeploy/{__version__}"})
        try:
            with urllib.request.urlopen(req, timeout=self.settings.timeout) as resp:  # noqa: S310 - http(s) checked
                resp.read(65536)
            return False, None
        except urllib.error.HTTPError as e:
            return e.code >= 500 or e.code == 429, f"HTTP {e.code}"
        except (urllib.error.URLError, OSError, ValueError) as e:  # refused, DNS, timeout, TLS
            return True, str(getattr(e, "reason", e)) or type(e).__name__


class Notifier:
    """The configured webhooks and their delivery threads."""

    def __init__(self, webhooks: Iterable[Webhook], settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        self._stopping = threading.Event()
        self.channels = {w.name: _Channel(w, self.settings, self._stopping.wait) for w in webhooks}
        self.webhooks = [c.webhook for c in self.channels.values()]

    def on_decision(self, mdep: Mapping[str, Any], decision: Any, now: datetime) -> None:
        if not self.channels or not decision.events:
            return
        annotation = ((mdep.get("metadata") or {}).get("annotations") or {}).get(ANNOTATION)
        for n in notifications(mdep, decision, now, self.settings.cluster):
            for w in recipients(self.webhooks, annotation, n.transition):
                self.channels[w.name].offer(n)

    def stats(self, name: str) -> Stats:
        return self.channels[name].stats

    def flush(self, timeout: float) -> bool:
        """Wait until every queue is empty (for tests and shutdown); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(c.queue.unfinished_tasks == 0 for c in self.channels.values()):
                return True
            time.sleep(0.01)
        return False

    def stop(self) -> None:
        self._stopping.set()
        for c in self.channels.values():
            try:
                c.queue.put_nowait(None)
            except queue.Full:
                pass


def from_env(env: Mapping[str, str] | None = None) -> Notifier:
    env = os.environ if env is None else env
    raw = env.get("MODELDEPLOY_NOTIFY_WEBHOOKS", "").strip()
    try:
        hooks = webhooks_from(json.loads(raw), env) if raw else []
    except json.JSONDecodeError as e:
        raise NotifyConfigError(f"MODELDEPLOY_NOTIFY_WEBHOOKS is not JSON ({e}); the chart's notifications.webhooks "
                                "renders it") from None
    return Notifier(hooks, Settings.from_env(env))


_notifier: Notifier | None = None
_lock = threading.Lock()


def _get() -> Notifier:
    global _notifier
    with _lock:
        if _notifier is None:
            try:
                _notifier = from_env()
            except NotifyConfigError as e:
                log.error("notifications are off: %s", e)
                _notifier = Notifier([])
            if _notifier.webhooks:
                log.info("notifications to %s", ", ".join(f"{w.name} ({w.format})" for w in _notifier.webhooks))
        return _notifier


def on_decision(mdep: Mapping[str, Any], old_status: Any, decision: Any, now: datetime | None = None) -> None:
    """Queue the notifications of a decision the shell has just recorded (status written,
    events posted). Never blocks, never raises: notifications must not touch a rollout."""
    try:
        if decision.events and decision.status != old_status:
            _get().on_decision(mdep, decision, now or datetime.now(timezone.utc))
    except Exception:  # noqa: BLE001
        log.exception("notifications failed (the rollout is unaffected)")


def reset(notifier: Notifier | None = None) -> None:
    """Replace the process' notifier (tests; None: read the environment again)."""
    global _notifier
    with _lock:
        if _notifier is not None:
            _notifier.stop()
        _notifier = notifier
