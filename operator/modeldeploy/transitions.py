"""The rollout's transitions: how each one changes the status and what it records.

Kept apart from the per-phase rules in `rollout` so each reads on its own: this module
says what "roll back", "promote" or "pause" does to the status, `rollout` says when.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from .routing import predictor_name
from .spec import Spec
from .state import (
    AB_TESTING, FAILED, HISTORY_LIMIT, PAUSE_COMMAND, PAUSE_USER, PAUSED, PENDING, PROGRESSING, PROMOTING,
    ROLLING_BACK, SHADOWING, STABLE, CarriedEvidence, Counters, Event, Observation, Result, RolloutRecord, Status,
    iso, parse_time,
)


class Transitions:
    """One tick's working state (the status being built, the events to post) and the
    transitions every phase shares; `rollout._Machine` adds the rules of each phase."""

    def __init__(self, spec: Spec, status: Status, obs: Observation, now: datetime) -> None:
        self.spec, self.st, self.obs, self.now = spec, status, obs, now
        self.events: list[Event] = []

    def set(self, **changes: Any) -> None:
        if "stepStartedAt" in changes and "stepObserved" not in changes:
            # Every clock restart changes (or re-asserts) the routing; the step's time only
            # starts once that routing is seen in the router's object (`observe_routing`). No step, no wait.
            changes["stepObserved"] = not changes["stepStartedAt"]
        if "stepStartedAt" in changes and "carriedEvidence" not in changes:
            # The step's evidence windows restart here: what the latest look gathered in
            # the window that ends now is kept (CarriedEvidence says why that is valid).
            changes["carriedEvidence"] = CarriedEvidence.fold(self.st.carriedEvidence, self.st.lastAnalysis)
        self.st = dataclasses.replace(self.st, **changes)

    def observe_routing(self) -> None:
        """Start the step's clock the first time its routing is seen in the router's object
        (this tick's `applied`), so that neither the analysis nor the shell's wake-up
        before the patch, nor a restart between status write, patch and observation,
        shortens the step users see. Runs before any rule reads stepStartedAt."""
        if self.st.stepStartedAt and not self.st.stepObserved and self.obs.applied:
            # The rollout's first observed routing is when the candidate's evidence can begin.
            first = {} if self.st.trafficStartedAt else {"trafficStartedAt": iso(self.now)}
            self.set(stepStartedAt=iso(self.now), stepObserved=True, **first)

    def emit(self, reason: str, message: str, warning: bool = False) -> None:
        """A transition: an event, the status message and an entry in status.history."""
        history = self.st.history
        seq = int(history[-1].get("seq", 0)) + 1 if history else 1
        kind = "Warning" if warning else "Normal"
        reason = str(reason)  # a Result names its event; the event holds the plain string
        entry = {"seq": seq, "time": iso(self.now), "type": kind, "reason": reason, "message": message,
                 # What the entry is about, for readers of the history (the plugin): the
                 # version rolled out or deployed, and the stable one beside it.
                 "version": self.st.candidateVersion or self.st.stableVersion, "stable": self.st.stableVersion}
        self.events.append(Event(kind, reason, message, seq))
        self.set(message=message, history=(history + (entry,))[-HISTORY_LIMIT:])

    def ready(self, predictor: str | None) -> bool:
        return bool(predictor) and self.obs.routing.is_ready(predictor or "")

    def elapsed(self, since: str | None) -> float:
        t = parse_time(since)
        return 0.0 if t is None else (self.now - t).total_seconds()

    # -- transitions -----------------------------------------------------------------
    def deploy_fresh(self, reason: str, message: str) -> None:
        m = self.spec.model
        self.set(
            phase=PENDING, stableVersion=m.version, stablePredictor=predictor_name(m.version),
            stableModel=dataclasses.asdict(m), candidateVersion=None, candidatePredictor=None,
            candidateModel=None, candidateWeight=0, stepWeight=0, candidateUnreadySince=None, shadow=False,
            step=0, stepStartedAt=None, rolloutStartedAt=iso(self.now), trafficStartedAt=None, pauseReason=None,
            pausedFrom=None, pendingResult=None,
        )
        self.emit(reason, message)

    def start_rollout(self, reason: str = "RolloutStarted", prefix: str = "") -> None:
        m, s = self.spec.model, self.spec.strategy
        shadow = s.shadow_duration is not None
        self.set(
            phase=SHADOWING if shadow else self.walk_phase(), candidateVersion=m.version,
            candidatePredictor=predictor_name(m.version, taken=self.st.stablePredictor),
            candidateModel=dataclasses.asdict(m), candidateWeight=0, stepWeight=0, candidateUnreadySince=None,
            shadow=shadow, step=0, stepStartedAt=None, rolloutStartedAt=iso(self.now), trafficStartedAt=None,
            pauseReason=None, pausedFrom=None, pendingResult=None, counters=Counters(),
            lastAnalysis=None, abTest=None, outputBins=None, carriedEvidence=None,
        )
        self.emit(reason, f"{prefix}Rolling out {m.version} (stable {self.st.stableVersion}): candidate predictor "
                  f"{self.st.candidatePredictor} added with no traffic until the {self.obs.routing.kind} reports it "
                  "ready.")

    def walk_phase(self) -> str:
        return AB_TESTING if self.spec.strategy.type == "ABTest" else PROGRESSING

    def start_step(self, weight: int, phase: str | None = None) -> None:
        """Give the candidate `weight`; the step's clock restarts when the routing is seen."""
        steps = self.spec.strategy.steps
        self.set(phase=phase or self.st.phase, shadow=False, candidateWeight=weight, stepWeight=weight,
                 step=sum(1 for w in steps if w < weight), stepStartedAt=iso(self.now))

    def roll_back(self, result: Result, reason: str) -> None:
        self.set(phase=ROLLING_BACK, candidateWeight=0, shadow=False, candidateUnreadySince=None,
                 pendingResult={"result": result, "reason": reason})
        verb = {Result.ROLLED_BACK: "Rolling back", Result.NO_WINNER: "Ending the A/B test of"}.get(result, "Aborting")
        self.emit({Result.ROLLED_BACK: "RollingBack", Result.NO_WINNER: "NoWinner"}.get(result, "Aborting"),
                  f"{verb} {self.st.candidateVersion}: {reason}. All traffic returns to {self.st.stableVersion}.",
                  warning=result == Result.ROLLED_BACK)

    def promote(self, reason: str) -> None:
        # stepStartedAt now times the promotion itself (bounded by progressDeadline, from
        # the decision: not a step's clock).
        self.set(phase=PROMOTING, shadow=False, candidateWeight=100, stepWeight=100, stepStartedAt=iso(self.now),
                 stepObserved=True, pendingResult={"result": Result.PROMOTED, "reason": reason})
        self.emit("Promoting", f"Promoting {self.st.candidateVersion}: {reason}. It now takes 100% of traffic; "
                  f"{self.st.stableVersion} is removed once that routing is applied.")

    def pause(self, reason: str, message: str) -> None:
        self.set(phase=PAUSED, pauseReason=reason, pausedFrom=self.st.pausedFrom or self.st.phase)
        self.emit("Paused", message, warning=reason not in (PAUSE_USER, PAUSE_COMMAND))

    def resume(self, why: str) -> None:
        st = self.st
        c = dataclasses.replace(st.counters, inconclusive=0, errors=0)
        serving = bool(st.stepStartedAt) and not st.shadow and self.ready(st.candidatePredictor)
        # The step's timer restarts: the weight was held, so the step gets fresh evidence.
        self.set(phase=st.pausedFrom or self.walk_phase(), pauseReason=None, pausedFrom=None, counters=c,
                 candidateWeight=st.stepWeight if serving else 0,
                 stepStartedAt=iso(self.now) if st.stepStartedAt else None)
        self.emit("Resumed", f"Resumed at {self.st.candidateWeight}% to {st.candidateVersion}: {why}.")

    def finish(self) -> None:
        """Second half of promote/roll back, once the 100/0 routing is in place."""
        pending = dict(self.st.pendingResult or {})
        result = Result(pending.get("result", Result.ROLLED_BACK))
        record = RolloutRecord(self.st.candidateVersion, result, pending.get("reason", ""), iso(self.now))
        if result == Result.PROMOTED:
            self.set(stableVersion=self.st.candidateVersion, stablePredictor=self.st.candidatePredictor,
                     stableModel=self.st.candidateModel)
        old = self.st
        self.set(phase=STABLE if result == Result.PROMOTED else FAILED, lastRollout=record, candidateVersion=None,
                 candidatePredictor=None, candidateModel=None, candidateWeight=0, stepWeight=0,
                 candidateUnreadySince=None, shadow=False, step=0, stepStartedAt=None, pendingResult=None,
                 pauseReason=None, pausedFrom=None, carriedEvidence=None)
        if result == Result.PROMOTED:
            self.emit(Result.PROMOTED, f"{old.stableVersion} is now stable and serves 100% of traffic; "
                      f"the previous predictor was removed.")
        else:
            verb = {Result.ROLLED_BACK: "rolled back", Result.NO_WINNER: "not adopted"}.get(result, "aborted")
            self.emit(result if result in (Result.ROLLED_BACK, Result.NO_WINNER) else Result.ABORTED,
                      f"{record.version} was {verb} ({record.reason}); {old.stableVersion} serves 100%. "
                      "Set a new spec.model.version, or annotate modeldeploy.io/command=retry, to try again.",
                      warning=result == Result.ROLLED_BACK)

    def command_event(self, command: str, what: str) -> None:
        self.emit(f"Command{command.capitalize()}", f"modeldeploy.io/command={command}: {what}.",
                  warning=what.startswith("refused"))
