"""Rendering of `kubectl modeldeploy history`: an object's transitions grouped into the
deployments and rollouts they belong to. Plain data in, text out; no I/O, the clock is a
parameter (tests/oncall)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .cli_text import PLAIN, Style, age, duration, table
from .state import FINISHING, IN_ROLLOUT, Result

RESULTS = tuple(Result)
#: Events that open a new rollout (or a fresh deployment) in `history`.
OPENERS = ("RolloutStarted", "Superseded", "Deploying")


@dataclass(frozen=True)
class EventRow:
    """A core/v1 Event about a ModelDeployment, reduced to what we show."""

    time: datetime
    type: str
    reason: str
    message: str
    count: int = 1
    # From status.history, which records them; an Event only says them in its message.
    version: str | None = None
    stable: str | None = None


def iso(t: datetime | None) -> str:
    return "-" if t is None else t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# Events (the fallback when an object has no status.history) say the versions only in
# their messages.
_ROLLING_OUT = re.compile(r"Rolling out (\S+) \(stable ([^)]+)\)")
_DEPLOYING = re.compile(r"[Dd]eploying (\S+)")


@dataclass
class Rollout:
    kind: str  # "rollout" or "deployment"
    version: str
    stable: str | None
    events: list[EventRow]
    result: str | None = None
    finished_at: datetime | None = None

    @property
    def started(self) -> datetime:
        return self.events[0].time


def group_rollouts(events: Sequence[EventRow]) -> list[Rollout]:
    """Split an object's events into deployments and rollouts, oldest first.

    A rollout opens with RolloutStarted (or Superseded, which also ends the rollout it
    replaces) and ends with Promoted, RolledBack or Aborted; a fresh deployment opens with
    Deploying and ends with Available or DeployFailed. Events after the end (commands that
    came too late, an InvalidSpec) stay with the group they follow; events older than the
    first opener (the opener expired) form an "earlier" group."""
    groups: list[Rollout] = []
    for e in sorted(events, key=lambda e: e.time):
        if e.reason in OPENERS:
            if e.reason == "Superseded" and groups and groups[-1].kind == "rollout" and groups[-1].result is None:
                groups[-1].result, groups[-1].finished_at = "Superseded", e.time
            if e.reason == "Deploying":
                m = _DEPLOYING.search(e.message)
                version = e.version or (m.group(1) if m else "?")
                groups.append(Rollout("deployment", version, None, [e]))
            elif e.version:
                groups.append(Rollout("rollout", e.version, e.stable, [e]))
            else:
                m = _ROLLING_OUT.search(e.message)
                groups.append(Rollout("rollout", m.group(1) if m else "?", m.group(2) if m else None, [e]))
            continue
        if not groups:
            groups.append(Rollout("earlier", "?", None, []))
        g = groups[-1]
        g.events.append(e)
        if g.result is None:
            if g.kind != "deployment" and e.reason in RESULTS:
                g.result, g.finished_at = e.reason, e.time
            elif g.kind == "deployment" and e.reason in ("Available", "DeployFailed"):
                g.result, g.finished_at = e.reason, e.time
    return groups


def render_history(mdep: Mapping[str, Any], events: Sequence[EventRow], now: datetime, style: Style = PLAIN,
                   event_ttl: str = "1h", from_status: bool = False) -> str:
    """`events` are the object's events, or with `from_status` the entries of its
    status.history (which outlive events, up to the operator's bound)."""
    meta, st = mdep.get("metadata") or {}, mdep.get("status") or {}
    lines = [f"{style.bold('Name:')} {meta.get('name')}  (namespace {meta.get('namespace')})"]
    lr = st.get("lastRollout") or {}
    if lr:
        lines.append(f"{style.bold('Last rollout:')} {lr.get('version', '?')} {style.word(str(lr.get('result')))} "
                     f"at {lr.get('finishedAt', '-')} ({age(lr.get('finishedAt'), now)} ago): {lr.get('reason', '')}")
    else:
        lines.append(f"{style.bold('Last rollout:')} none finished yet")
    if st.get("phase") in IN_ROLLOUT + FINISHING and st.get("candidateVersion"):
        lines.append(f"{style.bold('In progress:')} {st['candidateVersion']} ({style.word(st['phase'])}, "
                     f"started {age(st.get('rolloutStartedAt'), now)} ago)")
    groups = group_rollouts(events)
    if from_status:
        lines += ["", style.dim("From status.history (the operator keeps the latest transitions; older ones are "
                                "dropped).")]
    else:
        lines += ["", style.dim(f"From the events the API server still holds (kube-apiserver --event-ttl, {event_ttl} "
                                "by default); older rollouts are gone from the cluster.")]
    if not groups:
        lines += ["", "  <no events>"]
    for g in groups:
        if g.kind == "rollout":
            head = f"Rollout of {g.version}" + (f" (stable {g.stable})" if g.stable else "")
        elif g.kind == "deployment":
            head = f"Deployment of {g.version}"
        else:
            head = "Earlier events"
        if g.result and g.finished_at is not None:
            took = duration((g.finished_at - g.started).total_seconds())
            span = f"{iso(g.started)} -> {iso(g.finished_at)} ({took})"
            head += f": {style.word(g.result)}, {span}"
        elif g.kind != "earlier":
            head += f": {style.word(st.get('phase') or 'in progress')}, since {iso(g.started)}"
        lines += ["", style.bold(head)]
        rows = [[iso(e.time), style.paint(e.type, "yellow" if e.type == "Warning" else None), e.reason, e.message]
                for e in g.events]
        lines += table(["TIME", "TYPE", "REASON", "MESSAGE"], rows, style, indent="  ")
    return "\n".join(lines) + "\n"
