"""A deterministic driver for the pure state machine: a fake clock and a scripted Seldon.

It plays the shell's part the way `modeldeploy.handlers` does (persist status, then make
the SeldonDeployment match), and can "crash" between those two writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

from modeldeploy import rollout, routing
from modeldeploy.spec import parse
from modeldeploy.state import OutputBins, Reward
from modeldeploy.verdicts import AnalysisResult, CheckResult, Outcome

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def make_spec(version: str = "1.0.0", **overrides) -> dict:
    spec = {
        "model": {"name": "digits", "version": version, "uri": f"file:///models/{version}"},
        "strategy": {"type": "Canary", "canary": {"steps": [10, 25, 50, 100], "stepDuration": "1m"}},
        "analysis": {"interval": "30s", "failureLimit": 2, "inconclusiveLimit": 3, "errorLimit": 2},
    }
    for path, value in overrides.items():
        set_path(spec, path.split("__"), value)
    return spec


def set_path(doc: dict, keys: list[str], value) -> None:
    """doc[k0][k1]...[kn] = value, creating the mappings on the way."""
    node = doc
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value


def verdict(outcome: Outcome, since: datetime | None = None) -> AnalysisResult:
    return AnalysisResult.of([CheckResult("p99", outcome, f"scripted {outcome.value}")], since)


@dataclass
class Sim:
    spec: dict
    now: datetime = T0
    status: dict = field(default_factory=dict)
    applied: tuple = ()
    ready: set = field(default_factory=set)
    partial: set = field(default_factory=set)  # unready, but some replicas still serve
    failed: dict = field(default_factory=dict)
    events: list = field(default_factory=list)
    history: list = field(default_factory=list)  # (time, phase, candidate weight) after each tick
    window: float | None = None  # seconds of data each analysis covers (None: not stated)
    # Offer freshly fixed regressor bins (different every time) with every analysis, as the
    # shell does until status holds some: the core must record them once per rollout.
    offer_bins: bool = False
    # Every check reports one nat of step evidence (`CheckResult.step_log_e`) and a stratum of
    # information 1 (`step_strata`) with every analysis, as errorRate's failure test and the
    # stratified latency and outputs tests do: the core must carry each look once.
    step_evidence: bool = False
    _follow_ups: int = 0

    def observation(self, analysis=None, command=None, reward=None) -> rollout.Observation:
        names = {p.name for p in self.applied}
        # Replicas (available, desired): ready ones all up, `partial` ones one of two, the rest none.
        available = {n: (1, 1) if n in self.ready else (1, 2) if n in self.partial else (0, 1) for n in names}
        sobs = routing.Observation(exists=bool(self.applied), ready=frozenset(self.ready & names),
                                  failed={k: v for k, v in self.failed.items() if k in names}, available=available)
        current = rollout.Status.from_dict(self.status)
        bins = (OutputBins((float(len(self.history)),), current.stableVersion or "", 200, "", "")
                if self.offer_bins and analysis is not None else None)
        return rollout.Observation(routing=sobs, applied=self.applied == rollout.predictors(current),
                                   analysis=analysis, reward=reward, command=command, generation=1,
                                   output_bins=bins)

    def tick(self, seconds: float = 0, outcome: Outcome | None = None, command: str | None = None,
             crash_before_status: bool = False, crash_before_apply: bool = False,
             crash_before_observe: bool = False, reward: Reward | None = None) -> rollout.Decision:
        self.now += timedelta(seconds=seconds)
        spec = parse(self.spec)
        current = rollout.Status.from_dict(self.status)
        analysis = None
        if outcome is not None or rollout.analysis_due(spec, current, self.now):
            if rollout.analysis_due(spec, current, self.now):
                since = self.now - timedelta(seconds=self.window) if self.window is not None else None
                analysis = verdict(outcome or Outcome.PASS, since)
                if self.step_evidence:
                    analysis = AnalysisResult.of([replace(c, step_log_e=1.0, step_strata={"": (1.0, 1.0)})
                                                  for c in analysis.checks], since)
        due = analysis is not None and current.phase == rollout.AB_TESTING
        decision = rollout.step(spec, current, self.observation(analysis, command, reward if due else None), self.now)
        if crash_before_status:
            return decision
        # A status round trip through JSON, exactly what the API server stores.
        self.status = json.loads(json.dumps(decision.status.to_dict()))
        if not crash_before_apply:
            traffic = [p for p in decision.predictors if not p.shadow]
            assert sum(p.traffic for p in traffic) == 100, decision.predictors
            self.applied = decision.predictors
        self.events += decision.events
        self.history.append((self.now, decision.status.phase, decision.status.candidateWeight))
        pending = decision.status.stepStartedAt and not decision.status.stepObserved
        if pending and not (crash_before_apply or crash_before_observe):
            # The shell's own writes wake it within milliseconds: that tick sees the new
            # routing in the SeldonDeployment and starts the step's clock.
            self._follow_ups += 1
            try:
                assert self._follow_ups < 4, f"the step's routing is never observed: {self.status}"
                self.tick()
            finally:
                self._follow_ups -= 1
        return decision

    @property
    def phase(self) -> str:
        return self.status.get("phase", "")

    def weights(self) -> dict[str, int]:
        return {p.version: (p.traffic if not p.shadow else -1) for p in self.applied}

    def reasons(self) -> list[str]:
        return [e.reason for e in self.events]

    def run_until(self, phase: str, step_seconds: float = 5, limit: int = 500, outcome: Outcome | None = None) -> None:
        for _ in range(limit):
            if self.phase == phase:
                return
            self.tick(step_seconds, outcome=outcome)
        raise AssertionError(f"never reached {phase}: stuck in {self.phase}; events {self.reasons()}")

    def to_stable(self) -> None:
        self.tick()
        self.ready |= {p.name for p in self.applied}
        self.tick()
        assert self.phase == rollout.STABLE

    def bump(self, version: str) -> None:
        self.spec["model"]["version"] = version
        self.spec["model"]["uri"] = f"file:///models/{version}"


def rolled_out(spec: dict, version: str = "2.0.0", wait: float = 1) -> Sim:
    """A Stable 1.0.0 bumped to `version`, its candidate ready and given its first step."""
    sim = Sim(spec)
    sim.to_stable()
    sim.bump(version)
    sim.tick()
    sim.ready.add(sim.status["candidatePredictor"])
    sim.tick(wait)
    return sim


def ab_test(**ab_test) -> Sim:
    """An A/B test of 2.0.0 against 1.0.0 at a 60/40 split, started."""
    spec = make_spec("1.0.0")
    spec["strategy"] = {"type": "ABTest", "abTest": {"split": 40, "minSamples": 300, "maxDuration": "10m", **ab_test}}
    return rolled_out(spec)

