"""When a ModelDeployment next needs the operator without anything changing, and the
per-object memory of the shell.

The operator reacts to watch events of ModelDeployments and SeldonDeployments; time is
the only other input of the core (`rollout.step`). `next_due` says when time alone can
change a decision (the core's `nextActionAt`: the next analysis, the end of a step, a
deadline). Between those an object costs no API request and no CPU.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, overload

from .rollout import next_analysis_at
from .spec import Spec
from .state import Status, parse_time


def next_due(spec: Spec, status: Status, now: dt.datetime) -> dt.datetime | None:
    """The earliest time after `now` at which `rollout.step` may decide differently with
    the same observation; None when only a change (of spec, command, Seldon) can.

    `status.nextActionAt` is the core's answer as of its decision; the next analysis is
    the fallback when that time has passed (a status written by an older core)."""
    for at in (parse_time(status.nextActionAt), next_analysis_at(spec, status)):
        if at is not None and at > now:
            return at
    return None


@overload
def newer(a: Mapping[str, Any], b: Mapping[str, Any] | None) -> Mapping[str, Any]: ...
@overload
def newer(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> Mapping[str, Any] | None: ...
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
    #: (resourceVersion, digest of the status) of our last status write, to never repeat
    #: a write that did not stick.
    written: tuple[str, str] | None = None

    async def sleep(self, seconds: float | None) -> None:
        """Until woken by a watch event, or `seconds` (None: until woken)."""
        if self.wake.is_set():
            return
        try:
            await asyncio.wait_for(self.wake.wait(), seconds)
        except TimeoutError:  # asyncio.TimeoutError is this since 3.11
            pass
