"""When a ModelDeployment next needs the operator without anything changing, and the
per-object memory of the shell.

The operator reacts to watch events of ModelDeployments and SeldonDeployments; time is
the only other input of the core (`rollout.step`). `next_due` says when time alone can
change a decision: the next analysis, the end of a step (or of the shadow phase, or the
A/B test's maxDuration), the candidate's progress deadline. Between those an object costs
no API request and no CPU.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .spec import Spec
from .state import AB_TESTING, IN_ROLLOUT, PAUSED, PROGRESSING, SHADOWING, Status, parse_time


def next_due(spec: Spec, status: Status, now: dt.datetime) -> dt.datetime | None:
    """The earliest time after `now` at which `rollout.step` may decide differently with
    the same observation; None when only a change (of spec, command, Seldon) can."""
    core = getattr(status, "nextActionAt", None)  # the core's own answer, once it gives one
    if core:
        return _first_after([parse_time(core)], now)
    times = []
    started = parse_time(status.stepStartedAt)
    if status.phase not in IN_ROLLOUT:
        return None  # Pending, Promoting, RollingBack wait for Seldon; Stable and Failed for a spec
    if started is None:
        begun = parse_time(status.rolloutStartedAt)
        if begun is not None:
            times.append(begun + dt.timedelta(seconds=spec.strategy.progress_deadline))
        return _first_after(times, now)
    # The same rule as rollout.analysis_due.
    if status.phase != PAUSED or status.pauseReason in ("inconclusive", "errors"):
        last = parse_time((status.lastAnalysis or {}).get("time"))
        since = max(started, last) if last else started
        times.append(since + dt.timedelta(seconds=spec.analysis.interval))
    s = spec.strategy
    if status.phase == SHADOWING or (status.phase == PROGRESSING and status.shadow):
        times.append(started + dt.timedelta(seconds=s.shadow_duration or 0))
    elif status.phase == PROGRESSING:
        times.append(started + dt.timedelta(seconds=s.step_duration))
    elif status.phase == AB_TESTING:
        times.append(started + dt.timedelta(seconds=s.ab_max_duration))
    return _first_after(times, now)


def _first_after(times: list[dt.datetime], now: dt.datetime) -> dt.datetime | None:
    # A time already past was acted on by the reconcile that computed it (a step that has
    # run its time waits for its next analysis).
    future = [t for t in times if t > now]
    return min(future) if future else None


def newer(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """The later of two versions of one object, by resourceVersion (etcd revisions, which
    kube-apiserver hands out in increasing order; opaque ones: `a`, the watched copy)."""
    if a is None or b is None:
        return a if b is None else b if a is None else a
    try:
        ra, rb = int(a["metadata"]["resourceVersion"]), int(b["metadata"]["resourceVersion"])
    except (KeyError, TypeError, ValueError):
        return a
    return b if rb > ra else a


@dataclass
class Book:
    """What the shell remembers about one ModelDeployment between reconciles. Losing it
    (a restart) costs a few requests, never correctness: status is the source of truth."""

    wake: asyncio.Event = field(default_factory=asyncio.Event)
    #: Our own latest writes, used until the watch delivers them (or something newer).
    mdep: Mapping[str, Any] | None = None
    sdep: Mapping[str, Any] | None = None
    #: Highest status.history seq whose Event is known to exist; None: not checked yet.
    posted_seq: int | None = None
    #: The uid the watermark belongs to (a deleted and re-created object starts over).
    uid: str | None = None

    async def sleep(self, seconds: float | None) -> None:
        """Until woken by a watch event, or `seconds` (None: until woken)."""
        if self.wake.is_set():
            return
        try:
            await asyncio.wait_for(self.wake.wait(), seconds)
        except asyncio.TimeoutError:
            pass
