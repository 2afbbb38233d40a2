"""When the rollout next has something to decide: analyses, step ends, deadlines.

Pure functions of the spec and status, shared by the state machine (which asks whether
an analysis is due) and the shell (which wakes an object only then).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from .spec import Spec
from .state import (AB_TESTING, PAUSE_ERRORS, PAUSE_INCONCLUSIVE, PAUSED, PENDING, PROGRESSING, PROMOTING, SHADOWING,
                    Status, parse_time)

_ANALYSING = (SHADOWING, PROGRESSING, AB_TESTING)


def analysis_due(spec: Spec, status: Status, now: datetime) -> bool:
    """Analyse a candidate that serves (or mirrors) traffic once per interval; also while
    paused on missing data or errors, so that the rollout resumes by itself when metrics
    come back. Not while the candidate is unready: it serves nobody."""
    at = next_analysis_at(spec, status)
    return at is not None and now >= at


def next_analysis_at(spec: Spec, status: Status) -> datetime | None:
    running = status.phase in _ANALYSING or (
        status.phase == PAUSED and status.pauseReason in (PAUSE_INCONCLUSIVE, PAUSE_ERRORS))
    started = parse_time(status.stepStartedAt)
    # Before its routing is seen, a step has no data of its own to analyse.
    if not running or started is None or not status.stepObserved or status.candidateUnreadySince:
        return None
    last = parse_time(status.lastAnalysis.time if status.lastAnalysis else None)
    return (max(started, last) if last else started) + timedelta(seconds=spec.analysis.interval)


def next_weight(steps: tuple[int, ...], current: int) -> int:
    """The first step above `current`: steps edited mid-rollout never skip ahead or crash."""
    return next((w for w in steps if w > current), 100)


def next_action_at(spec: Spec, st: Status, now: datetime) -> datetime | None:
    """When the core next has something to decide with no new observation: the next
    analysis, the end of a step, or a deadline, whichever comes first after `now` (a step
    that has run its time and waits for a Pass has only its next analysis left). The
    shell wakes the object then."""
    s, times = spec.strategy, list[datetime | None]()

    def after(start: str | None, seconds: float | None) -> None:
        t = parse_time(start)
        if t is not None and seconds is not None:
            times.append(t + timedelta(seconds=seconds))

    times.append(next_analysis_at(spec, st))
    if st.phase in _ANALYSING and not st.candidateUnreadySince:
        if st.stepStartedAt is None:
            after(st.rolloutStartedAt, s.progress_deadline)
        elif not st.stepObserved:
            pass  # the clock starts at the observation, which a watch event wakes the shell for
        elif st.shadow:
            after(st.stepStartedAt, s.shadow_duration)
        elif st.phase == AB_TESTING:
            after(st.stepStartedAt, s.ab_max_duration)
        else:
            after(st.stepStartedAt, s.step_duration)
    if st.candidateUnreadySince:
        after(st.candidateUnreadySince, s.readiness_grace)
    if st.phase == PROMOTING:
        after(st.stepStartedAt, s.progress_deadline)
    if st.phase == PENDING:
        after(st.rolloutStartedAt, s.progress_deadline)
    due = [t for t in times if t is not None and t > now]
    return min(due) if due else None
