"""Defaults, duration grammar and shared limits of ModelDeployment fields, defined once.

The parser (`spec`, `analysis.config`) takes every default from `DEFAULTS`, and
tests/integration/test_crd_parser_agreement.py asserts that the CRD's ``default:`` values
equal it and that the CRD and the parser accept and reject the same boundary values, so
the two cannot drift apart. No imports from the rest of the package: the plugin and the
analysis package both use it.
"""

from __future__ import annotations

import re
from typing import Any


class SpecError(ValueError):
    """A spec field is invalid; the message names the field and the fix."""


#: Every ``default:`` of the CRD's spec, by path below ``spec`` (``[]`` marks a list item).
DEFAULTS: dict[str, Any] = {
    "model.replicas": 1,
    "predictor.protocol": "seldon",
    "predictor.versionIn": {},
    "predictor.versionIn.field": "modelUri",
    "strategy": {},
    "strategy.type": "Canary",
    "strategy.progressDeadline": "10m",
    "strategy.readinessGrace": "30s",
    "strategy.shadow.duration": "2m",
    "strategy.canary.steps": [10, 25, 50, 100],
    "strategy.canary.stepDuration": "1m",
    "strategy.abTest.split": 50,
    "strategy.abTest.minSamples": 1000,
    "strategy.abTest.maxDuration": "30m",
    "strategy.abTest.promoteWinner": True,
    "strategy.abTest.confidence": 0.95,
    "analysis": {},
    "analysis.method": "sequential",
    "analysis.interval": "30s",
    "analysis.minSamples": 100,
    "analysis.failureLimit": 2,
    "analysis.inconclusiveLimit": 6,
    "analysis.errorLimit": 4,
    "analysis.metrics[].latency.quantile": 0.99,
    "analysis.metrics[].latency.significance": 0.0033,
    "analysis.metrics[].errorRate.max": 0.01,
    "analysis.metrics[].errorRate.significance": 0.0033,
    "analysis.metrics[].outputDistribution.significance": 0.0033,
    "analysis.metrics[].outputDistribution.test": "chiSquare",
    "paused": False,
}

#: Not a CRD default (the operator's configured image wins): used when neither is set.
DEFAULT_IMAGE = "modeldeploy/model-server:0.1.0"
#: maxJensenShannon when neither it nor maxPSI is set (conditional, so not a CRD default).
DEFAULT_MAX_JENSEN_SHANNON = 0.05
#: The largest maxJensenShannon: the largest distance there is, sqrt(ln 2) = 0.83255 (natural
#: log, as scipy), rounded down to the 4 places the CRD and its message state.
MAX_JENSEN_SHANNON = 0.8325

#: Durations: at least a second (shorter is below the operator's tick), at most 30 days
#: (CEL's duration() and Go's time.Duration overflow far beyond that).
MIN_DURATION_S = 1.0
MAX_DURATION_S = 720 * 3600.0
DURATION_MAX_LENGTH = 32

_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)(ms|s|m|h))+$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# Kubernetes' grammars (apimachinery validation): label values and DNS-1123 labels.
LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Go-style image reference (distribution/reference, simplified), anchored at both ends.
IMAGE = re.compile(
    r"([a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?(\.[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)*(:[0-9]+)?/)?"
    r"[a-z0-9]+([._-]+[a-z0-9]+)*(/[a-z0-9]+([._-]+[a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?")
URI = re.compile(r"(file|s3|gs|pvc|https?)://[!-~]+")


def parse_duration(value: Any, field_name: str) -> float:
    """Seconds in a Go-style duration ("30s", "1m30s", "250ms", "2h"); no range check."""
    if not isinstance(value, str) or not _DURATION.fullmatch(value):
        raise SpecError(f"{field_name}: {value!r} is not a duration; write it like 30s, 1m or 1h30m")
    return sum(float(n) * _UNIT[u] for n, u in _DURATION_PART.findall(value))


def positive_duration(value: Any, field_name: str) -> float:
    """A duration within [MIN_DURATION_S, MAX_DURATION_S]; the message states the range."""
    if isinstance(value, str) and len(value) > DURATION_MAX_LENGTH:
        raise SpecError(f"{field_name}: {value[:40]!r}... is longer than {DURATION_MAX_LENGTH} characters")
    seconds = parse_duration(value, field_name)
    if not MIN_DURATION_S <= seconds <= MAX_DURATION_S:
        raise SpecError(f"{field_name}: {value!r} is out of range; it must be at least 1s and at most 720h "
                        "(e.g. 30s, 5m)")
    return seconds
