"""The rollout's state: phases, the `status` it persists, what it observes, what it decides.

Plain data, kept apart from the state machine (`rollout`) so that the shell, the CLI and
the tests can read a status without the transition rules.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Self

from .routing import Observation as RoutingObservation, Predictor
from .spec import ModelSpec
from .verdicts import AnalysisResult



class Phase(enum.StrEnum):
    """`status.phase`; the values are the API's (CRD, metrics, dashboards read them)."""

    PENDING = "Pending"
    STABLE = "Stable"
    SHADOWING = "Shadowing"
    PROGRESSING = "Progressing"
    AB_TESTING = "ABTesting"
    PAUSED = "Paused"
    PROMOTING = "Promoting"
    ROLLING_BACK = "RollingBack"
    FAILED = "Failed"


class Result(enum.StrEnum):
    """How a rollout ended (`status.lastRollout.result`, modeldeploy_rollouts_total)."""

    PROMOTED = "Promoted"
    ROLLED_BACK = "RolledBack"  # the candidate was worse or broken
    ABORTED = "Aborted"  # a person, or a newer spec
    NO_WINNER = "NoWinner"  # an A/B test found no better version


PENDING, STABLE, SHADOWING, PROGRESSING, PAUSED = (
    Phase.PENDING, Phase.STABLE, Phase.SHADOWING, Phase.PROGRESSING, Phase.PAUSED)
PROMOTING, ROLLING_BACK, FAILED, AB_TESTING = Phase.PROMOTING, Phase.ROLLING_BACK, Phase.FAILED, Phase.AB_TESTING
IN_ROLLOUT = (SHADOWING, PROGRESSING, AB_TESTING, PAUSED)
# The two phases that end a rollout once its 100/0 routing is applied.
FINISHING = (PROMOTING, ROLLING_BACK)
COMMANDS = ("promote", "abort", "pause", "resume", "retry")
# Why a rollout is Paused, and so what resumes it: `spec.paused: false` (USER), the resume
# command (COMMAND), a passing analysis or the resume command (INCONCLUSIVE, ERRORS), the
# stable predictor being ready again (STABLE_UNREADY).
PAUSE_USER, PAUSE_COMMAND, PAUSE_INCONCLUSIVE, PAUSE_ERRORS, PAUSE_STABLE_UNREADY = (
    "user", "command", "inconclusive", "errors", "stable-unready")
# Transitions kept in status.history: enough to read a whole rollout, bounded so a
# long-lived object's status stays small.
HISTORY_LIMIT = 50


def iso(t: datetime) -> str:
    """RFC 3339 with milliseconds: a step's clock must survive a restart to within a tick."""
    t = t.astimezone(timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


def parse_time(s: str | None) -> datetime | None:
    """Times written by `iso`, and the whole-second form older versions wrote."""
    if not s:
        return None
    fmt = "%Y-%m-%dT%H:%M:%S.%fZ" if "." in s else "%Y-%m-%dT%H:%M:%SZ"
    return datetime.strptime(s, fmt).replace(tzinfo=timezone.utc)


@dataclass(frozen=True)
class Counters:
    """`status.counters`: failed analyses in this rollout; inconclusive and error ones in a row."""

    failed: int = 0
    inconclusive: int = 0
    errors: int = 0

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Counters:
        d = d or {}
        return cls(int(d.get("failed") or 0), int(d.get("inconclusive") or 0), int(d.get("errors") or 0))

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class RolloutRecord:
    """`status.lastRollout`: how the latest rollout ended (`result` is a `Result`)."""

    version: str | None
    result: str
    reason: str = ""
    finishedAt: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RolloutRecord:
        return cls(d.get("version"), str(d.get("result") or ""), str(d.get("reason") or ""), d.get("finishedAt"))

    def to_dict(self) -> dict[str, Any]:
        return plain(dataclasses.asdict(self))


@dataclass(frozen=True)
class LastAnalysis:
    """`status.lastAnalysis`: the latest verdict the rollout counted (`outcome` is an
    `Outcome`); `since` starts the data it covers, absent when the method has no window."""

    time: str
    outcome: str
    message: str = ""
    checks: tuple[Mapping[str, Any], ...] = ()
    since: str | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> LastAnalysis:
        return cls(str(d.get("time") or ""), str(d.get("outcome") or ""), str(d.get("message") or ""),
                   tuple(d.get("checks") or ()), d.get("since"))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"time": self.time, "outcome": self.outcome, "message": self.message,
                             "checks": [dict(c) for c in self.checks]}
        if self.since is not None:
            d["since"] = self.since
        return plain(d)


@dataclass(frozen=True)
class Reward:
    """An A/B test's reward comparison over the whole test so far (`Observation.reward`,
    from `analyzer.rewards`). `outcome` is an `Outcome`: Pass means decisive enough to
    judge, winner or not; `winner` is "candidate", "baseline" or None. The numbers are
    absent when the comparison could not be made."""

    outcome: str
    message: str = ""
    winner: str | None = None
    confidence: float | None = None
    baselineRate: float | None = None
    candidateRate: float | None = None
    nBaseline: float | None = None
    nCandidate: float | None = None
    difference: float | None = None  # candidate - baseline
    lower: float | None = None
    upper: float | None = None
    pValue: float | None = None

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Self:
        names = {f.name for f in dataclasses.fields(cls)}
        known = {k: v for k, v in d.items() if k in names}
        return cls(**{**known, "outcome": str(d.get("outcome") or ""), "message": str(d.get("message") or "")})

    def to_dict(self) -> dict[str, Any]:
        """Every field, None kept: merged into the stored status, it clears the numbers of
        an earlier comparison that this one does not have."""
        return plain(dataclasses.asdict(self))


@dataclass(frozen=True)
class ABTest(Reward):
    """`status.abTest`: the latest `Reward`, when it was taken, and whether the verdict is
    frozen (a winner that waits for a person: promoteWinner false)."""

    time: str | None = None
    frozen: bool = False

    @classmethod
    def of(cls, reward: Reward, time: str, frozen: bool = False) -> ABTest:
        return cls(**{f.name: getattr(reward, f.name) for f in dataclasses.fields(Reward)}, time=time, frozen=frozen)


@dataclass(frozen=True)
class OutputBins:
    """`status.outputBins`: a regressor's bin edges when spec.model.output gives none,
    fixed at the rollout's start from `outputs` outputs the stable `version` served from
    `since` to `until`; both versions' counts are merged into them (analysis/output_bins.py)."""

    edges: tuple[float, ...]
    version: str
    outputs: int
    since: str
    until: str

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> OutputBins:
        return cls(tuple(float(e) for e in d.get("edges") or ()), str(d.get("version") or ""),
                   int(d.get("outputs") or 0), str(d.get("since") or ""), str(d.get("until") or ""))

    def to_dict(self) -> dict[str, Any]:
        return {"edges": list(self.edges), "version": self.version, "outputs": self.outputs, "since": self.since,
                "until": self.until}


@dataclass(frozen=True)
class CarriedEvidence:
    """`status.carriedEvidence`: the evidence of tests that restart with every step,
    carried into the next one (the error check's failure test, whose premise - a constant
    routing share - holds only within a step). `logE` maps a check's name to the sum of
    the log e-values of its earlier steps; `through` is the time of the latest look folded in.
    `strata` maps a check stratified by step (latency, outputs) to its earlier steps'
    summed (score, information) per key, which its test adds to the current step's.

    Why a product is valid: each step's e-value is a test supermartingale that starts
    at 1 with the step, given everything before it, so the product over steps is one for
    the whole rollout, and Ville's inequality bounds its crossing 1/alpha *ever* by alpha.
    The windows must not overlap, hence `through`: a look is folded once, at the first
    restart of the step clock after it, and the next window starts at that restart.
    """

    through: str
    logE: Mapping[str, float] = field(default_factory=dict)
    strata: Mapping[str, Mapping[str, tuple[float, float]]] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> CarriedEvidence:
        strata = {str(name): {str(k): (float(v[0]), float(v[1])) for k, v in (keys or {}).items()}
                  for name, keys in (d.get("strata") or {}).items()}
        return cls(str(d.get("through") or ""), {str(k): float(v) for k, v in (d.get("logE") or {}).items()}, strata)

    def to_dict(self) -> dict[str, Any]:
        return {"through": self.through, "logE": dict(self.logE),
                "strata": {name: {k: list(v) for k, v in keys.items()} for name, keys in self.strata.items()}}

    @classmethod
    def fold(cls, carried: CarriedEvidence | None, last: LastAnalysis | None) -> CarriedEvidence | None:
        """`carried` with the step evidence of `last` added, unless that look is folded already."""
        at = parse_time(last.time) if last else None
        through = parse_time(carried.through) if carried else None
        if last is None or at is None or (through is not None and at <= through):
            return carried
        steps = {str(c["name"]): float(c["step_log_e"]) for c in last.checks if c.get("step_log_e") is not None}
        strata = {str(c["name"]): c["step_strata"] for c in last.checks if c.get("step_strata")}
        if not steps and not strata:
            return carried
        total = dict(carried.logE) if carried else {}
        for name, log_e in steps.items():
            total[name] = total.get(name, 0.0) + log_e
        summed = {name: dict(keys) for name, keys in (carried.strata if carried else {}).items()}
        for name, keys in strata.items():
            into = summed.setdefault(name, {})
            for k, (score, information) in keys.items():
                s0, i0 = into.get(k, (0.0, 0.0))
                into[k] = (s0 + float(score), i0 + float(information))
        return cls(last.time, total, summed)


@dataclass(frozen=True)
class Status:
    """`status` of a ModelDeployment. Field names map to camelCase in the object."""

    phase: str = ""
    message: str = ""
    stableVersion: str | None = None
    stablePredictor: str | None = None
    stableModel: Mapping[str, Any] | None = None
    candidateVersion: str | None = None
    candidatePredictor: str | None = None
    candidateModel: Mapping[str, Any] | None = None
    # What Seldon routes to the candidate now; stepWeight is what the current step gives
    # it, which differs while the candidate is unready (it then gets 0 %).
    candidateWeight: int = 0
    stepWeight: int = 0
    candidateUnreadySince: str | None = None
    shadow: bool = False
    step: int = 0
    stepStartedAt: str | None = None
    # False from the moment a transition restarts the step's clock until the operator first
    # sees the step's routing in the SeldonDeployment; that observation stamps
    # stepStartedAt, so the step's time is the time users have its weight.
    stepObserved: bool = True
    nextActionAt: str | None = None
    rolloutStartedAt: str | None = None
    # When the candidate first got traffic (or mirroring) in this rollout: the first
    # stepStartedAt of it. The evidence that accumulates over the rollout starts here, not
    # at rolloutStartedAt: before it only the baseline serves (while the candidate's pods
    # start, which can take minutes and load the node), and a comparison of the two
    # versions over different times measures the times, not the versions.
    trafficStartedAt: str | None = None
    pauseReason: str | None = None
    pausedFrom: str | None = None
    pendingResult: Mapping[str, str] | None = None
    counters: Counters = field(default_factory=Counters)
    lastAnalysis: LastAnalysis | None = None
    lastRollout: RolloutRecord | None = None
    abTest: ABTest | None = None
    outputBins: OutputBins | None = None
    carriedEvidence: CarriedEvidence | None = None
    conditions: tuple[Mapping[str, Any], ...] = ()
    observedGeneration: int | None = None
    # Every transition, oldest first: {seq, time, type, reason, message, version, stable}. `seq` names the
    # transition's Event, so a restarted operator can post what it missed, once.
    history: tuple[Mapping[str, Any], ...] = ()

    def __post_init__(self) -> None:
        # The API's dicts are accepted too (from_dict, and callers building a status by hand).
        if not isinstance(self.counters, Counters):
            object.__setattr__(self, "counters", Counters.from_dict(self.counters))
        if self.lastRollout is not None and not isinstance(self.lastRollout, RolloutRecord):
            object.__setattr__(self, "lastRollout", RolloutRecord.from_dict(self.lastRollout))
        if self.lastAnalysis is not None and not isinstance(self.lastAnalysis, LastAnalysis):
            object.__setattr__(self, "lastAnalysis", LastAnalysis.from_dict(self.lastAnalysis))
        if self.abTest is not None and not isinstance(self.abTest, ABTest):
            object.__setattr__(self, "abTest", ABTest.from_dict(self.abTest))
        if self.outputBins is not None and not isinstance(self.outputBins, OutputBins):
            object.__setattr__(self, "outputBins", OutputBins.from_dict(self.outputBins))
        if self.carriedEvidence is not None and not isinstance(self.carriedEvidence, CarriedEvidence):
            object.__setattr__(self, "carriedEvidence", CarriedEvidence.from_dict(self.carriedEvidence))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> Status:
        names = {f.name for f in dataclasses.fields(cls)}
        kwargs = {k: v for k, v in (d or {}).items() if k in names and v is not None}
        for key in ("conditions", "history"):
            if key in kwargs:
                kwargs[key] = tuple(kwargs[key])
        if "stepWeight" not in kwargs and kwargs.get("candidateWeight"):
            kwargs["stepWeight"] = kwargs["candidateWeight"]  # status written before stepWeight existed
        return cls(**kwargs)

    def to_dict(self) -> dict[str, Any]:
        """Every field, with None kept, so a merge patch also clears what was unset."""
        d = dataclasses.asdict(self)
        d["conditions"] = [dict(c) for c in self.conditions]
        d["history"] = [dict(h) for h in self.history]
        d["lastAnalysis"] = self.lastAnalysis.to_dict() if self.lastAnalysis else None
        d["outputBins"] = self.outputBins.to_dict() if self.outputBins else None
        d["carriedEvidence"] = self.carriedEvidence.to_dict() if self.carriedEvidence else None
        return plain(d)


def plain(value: Any) -> Any:
    """`value` with enum members as their plain strings: what JSON and YAML writers take."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    return value


@dataclass(frozen=True)
class Observation:
    """What the shell saw this tick."""

    routing: RoutingObservation
    # True when the router's object (the SeldonDeployment) already matches the routing of the *input* status:
    # two-phase moves (promote, roll back) only take their second step once it does.
    applied: bool = False
    analysis: AnalysisResult | None = None
    # A/B tests: the latest reward comparison (analysis ticks of an A/B test only).
    reward: Reward | None = None
    command: str | None = None
    generation: int | None = None
    # A regressor's output bins, fixed this tick from the stable version's outputs
    # (recorded once per rollout, in status.outputBins).
    output_bins: OutputBins | None = None


@dataclass(frozen=True)
class Event:
    type: str  # Normal | Warning
    reason: str
    message: str
    # The status.history entry this event records; None for analysis verdicts, which
    # are summarised in status.lastAnalysis instead.
    seq: int | None = None


@dataclass(frozen=True)
class Decision:
    status: Status
    events: tuple[Event, ...]
    predictors: tuple[Predictor, ...]


def _model(d: Mapping[str, Any]) -> ModelSpec:
    return ModelSpec.from_dict(d)


@dataclass(frozen=True)
class Traffic:
    """The traffic shares that a status calls for, in percent. With `shadow` the
    candidate receives a mirrored copy of all traffic and serves nobody."""

    stable: int
    candidate: int | None = None  # None: no candidate predictor
    shadow: bool = False


def traffic(status: Status) -> Traffic | None:
    """The one weight rule: what `predictors` routes, and what the plugin shows. None
    before there is a stable predictor."""
    if not status.stablePredictor:
        return None
    if not status.candidatePredictor:
        return Traffic(100)
    if status.phase == PROMOTING:
        return Traffic(0, 100)
    if status.phase == ROLLING_BACK:
        return Traffic(100, 0)
    if status.shadow and status.stepStartedAt and not status.candidateUnreadySince:
        # Mirroring starts once the candidate is ready (stepStartedAt), like any traffic.
        return Traffic(100, 100, shadow=True)
    return Traffic(100 - status.candidateWeight, status.candidateWeight)


def predictors(status: Status) -> tuple[Predictor, ...]:
    """The predictors that `status` calls for (the router renders them)."""
    shares = traffic(status)
    if shares is None or not status.stablePredictor or not status.stableModel:
        return ()
    stable = _model(status.stableModel)
    if shares.candidate is None or not status.candidatePredictor or not status.candidateModel:
        return (Predictor(status.stablePredictor, stable.version, stable, 100),)
    cand = _model(status.candidateModel)
    return (
        Predictor(status.stablePredictor, stable.version, stable, shares.stable),
        Predictor(status.candidatePredictor, cand.version, cand, shares.candidate, shadow=shares.shadow),
    )
