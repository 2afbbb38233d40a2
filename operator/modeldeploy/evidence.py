"""The rollout's evidence rules: how an analysis verdict is counted, and when the evidence
lets a step advance, a shadow end or an A/B test decide.

Kept apart from the per-phase rules in `rollout` (which say what each phase waits for)
because these are the rules behind invariant 1 of `rollout`: no promotion without a Pass
of the current step, and (invariant 6) missing data holds, it never promotes.
"""

from __future__ import annotations

import dataclasses

from .schedule import next_weight
from .state import (
    AB_TESTING, PAUSE_ERRORS, PAUSE_INCONCLUSIVE, PAUSED, PROGRESSING, ABTest, Event, LastAnalysis, Result, iso,
    parse_time,
)
from .transitions import Transitions
from .verdicts import AnalysisResult, Outcome


class Evidence(Transitions):
    """Counting verdicts and advancing on them; `rollout._Machine` calls these from its phases."""

    def record(self, result: AnalysisResult) -> bool:
        """Count the verdict; return False when it ended or paused the rollout."""
        a, c = self.spec.analysis, self.st.counters
        if result.outcome == Outcome.FAIL:
            c = dataclasses.replace(c, failed=c.failed + 1)
        elif result.outcome == Outcome.INCONCLUSIVE and not result.collecting:
            c = dataclasses.replace(c, inconclusive=c.inconclusive + 1)
        elif result.outcome == Outcome.ERROR:
            c = dataclasses.replace(c, errors=c.errors + 1)
        else:  # inconclusive and errors count consecutive windows; failures the whole rollout.
            # Sequential checks still collecting evidence are progress, not missing data:
            # low traffic makes the decision slower, it must not pause the rollout.
            c = dataclasses.replace(c, inconclusive=0, errors=0)
        last = LastAnalysis(iso(self.now), result.outcome.value, result.summary(),
                            tuple(ch.to_status() for ch in result.checks),
                            iso(result.since) if result.since is not None else None)
        self.set(counters=c, lastAnalysis=last)
        summary = f"Analysis of {self.st.candidateVersion} at {self.st.candidateWeight}%: {result.summary()}"
        self.events.append(Event("Warning" if result.outcome != Outcome.PASS else "Normal",
                                 f"Analysis{result.outcome.value}", summary))
        # A rollback names the checks that failed, not the ones that passed beside them.
        why = "; ".join(f"{ch.name} {ch.outcome.value}: {ch.message}" for ch in result.checks
                        if ch.outcome == Outcome.FAIL) or result.summary()
        if result.decisive_fail:
            self.roll_back(Result.ROLLED_BACK, f"the evidence against it crossed its threshold: {why}")
            return False
        if c.failed >= a.failure_limit:
            self.roll_back(Result.ROLLED_BACK, f"{c.failed} failed analyses (failureLimit {a.failure_limit}): {why}")
            return False
        if self.st.phase != PAUSED and c.inconclusive >= a.inconclusive_limit:
            self.pause(PAUSE_INCONCLUSIVE, f"Paused: {c.inconclusive} inconclusive analyses in a row "
                       f"(inconclusiveLimit {a.inconclusive_limit}); holding {self.st.candidateWeight}% until there "
                       "is enough data.")
            return False
        if self.st.phase != PAUSED and c.errors >= a.error_limit:
            self.pause(PAUSE_ERRORS, f"Paused: {c.errors} analyses in a row could not read metrics (errorLimit "
                       f"{a.error_limit}); holding {self.st.candidateWeight}%, never promoting without data.")
            return False
        return True

    def passed_this_step(self) -> bool:
        """The latest analysis passed, after this step began, on data from inside the step."""
        started, last = parse_time(self.st.stepStartedAt), self.st.lastAnalysis
        if last is None:
            return False
        at, since = parse_time(last.time), parse_time(last.since)
        return (started is not None and at is not None and last.outcome == Outcome.PASS
                and at > started and (since is None or since >= started))

    def maybe_advance(self) -> None:
        st, s = self.st, self.spec.strategy
        passed, elapsed = self.passed_this_step(), self.elapsed(st.stepStartedAt)
        if st.shadow:
            if elapsed >= (s.shadow_duration or 0) and passed:
                if self.walk_phase() == AB_TESTING:
                    self.start_step(s.ab_split, AB_TESTING)
                    self.emit("ABTestStarted", f"Shadow of {st.candidateVersion} passed; A/B test at "
                              f"{100 - s.ab_split}/{s.ab_split}.")
                else:
                    self.first_step(f"Shadow of {st.candidateVersion} passed")
            return
        if st.phase == AB_TESTING:
            return self.judge_ab_test(elapsed, passed)
        if elapsed < s.step_duration or not passed:
            return
        nxt = next_weight(s.steps, st.stepWeight)
        if nxt >= 100:
            return self.promote(f"every step up to {st.stepWeight}% passed analysis")
        self.start_step(nxt)
        self.emit("StepAdvanced", f"Step {self.st.step + 1}/{len(s.steps)}: {nxt}% of traffic to {st.candidateVersion}.")

    def judge_ab_test(self, elapsed: float, passed: bool) -> None:
        """Decide once both versions have enough feedback (the comparison is decisive) or
        maxDuration has passed; a winner only when its reward is significantly higher
        *and* the guard checks pass. With promoteWinner false the verdict is frozen until
        a person promotes or aborts, or a new version arrives."""
        s, r, st = self.spec.strategy, self.obs.reward, self.st
        if st.abTest is not None and st.abTest.frozen:
            return
        if r is not None:
            self.set(abTest=ABTest.of(r, iso(self.now)))
        decisive = r if r is not None and r.outcome == Outcome.PASS else None
        over = elapsed >= s.ab_max_duration
        if decisive is None and not over:
            return
        winner = decisive.winner if decisive is not None else None
        if r is not None:
            numbers = r.message
        else:
            numbers = st.abTest.message if st.abTest is not None and st.abTest.message else "no reward data"
        if decisive is not None and winner == "candidate":
            if not passed:
                if not over:
                    return  # the reward says yes; the guards have not said Pass for this test yet
                guard = st.lastAnalysis.message if st.lastAnalysis else "no analysis"
                return self.roll_back(Result.NO_WINNER, f"A/B test: {st.candidateVersion} earned more reward ({numbers}) "
                                      f"but its guard checks did not pass within maxDuration (latest: {guard}); "
                                      f"{st.stableVersion} stays")
            if s.ab_promote_winner:
                return self.promote(f"the A/B test found it better on reward ({numbers}) and its guard checks pass")
            self.set(abTest=ABTest.of(decisive, iso(self.now), frozen=True))
            self.emit("WinnerFound", f"{st.candidateVersion} wins the A/B test on reward ({numbers}); "
                      "promoteWinner is false: run `kubectl modeldeploy promote` to adopt it, or abort.")
            return
        why = f"{st.stableVersion} earns more reward" if winner == "baseline" else "no significant difference in reward"
        if decisive is None:
            why = f"no decision within maxDuration {s.ab_max_duration:.0f}s"
        self.roll_back(Result.NO_WINNER, f"A/B test: {why} ({numbers}); {st.stableVersion} stays")

    def first_step(self, why: str) -> None:
        steps = self.spec.strategy.steps
        self.start_step(steps[0], PROGRESSING)
        self.emit("StepAdvanced", f"{why}; step 1/{len(steps)}: {steps[0]}% of traffic.")
