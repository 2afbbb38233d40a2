"""Machine-readable output of `kubectl modeldeploy` (`-o json|yaml`), and the history of an
object read from `status.history` when the operator keeps one. Plain data in, plain data
out; no I/O. The documents are a stable interface for scripts: fields are added, never
renamed (docs/runbook.md lists them)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

import yaml

from .cli_format import step_text
from .cli_history import EventRow, group_rollouts, iso
from .cli_text import parse_time

#: The `kind` of every document, so a consumer can tell them apart.
LIST_KIND, STATUS_KIND, HISTORY_KIND = "ModelDeploymentList", "ModelDeploymentStatus", "ModelDeploymentHistory"
#: Where `history` found its entries.
FROM_STATUS, FROM_EVENTS = "status.history", "events"


def summary(mdep: Mapping[str, Any]) -> dict[str, Any]:
    """What `list` shows for one object, as data; `status` is the object's whole status."""
    meta, st = mdep.get("metadata") or {}, mdep.get("status") or {}
    last = st.get("lastAnalysis") or {}
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "generation": meta.get("generation"),
        "observedGeneration": st.get("observedGeneration"),
        "phase": st.get("phase"),
        "message": st.get("message"),
        "stableVersion": st.get("stableVersion"),
        "candidateVersion": st.get("candidateVersion"),
        "candidateWeight": int(st.get("candidateWeight") or 0) if st.get("candidateVersion") else None,
        "shadow": bool(st.get("shadow")) if st.get("candidateVersion") else None,
        "step": None if step_text(mdep) == "-" else step_text(mdep),
        "verdict": last.get("outcome") or last.get("verdict"),
        "pauseReason": st.get("pauseReason"),
        "lastRollout": st.get("lastRollout"),
        "created": meta.get("creationTimestamp"),
    }


def event_doc(e: EventRow) -> dict[str, Any]:
    return {"time": iso(e.time), "type": e.type, "reason": e.reason, "message": e.message, "count": e.count}


def list_doc(items: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    ordered = sorted(items, key=lambda m: ((m.get("metadata") or {}).get("namespace", ""),
                                           (m.get("metadata") or {}).get("name", "")))
    return {"kind": LIST_KIND, "items": [summary(m) for m in ordered]}


def status_doc(mdep: Mapping[str, Any], events: Sequence[EventRow], note: str | None = None) -> dict[str, Any]:
    doc = {"kind": STATUS_KIND, **summary(mdep), "spec": mdep.get("spec") or {}, "status": mdep.get("status") or {},
           "events": [event_doc(e) for e in sorted(events, key=lambda e: e.time)]}
    if note:
        doc["eventsUnavailable"] = note
    return doc


def status_history(mdep: Mapping[str, Any]) -> list[EventRow] | None:
    """`status.history` (the operator's bounded record of transitions: seq, time, type,
    reason, message) as rows, oldest first; None when the object has none, so the caller
    falls back to events (an operator older than the field, or a fresh object)."""
    entries = (mdep.get("status") or {}).get("history")
    if not isinstance(entries, list) or not entries:
        return None
    rows = []
    for n, h in enumerate(entries):
        if not isinstance(h, Mapping):
            continue
        t = parse_time(h.get("time"))
        seq = h.get("seq")
        version, stable = h.get("version"), h.get("stable")
        rows.append((seq if isinstance(seq, int) else n,
                     EventRow(t or datetime.fromtimestamp(0, timezone.utc), str(h.get("type") or ""),
                              str(h.get("reason") or h.get("type") or ""), str(h.get("message") or ""),
                              version=str(version) if version else None, stable=str(stable) if stable else None)))
    rows.sort(key=lambda r: r[0])  # seq orders entries written within the same second
    return [r for _, r in rows]


def history_doc(mdep: Mapping[str, Any], rows: Sequence[EventRow], source: str) -> dict[str, Any]:
    meta, st = mdep.get("metadata") or {}, mdep.get("status") or {}
    rollouts = []
    for g in group_rollouts(rows):
        rollouts.append({"kind": g.kind, "version": None if g.version == "?" else g.version, "stable": g.stable,
                         "result": g.result, "started": iso(g.started) if g.events else None,
                         "finished": iso(g.finished_at) if g.finished_at else None,
                         "entries": [event_doc(e) for e in g.events]})
    return {"kind": HISTORY_KIND, "name": meta.get("name"), "namespace": meta.get("namespace"), "source": source,
            "phase": st.get("phase"), "lastRollout": st.get("lastRollout"), "rollouts": rollouts}


def dump(doc: Any, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n"
    return yaml.safe_dump(doc, sort_keys=False, default_flow_style=False, allow_unicode=True)
