"""A tape of one rollout as the API server saw it: every routing of the SeldonDeployment
and every status of the ModelDeployment, each with the wall time its watch event arrived
(same machine, same clock as the operator's timestamps), plus a hook to act (kill the
operator) at an exact moment. Read by the kill tests and the fault campaign."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubernetes import watch

from modeldeploy.state import parse_time
from sandbox.harness import MDEP, SDEP, Objects

KEEP = ("phase", "stepWeight", "candidateWeight", "stepStartedAt", "stepObserved", "candidateVersion")


def follow(objs: Objects, kind: tuple[str, str, str], name: str, stop: threading.Event,
           on_object: Callable[[dict[str, Any]], None]) -> None:
    """Every version of one object until `stop`: a list, then a watch from its
    resourceVersion (so a state that lasts milliseconds is seen too), resumed after a cut."""
    rv = None
    while not stop.is_set():
        try:
            if rv is None:
                listed = objs.custom.list_namespaced_custom_object(
                    *kind[:2], objs.namespace, kind[2], field_selector=f"metadata.name={name}")
                for obj in listed["items"]:
                    on_object(obj)
                rv = listed["metadata"]["resourceVersion"]
            for ev in watch.Watch().stream(
                    objs.custom.list_namespaced_custom_object, *kind[:2], objs.namespace, kind[2],
                    field_selector=f"metadata.name={name}", resource_version=rv, timeout_seconds=1):
                rv = ev["object"]["metadata"]["resourceVersion"]
                on_object(ev["object"])
        except Exception:  # noqa: BLE001 - a cut stream: resume from the last version seen
            rv = None
            time.sleep(0.05)


@dataclass
class Mark:
    t: float  # time.time() when the watch event arrived
    kind: str  # "routing" | "status"
    data: dict[str, Any]


@dataclass
class Tape:
    objs: Objects
    name: str
    on_mark: Callable[[Tape, Mark], None] | None = None
    marks: list[Mark] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._watch, args=(k,), daemon=True) for k in (SDEP, MDEP)]

    # -- recording ---------------------------------------------------------------------
    def _add(self, kind: str, data: dict[str, Any]) -> None:
        with self._lock:
            last = next((m for m in reversed(self.marks) if m.kind == kind), None)
            if last is not None and last.data == data:
                return
            mark = Mark(time.time(), kind, data)
            self.marks.append(mark)
        if self.on_mark is not None:
            self.on_mark(self, mark)

    def _record(self, kind: tuple[str, str, str], obj: dict[str, Any]) -> None:
        if kind == SDEP:
            routing = {p["labels"]["version"]: (-1 if p.get("shadow") else p.get("traffic", 0))
                       for p in (obj.get("spec") or {}).get("predictors", [])}
            if routing:
                self._add("routing", routing)
        else:
            st = obj.get("status") or {}
            self._add("status", {**{k: st.get(k) for k in KEEP}, "analysed": (st.get("lastAnalysis") or {}).get("time")})

    def _watch(self, kind: tuple[str, str, str]) -> None:
        follow(self.objs, kind, self.name, self._stop, lambda obj: self._record(kind, obj))

    def __enter__(self) -> Tape:
        for t in self._threads:
            t.start()
        time.sleep(0.5)  # both watches are established before the test changes anything
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(3)

    # -- reading ---------------------------------------------------------------------
    def dump(self) -> str:
        t0 = self.marks[0].t if self.marks else 0.0
        return "\n".join(f"{m.t - t0:8.3f} {m.kind:7} {m.data}" for m in self.marks)

    def routings(self) -> list[Mark]:
        return [m for m in self.marks if m.kind == "routing"]

    def weights_of(self, version: str) -> list[int]:
        out: list[int] = []
        for m in self.routings():
            w = m.data.get(version)
            if w is not None and (not out or out[-1] != w):
                out.append(w)
        return out

    def steps(self, version: str) -> list[dict[str, float | None]]:
        """Each canary step of `version` below 100 %: when users got and lost its weight
        (`routed`, `end`), when the operator's clock started (the last observed
        stepStartedAt) and when the operator decided the step was over (`decided`: the
        status write that left it)."""
        out = []
        routings = self.routings()
        for i, m in enumerate(routings):
            w = m.data.get(version, 0)
            if not 0 < w < 100 or (i and routings[i - 1].data.get(version) == w):
                continue
            end = next((r.t for r in routings[i + 1:] if r.data.get(version) != w), None)
            mine = [s for s in self.marks if s.kind == "status" and s.data.get("stepWeight") == w
                    and s.data.get("candidateVersion") == version and s.data.get("phase") == "Progressing"]
            stamped = [s for s in mine if s.data.get("stepObserved") and s.data.get("stepStartedAt")]
            clock = parse_time(stamped[-1].data["stepStartedAt"]) if stamped else None
            after = [s for s in self.marks if s.kind == "status" and stamped and s.t >= stamped[-1].t]
            last = next((i for i, s in enumerate(after)
                         if s.data.get("stepWeight") != w or s.data.get("phase") != "Progressing"), None)
            # The deciding tick's own clock: the next step (or the promotion) starts its
            # provisional stepStartedAt at that tick's `now`. Not the write's arrival, which a
            # just-restarted operator on a loaded machine can delay by seconds.
            nxt = parse_time(after[last].data.get("stepStartedAt")) if last is not None else None
            decided = nxt.timestamp() if isinstance(nxt, datetime) else None
            analysed = {t.timestamp() for s in after[:None if last is None else last + 1]
                        if isinstance(t := parse_time(s.data.get("analysed")), datetime)}
            out.append({"weight": w, "routed": m.t, "end": end, "decided": decided,
                        "clock": clock.timestamp() if isinstance(clock, datetime) else None,
                        "analyses": sorted(analysed)})
        return out


def assert_step_clocks(tape: Tape, version: str, step_seconds: float) -> list[str]:
    """Every step ran, on the operator's clock (from the observation of its routing to the
    tick that ended it, both the operator's own timestamps), at least its stepDuration,
    and ended at the first tick past it: no analysis taken after its time left it running.
    Users never had a step's weight for less than stepDuration (a restart may lengthen what they see by the time the operator was
    down, never shorten it). Wall-clock durations are returned to print: on a loaded
    2-core machine a tick itself can be late by seconds, which no operator can help."""
    lines = []
    for s in tape.steps(version):
        assert None not in (s["end"], s["clock"], s["decided"]), s
        clocked, seen = s["decided"] - s["clock"], s["end"] - s["routed"]
        # Both times are whole milliseconds: 0.5 ms absorbs float rounding, no more.
        late = [round(a - s["clock"], 3) for a in s["analyses"] if a - s["clock"] >= step_seconds - 0.0005]
        lines.append(f"{s['weight']}%: clocked {clocked:.3f}s, users {seen:.3f}s, analyses past the step {late}")
        assert clocked >= step_seconds - 0.0005, lines
        # No tick past the step's time went by without ending it: an analysis taken then
        # is the deciding tick's own (or the step ended on its timer, with none).
        assert all(abs(a - clocked) < 0.0005 for a in late), lines
        assert seen >= step_seconds - 0.05, lines  # 50 ms: the watch's own delivery jitter
    return lines
