"""The rollout state machine: `step(spec, status, observation, now) -> Decision`.

Pure: no I/O, the clock is a parameter, and everything it needs to resume lives in the
status it returns. The shell persists that status *before* it makes the router's object
match `Decision.predictors`, so an operator killed at any moment re-derives the same
routing on restart and never skips or repeats a step.

Invariants, each enforced here and checked by the property tests in
`tests/unit/test_rollout_properties.py` over random histories of every strategy (canary,
A/B, shadow first), verdicts, readiness flaps, spec edits, crashes and every command in
every phase:

1. **No promotion without a Pass of the current step.** A canary step advances, a
   shadow ends and an A/B winner is promoted only when the latest analysis is Pass, was
   taken after the step started and covers data from inside the step (its window starts
   at or after `stepStartedAt`). A person's `promote` command is the one override, and
   its event says so.
2. **Weight only goes to a ready candidate.** The candidate gets its first step once
   the router reports it ready; a candidate that turns unready drops to 0 % at once and is
   rolled back unless ready again within `readinessGrace` — at once if it has no
   available replica left while users are routed to it (Seldon Core v1 does not re-route while a
   Deployment is unready, so only removing the predictor stops the 503s). An unready
   stable predictor pauses the rollout; no weight moves until it is ready again.
3. **Every phase of a rollout can end.** Waiting for readiness and `Promoting` are bounded
   by `progressDeadline`; `abort` and setting `spec.model.version` back to the stable
   version end every phase, `Promoting` included; a Paused rollout resumes or is aborted.
4. **Pause holds in every phase.** `spec.paused` and the `pause` command hold the weight
   (also while waiting for readiness) until `spec.paused: false` or `resume`; a command
   that cannot be honoured is refused with an event saying what to do instead.
5. **A tick never raises** on any spec the parser accepts, including steps edited
   mid-rollout: the next weight is the first step above the current one.
6. Missing data (Inconclusive) and provider errors hold the weight and pause past their
   limits; they never promote and never roll back on their own.
7. The stable predictor is removed only after a promotion's 100/0 routing was applied;
   a step's clock starts when its routing is observed in the router's object.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from .schedule import analysis_due, next_action_at, next_analysis_at, next_weight  # noqa: F401 - re-exported
from .spec import Spec
from .state import (  # noqa: F401 - re-exported: rollout.Status, rollout.PENDING, ...
    AB_TESTING, COMMANDS, FAILED, HISTORY_LIMIT, IN_ROLLOUT, PAUSE_COMMAND, PAUSE_ERRORS, PAUSE_INCONCLUSIVE,
    PAUSE_STABLE_UNREADY, PAUSE_USER, PAUSED, PENDING, PROGRESSING, PROMOTING, ROLLING_BACK, SHADOWING, STABLE,
    Decision, Event, LastAnalysis, Observation, Phase, Result, Status, iso, parse_time, predictors,
)
from .evidence import Evidence
from .verdicts import Outcome


class _Machine(Evidence):
    """The rules of each phase, applied to one tick's observation."""

    # -- per phase -------------------------------------------------------------------
    def run(self) -> None:
        self.observe_routing()
        if self.obs.output_bins is not None and self.st.outputBins is None and self.st.candidateVersion:
            self.set(outputBins=self.obs.output_bins)  # fixed once per rollout; start_rollout clears them
        phase = self.st.phase
        if not phase:
            self.deploy_fresh("Deploying", f"Deploying {self.spec.model.version} with 100% of traffic.")
        elif phase == PENDING:
            self.pending()
        elif phase == STABLE:
            self.stable()
        elif phase in IN_ROLLOUT:
            self.rolling()
        elif phase == PROMOTING:
            self.promoting()
        elif phase == ROLLING_BACK and self.obs.applied:
            self.finish()
        elif phase == FAILED:
            self.failed()
        if self.obs.command and not any(e.reason.startswith("Command") for e in self.events):
            self.refuse_command()

    def pending(self) -> None:
        v, st = self.spec.model.version, self.st
        if v != st.stableVersion:
            self.deploy_fresh("Deploying", f"Version changed to {v} before {st.stableVersion} became "
                              f"available; deploying {v} instead (no traffic to protect yet).")
        elif self.ready(st.stablePredictor):
            self.set(phase=STABLE, rolloutStartedAt=None)
            self.emit("Available", f"{v} is available and serves 100% of traffic.")
        elif failure := self.obs.routing.failure(st.stablePredictor or ""):
            self.set(phase=FAILED)
            self.emit("DeployFailed", f"{v} failed to become available: {failure}", warning=True)
        elif st.rolloutStartedAt and self.elapsed(st.rolloutStartedAt) > self.spec.strategy.progress_deadline:
            routing = self.obs.routing
            self.set(phase=FAILED)
            self.emit("DeployFailed", f"{v} did not become available within progressDeadline "
                      f"{self.spec.strategy.progress_deadline:.0f}s; the {routing.kind} says: "
                      f"{routing.description or routing.state or 'nothing'}. It becomes Stable "
                      f"as soon as the {routing.kind} reports it available.", warning=True)

    def stable(self) -> None:
        m = self.spec.model
        if m.version == self.st.stableVersion:
            self.set(stableModel=dataclasses.asdict(m))  # replicas, image: applied in place
        else:
            self.start_rollout()

    def failed(self) -> None:
        v, st = self.spec.model.version, self.st
        stable_ready = self.ready(st.stablePredictor)
        if v == st.stableVersion:
            if stable_ready:
                self.set(phase=STABLE)
                self.emit("Available", f"spec.model.version names the stable version {v} again; it serves 100%.")
        elif not stable_ready and not st.lastRollout:
            self.deploy_fresh("Deploying", f"Deploying {v} in place of {st.stableVersion}, which never became available.")
        elif self.obs.command == "retry":
            self.command_event("retry", f"retrying the rollout of {v}")
            self.start_rollout(prefix="Retry: ")
        elif not st.lastRollout or v != st.lastRollout.version:
            self.start_rollout()

    def ends_rollout(self) -> bool:
        """What ends a rollout in any of its phases: a version edit, abort, a failed candidate."""
        v, st, cmd = self.spec.model.version, self.st, self.obs.command
        if v == st.stableVersion:
            self.roll_back(Result.ABORTED, "spec.model.version was set back to the stable version")
        elif v != st.candidateVersion:
            self.start_rollout("Superseded", f"{st.candidateVersion} was superseded mid-rollout by {v}; starting over. ")
        elif cmd == "abort":
            self.command_event("abort", "aborting the rollout")
            self.roll_back(Result.ABORTED, "aborted by a user")
        elif failure := self.obs.routing.failure(st.candidatePredictor or ""):
            self.roll_back(Result.ROLLED_BACK, f"the {self.obs.routing.kind} reports the candidate failed: {failure}")
        else:
            return False
        return True

    def rolling(self) -> None:
        st, obs = self.st, self.obs
        if self.ends_rollout():
            return
        if obs.command == "promote":
            if self.ready(st.candidatePredictor):
                last = (st.lastAnalysis.message if st.lastAnalysis else None) or "none yet"
                self.command_event("promote", "promoting now, skipping the remaining steps")
                return self.promote(f"promoted by a user, overriding the analysis (latest: {last})")
            self.command_event("promote", f"refused: {st.candidateVersion} is not ready, and an unready model "
                               f"never gets traffic; abort, or wait until the {obs.routing.kind} reports it ready")
        held = self.watch_readiness()
        if self.st.phase == ROLLING_BACK:
            return
        # Commands and pauses are honoured even on a tick when readiness changed.
        if self.st.phase == PAUSED:
            return self.paused()
        if self.spec.paused or obs.command == "pause":
            return self.pause_by_user()
        if held:
            return
        if st.stepStartedAt is None:
            return self.await_ready()
        if obs.analysis is not None and not self.record(obs.analysis):
            return
        if not obs.applied:
            # This step's routing is not in the router's object yet (the operator died between
            # writing status and patching it, or the patch failed): users have not seen this
            # weight, so the step's time starts when they do.
            self.set(stepStartedAt=iso(self.now))
            return
        self.maybe_advance()

    def watch_readiness(self) -> bool:
        """Candidate and stable readiness for the whole rollout; True when the step must
        hold this tick (the candidate is unready, or was just restored)."""
        st, grace = self.st, self.spec.strategy.readiness_grace
        if st.stepStartedAt is None:
            return False  # still waiting for the first readiness: await_ready's deadline
        if not self.ready(st.candidatePredictor):
            if st.candidateWeight > 0 and not self.obs.routing.serves(st.candidatePredictor or ""):
                # No replica left: every request routed to it fails, and Seldon Core v1 re-routes
                # only once all of its Deployments are ready, so a 0 % weight would not take
                # effect. Removing the predictor is the one change that protects users.
                self.roll_back(Result.ROLLED_BACK, "the candidate has no available replica left, so every request "
                               "routed to it fails; it is removed at once")
                return True
            if st.candidateUnreadySince is None:
                self.set(candidateUnreadySince=iso(self.now), candidateWeight=0)
                self.emit("CandidateUnready", f"{st.candidateVersion} is no longer ready: its "
                          f"{st.candidateWeight}% returns to {st.stableVersion} now; it is rolled back unless "
                          f"ready again within readinessGrace {grace:.0f}s.", warning=True)
            elif self.elapsed(st.candidateUnreadySince) >= grace:
                self.roll_back(Result.ROLLED_BACK, f"the candidate stayed unready for readinessGrace {grace:.0f}s")
            return True
        if st.candidateUnreadySince is not None:
            paused = st.phase == PAUSED
            self.set(candidateUnreadySince=None, candidateWeight=0 if paused or st.shadow else st.stepWeight,
                     stepStartedAt=iso(self.now))
            self.emit("CandidateReady", f"{st.candidateVersion} is ready again; " + (
                "it gets its weight back when the rollout resumes." if paused else
                f"the step restarts at {self.st.candidateWeight}%."))
            return True
        if not self.ready(st.stablePredictor) and st.phase != PAUSED:
            self.pause(PAUSE_STABLE_UNREADY, f"Paused: the stable predictor {st.stablePredictor} "
                       f"({st.stableVersion}) is not ready; holding {st.candidateWeight}% to "
                       f"{st.candidateVersion}. The rollout resumes when it is ready again.")
            return True
        return False

    def pause_by_user(self) -> None:
        command = self.obs.command == "pause"
        if command:
            self.command_event("pause", "pausing")
        by, how = ("the pause command", "modeldeploy.io/command=resume") if command else ("spec.paused", "spec.paused: false")
        self.pause(PAUSE_COMMAND if command else PAUSE_USER,
                   f"Paused by {by} at {self.st.candidateWeight}% to {self.st.candidateVersion}; "
                   f"`kubectl modeldeploy resume` ({how}) continues.")

    def await_ready(self) -> None:
        s, st = self.spec.strategy, self.st
        if self.ready(st.candidatePredictor):
            if st.shadow:
                self.set(stepStartedAt=iso(self.now))
                self.emit("Shadowing", f"{st.candidateVersion} is ready; mirroring traffic to it for "
                          f"{s.shadow_duration:.0f}s before any user sees its responses.")
            elif st.phase == AB_TESTING:
                self.start_step(s.ab_split)
                self.emit("ABTestStarted", f"{st.candidateVersion} is ready; A/B test at {100 - s.ab_split}/"
                          f"{s.ab_split} until {s.ab_min_samples} feedback per version (at most "
                          f"{s.ab_max_duration:.0f}s).")
            else:
                self.first_step(f"{st.candidateVersion} is ready")
            return
        if self.elapsed(st.rolloutStartedAt) > s.progress_deadline:
            self.roll_back(Result.ROLLED_BACK, f"the candidate was not ready within progressDeadline {s.progress_deadline:.0f}s")

    def paused(self) -> None:
        st, obs, cmd = self.st, self.obs, self.obs.command
        if self.spec.paused and st.pauseReason != PAUSE_USER:
            self.set(pauseReason=PAUSE_USER)  # a person's pause outranks the operator's
        reason = self.st.pauseReason
        if cmd == "pause":
            return self.command_event("pause", "already paused")
        if reason == PAUSE_USER:
            if cmd == "resume" and self.spec.paused:
                self.command_event("resume", "refused: spec.paused is true; set it to false to resume")
            elif not self.spec.paused:
                if cmd == "resume":
                    self.command_event("resume", "resuming")
                self.resume("spec.paused is false")
            return
        if reason == PAUSE_STABLE_UNREADY:
            if self.ready(st.stablePredictor):
                return self.resume(f"the stable predictor {st.stablePredictor} is ready again")
            if cmd == "resume":
                self.command_event("resume", "refused: the stable predictor is not ready; the rollout resumes by "
                                   "itself when it is, or abort to end it")
            return
        if cmd == "resume":
            self.command_event("resume", "resuming")
            return self.resume("resumed by a user")
        if reason == PAUSE_COMMAND:
            return
        if obs.analysis is not None and self.record(obs.analysis) and obs.analysis.outcome == Outcome.PASS:
            self.resume(f"analysis passes again ({obs.analysis.summary()})")

    def promoting(self) -> None:
        st, cmd, deadline = self.st, self.obs.command, self.spec.strategy.progress_deadline
        if self.ends_rollout():
            return
        if cmd in ("pause", "promote", "resume"):
            self.command_event(cmd, "refused: the promotion is already under way; abort returns all traffic "
                               f"to {st.stableVersion}")
        if not self.ready(st.candidatePredictor):
            return self.roll_back(Result.ROLLED_BACK, "the candidate became unready while it was being promoted")
        if self.obs.applied:
            return self.finish()
        if self.elapsed(st.stepStartedAt) > deadline:
            self.roll_back(Result.ROLLED_BACK, f"the 100% routing was not observed in the {self.obs.routing.kind} "
                           f"within progressDeadline {deadline:.0f}s")

    # -- commands ----------------------------------------------------------------------
    def refuse_command(self) -> None:
        cmd, phase = self.obs.command, self.st.phase
        if cmd not in COMMANDS:
            why = f"unknown command; use one of {', '.join(COMMANDS)}"
        elif cmd == "retry" and phase == FAILED:
            why = "nothing to retry: spec.model.version names a version that was not rolled back"
        elif cmd == "retry":
            why = "nothing to retry: no rollout has failed"
        elif phase == ROLLING_BACK:
            why = "refused: the rollout is already ending; set a new spec.model.version to start another"
        elif phase not in IN_ROLLOUT + (PROMOTING,):
            why = f"refused in phase {phase}: no rollout in progress; change spec.model.version to start one"
        else:
            why = "ignored"
        self.emit(f"Command{str(cmd).capitalize()}", f"modeldeploy.io/command={cmd}: {why}.", warning=True)


def _conditions(st: Status, obs: Observation, now: datetime, generation: int | None) -> tuple[dict[str, Any], ...]:
    ready = bool(st.stablePredictor) and obs.routing.is_ready(st.stablePredictor or "")
    progressing = st.phase in IN_ROLLOUT + (PROMOTING, ROLLING_BACK)
    wanted = {
        "Ready": ("True" if ready else "False", "Available" if ready else "NotAvailable",
                  f"{st.stableVersion} is {'serving' if ready else 'not available'}"),
        "Progressing": ("True" if progressing else "False", st.phase or PENDING,
                        f"rolling out {st.candidateVersion}" if progressing else "no rollout in progress"),
    }
    old = {c["type"]: c for c in st.conditions}
    out = []
    for ctype, (status, reason, message) in wanted.items():
        prev = old.get(ctype)
        changed = prev is None or prev.get("status") != status
        out.append({"type": ctype, "status": status, "reason": reason, "message": message,
                    "lastTransitionTime": iso(now) if changed or not prev else prev["lastTransitionTime"],
                    "observedGeneration": generation})
    return tuple(out)


def step(spec: Spec, status: Status, obs: Observation, now: datetime) -> Decision:
    """Advance the rollout by one tick; see the module docstring for the guarantees."""
    m = _Machine(spec, status, obs, now)
    m.run()
    generation = obs.generation if obs.generation is not None else m.st.observedGeneration
    st = dataclasses.replace(m.st, observedGeneration=generation)
    nxt = next_action_at(spec, st, now)
    st = dataclasses.replace(st, conditions=_conditions(st, obs, now, generation),
                             nextActionAt=iso(nxt) if nxt else None)
    return Decision(st, tuple(m.events), predictors(st))
