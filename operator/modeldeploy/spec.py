"""The ModelDeployment spec as typed values.

The CRD's OpenAPI schema and CEL rules reject bad objects at apply time and fill in the
defaults, so parsing here is a *second* line: it exists so that the core never handles raw
dicts, and so an object that somehow bypassed validation (an old CRD, a direct etcd
write) fails with a clear message instead of a KeyError deep in the state machine.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

DEFAULT_STEPS = (10, 25, 50, 100)
DEFAULT_IMAGE = "modeldeploy/model-server:0.1.0"

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")


class SpecError(ValueError):
    """A spec field is invalid; the message names the field and the fix."""


def parse_duration(value: str, field_name: str) -> float:
    """Seconds in a Go-style duration ("30s", "1m30s", "250ms", "2h")."""
    if not isinstance(value, str) or not _DURATION.match(value):
        raise SpecError(f"{field_name}: {value!r} is not a duration; write it like 30s, 1m or 1h30m")
    return sum(float(n) * _UNIT[u] for n, u in _DURATION_PART.findall(value))


@dataclass(frozen=True)
class ModelSpec:
    name: str
    version: str
    uri: str
    sha256: str | None = None
    image: str = DEFAULT_IMAGE
    replicas: int = 1


@dataclass(frozen=True)
class Strategy:
    type: str = "Canary"
    steps: tuple[int, ...] = DEFAULT_STEPS
    step_duration: float = 60.0
    shadow_duration: float | None = None
    # How long a new predictor may take to become ready before the rollout is abandoned.
    progress_deadline: float = 600.0
    # How long a candidate that had traffic may stay unready (at 0 %) before it is rolled back.
    readiness_grace: float = 30.0
    ab_split: int = 50
    ab_min_samples: int = 1000
    ab_max_duration: float = 1800.0
    ab_promote_winner: bool = True
    ab_confidence: float = 0.95


@dataclass(frozen=True)
class AnalysisConfig:
    interval: float = 30.0
    min_samples: int = 100
    failure_limit: int = 2
    inconclusive_limit: int = 6
    error_limit: int = 4
    # The raw `spec.analysis` mapping, handed to the analysis package as is.
    raw: Mapping[str, Any] = field(default_factory=dict)

    @property
    def has_metrics(self) -> bool:
        return bool(self.raw.get("metrics"))


@dataclass(frozen=True)
class Spec:
    model: ModelSpec
    strategy: Strategy
    analysis: AnalysisConfig
    paused: bool = False


def _get(d: Mapping[str, Any], key: str, default: Any = None) -> Any:
    v = d.get(key) if isinstance(d, Mapping) else None
    return default if v is None else v


def _positive_int(value: Any, field_name: str, minimum: int = 1) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise SpecError(f"{field_name}: {value!r} must be an integer >= {minimum}")
    return value


def parse(spec: Mapping[str, Any]) -> Spec:
    """Typed spec from `spec` as stored (defaults already applied by the API server)."""
    m = _get(spec, "model", {})
    for key in ("name", "version", "uri"):
        if not isinstance(m.get(key), str) or not m.get(key):
            raise SpecError(f"spec.model.{key} is required")
    if not LABEL_VALUE.match(m["version"]):
        raise SpecError(
            f"spec.model.version: {m['version']!r} must be a valid label value "
            "(at most 63 letters, digits, '-', '_' or '.', starting and ending alphanumeric)"
        )
    model = ModelSpec(
        name=m["name"], version=m["version"], uri=m["uri"], sha256=m.get("sha256"),
        image=_get(m, "image", DEFAULT_IMAGE), replicas=_positive_int(_get(m, "replicas", 1), "spec.model.replicas"),
    )

    s = _get(spec, "strategy", {})
    kind = _get(s, "type", "Canary")
    if kind not in ("Canary", "ABTest"):
        raise SpecError(f"spec.strategy.type: {kind!r} must be Canary or ABTest")
    canary = _get(s, "canary", {})
    steps = tuple(_get(canary, "steps", DEFAULT_STEPS))
    if not steps or steps[-1] != 100 or any(a >= b for a, b in zip((0,) + steps, steps)):
        raise SpecError(f"spec.strategy.canary.steps: {list(steps)} must be strictly ascending weights in 1..100 ending at 100")
    shadow = _get(s, "shadow")
    ab = _get(s, "abTest", {})
    strategy = Strategy(
        type=kind,
        steps=steps,
        step_duration=parse_duration(_get(canary, "stepDuration", "1m"), "spec.strategy.canary.stepDuration"),
        shadow_duration=parse_duration(_get(shadow, "duration", "2m"), "spec.strategy.shadow.duration") if shadow else None,
        progress_deadline=parse_duration(_get(s, "progressDeadline", "10m"), "spec.strategy.progressDeadline"),
        ab_split=_get(ab, "split", 50),
        ab_min_samples=_get(ab, "minSamples", 1000),
        ab_max_duration=parse_duration(_get(ab, "maxDuration", "30m"), "spec.strategy.abTest.maxDuration"),
        ab_promote_winner=bool(_get(ab, "promoteWinner", True)),
        ab_confidence=float(_get(ab, "confidence", 0.95)),
    )

    a = _get(spec, "analysis", {})
    analysis = AnalysisConfig(
        interval=parse_duration(_get(a, "interval", "30s"), "spec.analysis.interval"),
        min_samples=_positive_int(_get(a, "minSamples", 100), "spec.analysis.minSamples"),
        failure_limit=_positive_int(_get(a, "failureLimit", 2), "spec.analysis.failureLimit"),
        inconclusive_limit=_positive_int(_get(a, "inconclusiveLimit", 6), "spec.analysis.inconclusiveLimit"),
        error_limit=_positive_int(_get(a, "errorLimit", 4), "spec.analysis.errorLimit"),
        raw=dict(a) if isinstance(a, Mapping) else {},
    )
    return Spec(model=model, strategy=strategy, analysis=analysis, paused=bool(_get(spec, "paused", False)))
