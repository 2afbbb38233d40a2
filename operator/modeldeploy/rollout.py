"""The rollout state machine: `step(spec, status, observation, now) -> Decision`.

Pure: no I/O, the clock is a parameter, and everything it needs to resume lives in the
status it returns. The shell persists that status *before* it makes the SeldonDeployment
match `Decision.predictors`, so an operator killed at any moment re-derives the same
routing on restart and never skips or repeats a step (a step advances only when
`now - stepStartedAt >= stepDuration`, and advancing resets `stepStartedAt`).

Safety rules, each enforced here and property-tested:
* a candidate gets traffic only once Seldon reports it ready;
* the stable predictor is removed only after a promotion's 100/0 routing was applied;
* missing data (Inconclusive) and provider errors hold the weight and pause past their
  limits; they never promote and never roll back on their own.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from . import seldon
from .spec import Spec
from .state import (  # noqa: F401 - re-exported: rollout.Status, rollout.PENDING, ...
    AB_TESTING, COMMANDS, FAILED, IN_ROLLOUT, PAUSED, PENDING, PROGRESSING, PROMOTING, ROLLING_BACK,
    SHADOWING, STABLE, Decision, Event, Observation, Status, iso, parse_time, predictors,
)
from .verdicts import AnalysisResult, Outcome


def analysis_due(spec: Spec, status: Status, now: datetime) -> bool:
    """Analyse a ready candidate once per interval; also while paused on missing data or
    errors, so that the rollout resumes by itself when metrics come back."""
    running = status.phase in (SHADOWING, PROGRESSING, AB_TESTING) or (
        status.phase == PAUSED and status.pauseReason in ("inconclusive", "errors")
    )
    started = parse_time(status.stepStartedAt)
    if not running or started is None:
        return False
    last = parse_time((status.lastAnalysis or {}).get("time"))
    since = max(started, last) if last else started
    return (now - since).total_seconds() >= spec.analysis.interval


class _Machine:
    """One tick's working state: the status being built and the events to post."""

    def __init__(self, spec: Spec, status: Status, obs: Observation, now: datetime) -> None:
        self.spec, self.st, self.obs, self.now = spec, status, obs, now
        self.events: list[Event] = []

    def set(self, **changes: Any) -> None:
        self.st = dataclasses.replace(self.st, **changes)

    def emit(self, reason: str, message: str, warning: bool = False) -> None:
        self.events.append(Event("Warning" if warning else "Normal", reason, message))
        self.set(message=message)

    # -- transitions -----------------------------------------------------------------
    def deploy_fresh(self, reason: str, message: str) -> None:
        m = self.spec.model
        self.set(
            phase=PENDING, stableVersion=m.version, stablePredictor=seldon.predictor_name(m.version),
            stableModel=dataclasses.asdict(m), candidateVersion=None, candidatePredictor=None,
            candidateModel=None, candidateWeight=0, shadow=False, step=0, stepStartedAt=None,
            rolloutStartedAt=None, pauseReason=None, pausedFrom=None, pendingResult=None,
        )
        self.emit(reason, message)

    def start_rollout(self, reason: str = "RolloutStarted", prefix: str = "") -> None:
        m, s = self.spec.model, self.spec.strategy
        shadow = s.shadow_duration is not None
        self.set(
            phase=SHADOWING if shadow else self.walk_phase(), candidateVersion=m.version,
            candidatePredictor=seldon.predictor_name(m.version, taken=self.st.stablePredictor),
            candidateModel=dataclasses.asdict(m), candidateWeight=0, shadow=shadow, step=0,
            stepStartedAt=None, rolloutStartedAt=iso(self.now), pauseReason=None, pausedFrom=None,
            pendingResult=None, counters={"failed": 0, "inconclusive": 0, "errors": 0}, lastAnalysis=None,
            abTest=None,
        )
        self.emit(reason, f"{prefix}Rolling out {m.version} (stable {self.st.stableVersion}): candidate predictor "
                  f"{self.st.candidatePredictor} added with no traffic until Seldon reports it ready.")

    def walk_phase(self) -> str:
        return AB_TESTING if self.spec.strategy.type == "ABTest" else PROGRESSING

    def roll_back(self, result: str, reason: str) -> None:
        """`result`: RolledBack (the candidate was worse or broken), Aborted (a person or a
        newer spec), NoWinner (an A/B test found no better version)."""
        self.set(phase=ROLLING_BACK, candidateWeight=0, shadow=False, pendingResult={"result": result, "reason": reason})
        verb = {"RolledBack": "Rolling back", "NoWinner": "Ending the A/B test of"}.get(result, "Aborting")
        self.emit({"RolledBack": "RollingBack", "NoWinner": "NoWinner"}.get(result, "Aborting"),
                  f"{verb} {self.st.candidateVersion}: {reason}. All traffic returns to {self.st.stableVersion}.",
                  warning=result == "RolledBack")

    def promote(self, reason: str) -> None:
        self.set(phase=PROMOTING, shadow=False, candidateWeight=100, pendingResult={"result": "Promoted", "reason": reason})
        self.emit("Promoting", f"Promoting {self.st.candidateVersion}: {reason}. It now takes 100% of traffic; "
                  f"{self.st.stableVersion} is removed once that routing is applied.")

    def pause(self, reason: str, message: str) -> None:
        self.set(phase=PAUSED, pauseReason=reason, pausedFrom=self.st.pausedFrom or self.st.phase)
        self.emit("Paused", message, warning=reason != "user")

    def resume(self, why: str) -> None:
        back = self.st.pausedFrom or PROGRESSING
        c = dict(self.st.counters)
        c.update(inconclusive=0, errors=0)
        # The step's timer restarts: the weight was held, so the step gets fresh evidence.
        self.set(phase=back, pauseReason=None, pausedFrom=None, counters=c, stepStartedAt=iso(self.now))
        self.emit("Resumed", f"Resumed at {self.st.candidateWeight}% to {self.st.candidateVersion}: {why}.")

    def finish(self) -> None:
        """Second half of promote/roll back, once the 100/0 routing is in place."""
        pending = dict(self.st.pendingResult or {})
        result = pending.get("result", "RolledBack")
        record = {"version": self.st.candidateVersion, "result": result, "reason": pending.get("reason", ""),
                  "finishedAt": iso(self.now)}
        if result == "Promoted":
            self.set(stableVersion=self.st.candidateVersion, stablePredictor=self.st.candidatePredictor,
                     stableModel=self.st.candidateModel)
        old = self.st
        self.set(phase=STABLE if result == "Promoted" else FAILED, lastRollout=record, candidateVersion=None,
                 candidatePredictor=None, candidateModel=None, candidateWeight=0, shadow=False, step=0,
                 stepStartedAt=None, pendingResult=None, pauseReason=None, pausedFrom=None)
        if result == "Promoted":
            self.emit("Promoted", f"{old.stableVersion} is now stable and serves 100% of traffic; "
                      f"the previous predictor was removed.")
        else:
            verb = {"RolledBack": "rolled back", "NoWinner": "not adopted"}.get(result, "aborted")
            self.emit(result if result in ("RolledBack", "NoWinner") else "Aborted",
                      f"{record['version']} was {verb} ({record['reason']}); {old.stableVersion} serves 100%. "
                      "Set a new spec.model.version, or annotate modeldeploy.io/command=retry, to try again.",
                      warning=result == "RolledBack")

    # -- per phase -------------------------------------------------------------------
    def run(self) -> None:
        st, spec = self.st, self.spec
        if not st.phase:
            self.deploy_fresh("Deploying", f"Deploying {spec.model.version} with 100% of traffic.")
        elif st.phase == PENDING:
            self.pending()
        elif st.phase == STABLE:
            self.stable()
        elif st.phase in IN_ROLLOUT:
            self.rolling()
        elif st.phase == ROLLING_BACK and self.obs.applied:
            self.finish()
        elif st.phase == PROMOTING and self.obs.applied and self.obs.seldon.is_ready(st.candidatePredictor or ""):
            self.finish()
        elif st.phase == FAILED:
            self.failed()
        if self.obs.command and not any(e.reason.startswith("Command") for e in self.events):
            self.consume_command_noop()

    def pending(self) -> None:
        v = self.spec.model.version
        if v != self.st.stableVersion:
            self.deploy_fresh("Deploying", f"Version changed to {v} before {self.st.stableVersion} became "
                              f"available; deploying {v} instead (no traffic to protect yet).")
        elif self.obs.seldon.is_ready(self.st.stablePredictor or ""):
            self.set(phase=STABLE)
            self.emit("Available", f"{v} is available and serves 100% of traffic.")
        elif failure := self.obs.seldon.failure(self.st.stablePredictor or ""):
            self.set(phase=FAILED)
            self.emit("DeployFailed", f"{v} failed to become available: {failure}", warning=True)

    def stable(self) -> None:
        m = self.spec.model
        if m.version == self.st.stableVersion:
            self.set(stableModel=dataclasses.asdict(m))  # replicas, image: applied in place
            if self.obs.command == "retry":
                self.command_event("retry", "nothing to retry: no rollout has failed")
        else:
            self.start_rollout()

    def failed(self) -> None:
        v, st = self.spec.model.version, self.st
        stable_ready = self.obs.seldon.is_ready(st.stablePredictor or "")
        if v == st.stableVersion:
            if stable_ready:
                self.set(phase=STABLE)
                self.emit("Available", f"spec.model.version names the stable version {v} again; it serves 100%.")
        elif not stable_ready and not st.lastRollout:
            self.deploy_fresh("Deploying", f"Deploying {v} in place of {st.stableVersion}, which never became available.")
        elif self.obs.command == "retry":
            self.command_event("retry", f"retrying the rollout of {v}")
            self.start_rollout(prefix="Retry: ")
        elif not st.lastRollout or v != st.lastRollout.get("version"):
            self.start_rollout()

    def rolling(self) -> None:
        spec, obs = self.spec, self.obs
        v, cand = spec.model.version, self.st.candidatePredictor or ""
        if v == self.st.stableVersion:
            return self.roll_back("Aborted", "spec.model.version was set back to the stable version")
        if v != self.st.candidateVersion:
            old = self.st.candidateVersion
            return self.start_rollout("Superseded", f"{old} was superseded mid-rollout by {v}; starting over. ")
        if obs.command == "abort":
            self.command_event("abort", "aborting the rollout")
            return self.roll_back("Aborted", "aborted by a user")
        if obs.command == "promote":
            if not obs.seldon.is_ready(cand):
                return self.command_event("promote", f"refused: {self.st.candidateVersion} is not ready, "
                                          "and an unready model never gets traffic")
            self.command_event("promote", "promoting now, skipping the remaining steps")
            return self.promote("promoted by a user")
        if failure := obs.seldon.failure(cand):
            return self.roll_back("RolledBack", f"Seldon reports the candidate failed: {failure}")
        if self.st.stepStartedAt is None:
            return self.await_ready()
        if self.st.phase == PAUSED:
            return self.paused()
        if spec.paused or obs.command == "pause":
            if obs.command == "pause":
                self.command_event("pause", "pausing")
            return self.pause("user", f"Paused by spec.paused at {self.st.candidateWeight}% to {self.st.candidateVersion}.")
        if obs.analysis is not None and not self.record(obs.analysis):
            return
        if not obs.applied:
            # This step's routing is not in Seldon yet (the operator died between writing
            # status and patching Seldon, or the patch failed): users have not seen this
            # weight, so the step's time starts when they do. Without this, a restart after
            # a long outage would advance past a step that never served anyone.
            self.set(stepStartedAt=iso(self.now))
            return
        self.maybe_advance()

    def await_ready(self) -> None:
        s, st = self.spec.strategy, self.st
        if self.obs.seldon.is_ready(st.candidatePredictor or ""):
            if st.shadow:
                self.set(stepStartedAt=iso(self.now))
                self.emit("Shadowing", f"{st.candidateVersion} is ready; mirroring traffic to it for "
                          f"{s.shadow_duration:.0f}s before any user sees its responses.")
            elif st.phase == AB_TESTING:
                self.set(stepStartedAt=iso(self.now), candidateWeight=s.ab_split)
                self.emit("ABTestStarted", f"{st.candidateVersion} is ready; A/B test at {100 - s.ab_split}/"
                          f"{s.ab_split} until {s.ab_min_samples} feedback per version (at most "
                          f"{s.ab_max_duration:.0f}s).")
            else:
                self.set(stepStartedAt=iso(self.now), candidateWeight=s.steps[0])
                self.emit("StepAdvanced", f"{st.candidateVersion} is ready; step 1/{len(s.steps)}: "
                          f"{s.steps[0]}% of traffic.")
            return
        waited = (self.now - parse_time(st.rolloutStartedAt)).total_seconds()
        if waited > s.progress_deadline:
            self.roll_back("RolledBack", f"the candidate was not ready within {s.progress_deadline:.0f}s")

    def paused(self) -> None:
        st, obs = self.st, self.obs
        if st.pauseReason == "user":
            if obs.command == "resume" and self.spec.paused:
                self.command_event("resume", "spec.paused is true: set it to false to resume")
            elif not self.spec.paused:
                if obs.command == "resume":
                    self.command_event("resume", "resuming")
                self.resume("resumed by a user")
            return
        if obs.command == "resume":
            self.command_event("resume", "resuming")
            return self.resume("resumed by a user")
        if obs.analysis is not None and self.record(obs.analysis) and obs.analysis.outcome == Outcome.PASS:
            self.resume(f"analysis passes again ({obs.analysis.summary()})")

    def record(self, result: AnalysisResult) -> bool:
        """Count the verdict; return False when it ended or paused the rollout."""
        a, c = self.spec.analysis, dict(self.st.counters)
        if result.outcome == Outcome.FAIL:
            c["failed"] += 1
        elif result.outcome == Outcome.INCONCLUSIVE and not result.collecting:
            c["inconclusive"] += 1
        elif result.outcome == Outcome.ERROR:
            c["errors"] += 1
        else:  # inconclusive and errors count consecutive windows; failures the whole rollout.
            # Sequential checks still collecting evidence are progress, not missing data:
            # low traffic makes the decision slower, it must not pause the rollout.
            c.update(inconclusive=0, errors=0)
        self.set(counters=c, lastAnalysis={
            "time": iso(self.now), "outcome": result.outcome.value, "message": result.summary(),
            "checks": [ch.to_status() for ch in result.checks],
        })
        summary = f"Analysis of {self.st.candidateVersion} at {self.st.candidateWeight}%: {result.summary()}"
        self.events.append(Event("Warning" if result.outcome != Outcome.PASS else "Normal",
                                 f"Analysis{result.outcome.value}", summary))
        if result.decisive_fail:
            self.roll_back("RolledBack", f"the evidence against it crossed its threshold: {result.summary()}")
            return False
        if c["failed"] >= a.failure_limit:
            self.roll_back("RolledBack", f"{c['failed']} failed analyses (failureLimit {a.failure_limit}): {result.summary()}")
            return False
        if self.st.phase != PAUSED and c["inconclusive"] >= a.inconclusive_limit:
            self.pause("inconclusive", f"Paused: {c['inconclusive']} inconclusive analyses in a row (inconclusiveLimit "
                       f"{a.inconclusive_limit}); holding {self.st.candidateWeight}% until there is enough data.")
            return False
        if self.st.phase != PAUSED and c["errors"] >= a.error_limit:
            self.pause("errors", f"Paused: {c['errors']} analyses in a row could not read metrics (errorLimit "
                       f"{a.error_limit}); holding {self.st.candidateWeight}%, never promoting without data.")
            return False
        return True

    def maybe_advance(self) -> None:
        st, s = self.st, self.spec.strategy
        started = parse_time(st.stepStartedAt)
        last = st.lastAnalysis or {}
        passed_this_step = last.get("outcome") == Outcome.PASS.value and parse_time(last.get("time")) >= started
        elapsed = (self.now - started).total_seconds()
        if st.shadow:
            if elapsed >= (s.shadow_duration or 0) and passed_this_step:
                if self.walk_phase() == AB_TESTING:
                    self.set(phase=AB_TESTING, shadow=False, candidateWeight=s.ab_split, stepStartedAt=iso(self.now))
                    self.emit("ABTestStarted", f"Shadow of {st.candidateVersion} passed; A/B test at "
                              f"{100 - s.ab_split}/{s.ab_split}.")
                    return
                self.set(phase=PROGRESSING, shadow=False, step=0, candidateWeight=s.steps[0], stepStartedAt=iso(self.now))
                self.emit("StepAdvanced", f"Shadow of {st.candidateVersion} passed; step 1/{len(s.steps)}: {s.steps[0]}% of traffic.")
            return
        if st.phase == AB_TESTING:
            return self.judge_ab_test(elapsed)
        if elapsed < s.step_duration or not passed_this_step:
            return
        nxt = st.step + 1
        if s.steps[nxt] >= 100:
            return self.promote(f"all {len(s.steps) - 1} steps passed analysis")
        self.set(step=nxt, candidateWeight=s.steps[nxt], stepStartedAt=iso(self.now))
        self.emit("StepAdvanced", f"Step {nxt + 1}/{len(s.steps)}: {s.steps[nxt]}% of traffic to {st.candidateVersion}.")

    def judge_ab_test(self, elapsed: float) -> None:
        """Decide once both versions have enough feedback (the comparison is decisive) or
        maxDuration has passed; a winner only when its reward is significantly higher."""
        s, r, st = self.spec.strategy, self.obs.reward, self.st
        if r is not None:
            self.set(abTest={**r, "time": iso(self.now)})
        decisive = r is not None and r.get("outcome") == Outcome.PASS.value
        if not decisive and elapsed < s.ab_max_duration:
            return
        winner = r.get("winner") if decisive else None
        numbers = (st.abTest or {}).get("message", "no reward data") if r is None else r.get("message", "")
        if winner == "candidate":
            if s.ab_promote_winner:
                return self.promote(f"the A/B test found it better on reward ({numbers})")
            if not (st.abTest or {}).get("winner") == "candidate":
                self.emit("WinnerFound", f"{st.candidateVersion} wins the A/B test on reward ({numbers}); "
                          "promoteWinner is false: run `kubectl modeldeploy promote` to adopt it.")
            return
        why = f"{st.stableVersion} earns more reward" if winner == "baseline" else "no significant difference in reward"
        if not decisive:
            why = f"no decision within maxDuration {s.ab_max_duration:.0f}s"
        self.roll_back("NoWinner", f"A/B test: {why} ({numbers}); {st.stableVersion} stays")

    # -- commands ----------------------------------------------------------------------
    def command_event(self, command: str, what: str) -> None:
        self.events.append(Event("Normal", f"Command{command.capitalize()}", f"modeldeploy.io/command={command}: {what}."))

    def consume_command_noop(self) -> None:
        cmd = self.obs.command
        why = f"unknown command; use one of {', '.join(COMMANDS)}" if cmd not in COMMANDS else (
            f"ignored in phase {self.st.phase}: no rollout in progress" if self.st.phase not in IN_ROLLOUT
            else "ignored")
        self.events.append(Event("Warning", f"Command{str(cmd).capitalize()}", f"modeldeploy.io/command={cmd}: {why}."))


def _conditions(st: Status, obs: Observation, now: datetime) -> tuple[Mapping[str, Any], ...]:
    ready = bool(st.stablePredictor) and obs.seldon.is_ready(st.stablePredictor or "")
    progressing = st.phase in IN_ROLLOUT + (PROMOTING, ROLLING_BACK)
    wanted = {
        "Ready": ("True" if ready else "False", "Available" if ready else "NotAvailable",
                  f"{st.stableVersion} is {'serving' if ready else 'not available'}"),
        "Progressing": ("True" if progressing else "False", st.phase or "Pending",
                        f"rolling out {st.candidateVersion}" if progressing else "no rollout in progress"),
    }
    old = {c["type"]: c for c in st.conditions}
    out = []
    for ctype, (status, reason, message) in wanted.items():
        prev = old.get(ctype)
        changed = prev is None or prev.get("status") != status
        out.append({"type": ctype, "status": status, "reason": reason, "message": message,
                    "lastTransitionTime": iso(now) if changed else prev["lastTransitionTime"]})
    return tuple(out)


def step(spec: Spec, status: Status, obs: Observation, now: datetime) -> Decision:
    """Advance the rollout by one tick; see the module docstring for the guarantees."""
    m = _Machine(spec, status, obs, now)
    m.run()
    st = dataclasses.replace(m.st, conditions=_conditions(m.st, obs, now),
                             observedGeneration=obs.generation if obs.generation is not None else m.st.observedGeneration)
    return Decision(st, tuple(m.events), predictors(st))
