"""The ModelDeployment spec as typed values, parsed and validated once.

The CRD's OpenAPI schema and CEL rules reject bad objects at apply time and fill in the
defaults; this parser applies the same rules (tests/integration/test_crd_parser_agreement.py
holds them equal, `schema` holds the defaults both use) plus the ones only the operator
can know (the custom-query policy). It exists so the core never handles raw dicts, and so
an object that bypassed the CRD (an old CRD, a direct etcd write) becomes InvalidSpec with
a message naming the field, before any traffic moves, instead of failing mid-rollout.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .schema import (
    DEFAULT_IMAGE,
    DEFAULTS,
    DNS_LABEL,
    IMAGE,
    LABEL_VALUE,
    URI,
    SpecError,
    parse_duration,
    positive_duration,
)
from .template import OutputSpec, PredictorTemplate, parse_output, parse_template

if TYPE_CHECKING:  # imported in parse(): the analysis package needs numpy and scipy, the plugin must not
    from .analysis.config import AnalysisSpec

__all__ = ["DEFAULTS", "DEFAULT_IMAGE", "DEFAULT_STEPS", "ModelSpec", "Strategy", "Spec", "SpecError",
           "parse", "parse_duration", "parse_object"]

DEFAULT_STEPS: tuple[int, ...] = tuple(DEFAULTS["strategy.canary.steps"])
SHA256 = re.compile(r"[a-f0-9]{64}")
MAX_NAME = 40  # Seldon appends predictor and container names to metadata.name and model.name

@dataclass(frozen=True)
class ModelSpec:
    name: str
    version: str
    uri: str | None  # None only when spec.predictor.versionIn puts the version elsewhere
    sha256: str | None = None
    image: str = DEFAULT_IMAGE
    replicas: int = DEFAULTS["model.replicas"]
    # None: modeldeploy's own server. Part of the model so status keeps each version's.
    predictor: PredictorTemplate | None = None
    output: OutputSpec = field(default_factory=OutputSpec)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ModelSpec:
        """From `dataclasses.asdict` as kept in status (stableModel, candidateModel)."""
        kw = dict(d)
        if kw.get("predictor") is not None:
            t = dict(kw["predictor"])
            kw["predictor"] = PredictorTemplate(**{**t, "component_specs": tuple(t.get("component_specs") or ())})
        if kw.get("output") is not None:
            # JSON keeps 100.0 as 100: floats again, or the monitor's parameter would change
            # (and its pods restart) on the first read back from status.
            kw["output"] = OutputSpec(kind=kw["output"]["kind"], bins=tuple(float(b) for b in kw["output"].get("bins") or ()))
        else:
            kw.pop("output", None)
        return cls(**kw)


def _seconds(key: str) -> float:
    return parse_duration(DEFAULTS[key], key)


@dataclass(frozen=True)
class Strategy:
    type: str = DEFAULTS["strategy.type"]
    steps: tuple[int, ...] = DEFAULT_STEPS
    step_duration: float = _seconds("strategy.canary.stepDuration")
    shadow_duration: float | None = None
    # How long a new predictor may take to become ready before the rollout is abandoned.
    progress_deadline: float = _seconds("strategy.progressDeadline")
    # How long a candidate with traffic may stay unready before it is rolled back.
    readiness_grace: float = _seconds("strategy.readinessGrace")
    ab_split: int = DEFAULTS["strategy.abTest.split"]
    ab_min_samples: int = DEFAULTS["strategy.abTest.minSamples"]
    ab_max_duration: float = _seconds("strategy.abTest.maxDuration")
    ab_promote_winner: bool = DEFAULTS["strategy.abTest.promoteWinner"]
    ab_confidence: float = DEFAULTS["strategy.abTest.confidence"]


@dataclass(frozen=True)
class Spec:
    model: ModelSpec
    strategy: Strategy
    analysis: AnalysisSpec  # interval, min_samples, failure_limit, ..., has_metrics, metrics
    paused: bool = False


class _Fields:
    """Reads one mapping of the spec; every error names the full path of the field."""

    def __init__(self, d: Any, where: str, allowed: tuple[str, ...] | None = None) -> None:
        if d is None:
            d = {}
        if not isinstance(d, Mapping):
            raise SpecError(f"{where}: must be a mapping, got {type(d).__name__}")
        if allowed is not None and set(d) - set(allowed):
            raise SpecError(f"{where}: unknown field(s) {', '.join(sorted(set(d) - set(allowed)))}; "
                            f"known: {', '.join(allowed)}")
        self.d, self.where = d, where

    def path(self, key: str) -> str:
        return f"{self.where}.{key}"

    def raw(self, key: str, default_key: str | None = None) -> Any:
        v = self.d.get(key)
        return DEFAULTS[default_key] if v is None and default_key else v

    def string(self, key: str, pattern: re.Pattern[str], max_len: int, hint: str, required: bool = False) -> str | None:
        v = self.d.get(key)
        if v is None:
            if required:
                raise SpecError(f"{self.path(key)} is required ({hint})")
            return None
        if not isinstance(v, str) or len(v) > max_len or not pattern.fullmatch(v):
            shown = repr(v) if not isinstance(v, str) or len(v) <= 80 else repr(v[:77] + "...")
            raise SpecError(f"{self.path(key)}: {shown} {hint}" + (f", at most {max_len} characters"
                                                                  if isinstance(v, str) and len(v) > max_len else ""))
        return v

    def integer(self, key: str, default_key: str, lo: int, hi: int) -> int:
        v = self.raw(key, default_key)
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise SpecError(f"{self.path(key)}: {v!r} must be a whole number from {lo} to {hi}")
        return v

    def duration(self, key: str, default_key: str) -> float:
        return positive_duration(self.raw(key, default_key), self.path(key))


def _model(m: _Fields, raw_predictor: Any) -> ModelSpec:
    name = m.string("name", DNS_LABEL, MAX_NAME, "must be a DNS label: lowercase letters, digits and '-', "
                    "starting and ending with a letter or digit (e.g. digits)", required=True)
    predictor = parse_template(raw_predictor, name or "")
    uri_required = predictor is None or predictor.version_field == "modelUri"
    for key in ("sha256", "image"):
        if predictor is not None and m.d.get(key) is not None:
            raise SpecError(f"{m.path(key)}: belongs to modeldeploy's own model server; with spec.predictor "
                            "set images in componentSpecs (and checksums in your server), or remove spec.predictor")
    return ModelSpec(
        name=name,  # type: ignore[arg-type]
        version=m.string("version", LABEL_VALUE, 63, "must be a valid label value: letters, digits, '-', '_' or '.', "
                         "starting and ending with a letter or digit (e.g. 2.0.0)", required=True),  # type: ignore[arg-type]
        uri=m.string("uri", URI, 2048, "must be a URI with scheme file://, s3://, gs://, pvc:// or https:// and no "
                     "spaces or non-ASCII characters (e.g. s3://models/digits/2.0.0)"
                     + ("" if predictor is None else "; it is the version node's modelUri (spec.predictor.versionIn)"),
                     required=uri_required),
        sha256=m.string("sha256", SHA256, 64, "must be 64 lowercase hexadecimal characters (the output of sha256sum)"),
        image=m.string("image", IMAGE, 512, "must be an image reference such as registry.example.com/ml/model-server:0.1.0")
        or DEFAULT_IMAGE,
        replicas=m.integer("replicas", "model.replicas", 1, 100),
        predictor=predictor,
        output=parse_output(m.d.get("output")),
    )


def _steps(c: _Fields) -> tuple[int, ...]:
    raw = c.raw("steps", "strategy.canary.steps")
    where = c.path("steps")
    if not isinstance(raw, (list, tuple)) or not 1 <= len(raw) <= 20:
        raise SpecError(f"{where}: must be a list of 1 to 20 weights, e.g. [10, 25, 50, 100]")
    for i, w in enumerate(raw):
        if not isinstance(w, int) or isinstance(w, bool) or not 1 <= w <= 100:
            raise SpecError(f"{where}[{i}]: {w!r} must be a whole number from 1 to 100")
    steps = tuple(raw)
    if steps[-1] != 100:
        raise SpecError(f"{where}: the last step must be 100 (the candidate takes all traffic), e.g. [10, 25, 50, 100]")
    if any(a >= b for a, b in zip(steps, steps[1:])):
        raise SpecError(f"{where}: {list(steps)} must be strictly ascending, e.g. [10, 25, 50, 100]")
    if len(steps) == 1:
        raise SpecError(f"{where}: a lone step would give the candidate all traffic with no analysis: write at "
                        "least two steps, e.g. [50, 100], or promote at once with the annotation "
                        "modeldeploy.io/command=promote")
    return steps


def _strategy(s: _Fields) -> Strategy:
    kind = s.raw("type", "strategy.type")
    if kind not in ("Canary", "ABTest"):
        raise SpecError(f"{s.path('type')}: {kind!r} must be Canary or ABTest")
    if "canary" in s.d and "abTest" in s.d:
        raise SpecError(f"{s.where}: set either strategy.canary or strategy.abTest, not both")
    if kind == "Canary" and "abTest" in s.d:
        raise SpecError(f"{s.where}: strategy.abTest is set but strategy.type is Canary: set type: ABTest, or remove abTest")
    if kind == "ABTest" and "canary" in s.d:
        raise SpecError(f"{s.where}: strategy.canary is set but strategy.type is ABTest: remove canary, or set type: Canary")
    canary = _Fields(s.d.get("canary"), s.path("canary"), ("steps", "stepDuration"))
    ab = _Fields(s.d.get("abTest"), s.path("abTest"), ("split", "minSamples", "maxDuration", "promoteWinner", "confidence"))
    shadow = s.d.get("shadow")
    confidence = ab.raw("confidence", "strategy.abTest.confidence")
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0.5 <= confidence <= 0.9999:
        raise SpecError(f"{ab.path('confidence')}: {confidence!r} must be at least 0.5 and at most 0.9999 (e.g. 0.95)")
    promote = ab.raw("promoteWinner", "strategy.abTest.promoteWinner")
    if not isinstance(promote, bool):
        raise SpecError(f"{ab.path('promoteWinner')}: {promote!r} must be true or false")
    return Strategy(
        type=kind,
        steps=_steps(canary),
        step_duration=canary.duration("stepDuration", "strategy.canary.stepDuration"),
        shadow_duration=None if shadow is None else _Fields(shadow, s.path("shadow"), ("duration",)).duration(
            "duration", "strategy.shadow.duration"),
        progress_deadline=s.duration("progressDeadline", "strategy.progressDeadline"),
        readiness_grace=s.duration("readinessGrace", "strategy.readinessGrace"),
        ab_split=ab.integer("split", "strategy.abTest.split", 1, 99),
        ab_min_samples=ab.integer("minSamples", "strategy.abTest.minSamples", 1, 1_000_000_000),
        ab_max_duration=ab.duration("maxDuration", "strategy.abTest.maxDuration"),
        ab_promote_winner=promote,
        ab_confidence=float(confidence),
    )


def parse(spec: Mapping[str, Any], *, allow_custom_queries: bool = True) -> Spec:
    """Typed, validated spec from ``spec`` as stored (defaults filled in where missing).

    `allow_custom_queries` is the operator's policy (chart value
    analysis.allowCustomQueries): False refuses per-object PromQL, which could read
    other namespaces' series through the operator's Prometheus credentials.
    SpecError (AnalysisConfigError is one) names the field and the fix.
    """
    from .analysis.config import parse_analysis

    # Other top-level fields (e.g. notifications) belong to other parts of the operator.
    top = _Fields(spec, "spec")
    paused = top.raw("paused", "paused")
    if not isinstance(paused, bool):
        raise SpecError(f"spec.paused: {paused!r} must be true or false")
    return Spec(
        model=_model(_Fields(top.d.get("model"), "spec.model",
                             ("name", "version", "uri", "sha256", "image", "replicas", "output")), top.d.get("predictor")),
        strategy=_strategy(_Fields(top.d.get("strategy"), "spec.strategy",
                                   ("type", "progressDeadline", "readinessGrace", "shadow", "canary", "abTest"))),
        analysis=parse_analysis(top.d.get("analysis"), allow_custom_queries=allow_custom_queries),
        paused=paused,
    )


def parse_object(mdep: Mapping[str, Any], *, allow_custom_queries: bool = True) -> Spec:
    """`parse` of a whole ModelDeployment, checking metadata.name as the CRD does."""
    name = (mdep.get("metadata") or {}).get("name")
    if not isinstance(name, str) or len(name) > MAX_NAME or not DNS_LABEL.fullmatch(name):
        raise SpecError(f"metadata.name: {name!r} must be a DNS-1123 label of at most {MAX_NAME} characters: lowercase "
                        "letters, digits and '-', no dots (Seldon builds Service names from it), e.g. digits-classifier")
    return parse(mdep.get("spec") or {}, allow_custom_queries=allow_custom_queries)
