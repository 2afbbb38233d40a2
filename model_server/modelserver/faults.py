"""Fault injection for rollout experiments: added latency, errors, skewed outputs.

Off unless configured. The same keys are read from the card's `faults` object and
from Seldon parameters (which win), so an experiment can either ship a faulty artifact
(`train` writes `slow` and `skewed`) or turn a fault on for one deployment only.

Skew is a bias added to the logits of some classes, not a random relabelling: the
model stays deterministic (the same image always gets the same answer), which is what
a model trained on skewed data looks like, and feedback can recompute the prediction.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Any

import torch

KEYS = ("latency_ms", "latency_jitter_ms", "error_rate", "skew_classes", "skew_logit_bias", "fault_seed")


class FaultConfigError(ValueError):
    pass


@dataclass(frozen=True)
class FaultConfig:
    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0  # uniform in [0, jitter) on top of latency_ms
    error_rate: float = 0.0  # probability that a prediction fails with HTTP 500
    skew_classes: tuple[str, ...] = ()
    skew_logit_bias: float = 0.0  # added to the logits of skew_classes
    fault_seed: int | None = None  # None: a fresh sequence in every worker

    @property
    def active(self) -> bool:
        return bool(
            self.latency_ms or self.latency_jitter_ms or self.error_rate or (self.skew_classes and self.skew_logit_bias)
        )

    def describe(self) -> dict[str, Any]:
        """The non-default settings, for health output and tags."""
        return {
            k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items() if v not in (0.0, (), None)
        }


def _number(key: str, value: Any, low: float, high: float) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise FaultConfigError(f"fault {key}={value!r} is not a number") from None
    if not low <= x <= high:
        raise FaultConfigError(f"fault {key}={x} is out of range [{low}, {high}]")
    return x


def parse_faults(*layers: dict[str, Any]) -> FaultConfig:
    """Merge settings, later layers winning; `None` values mean "not set"."""
    merged: dict[str, Any] = {}
    for layer in layers:
        unknown = sorted(set(layer) - set(KEYS))
        if unknown:
            raise FaultConfigError(f"unknown fault setting(s) {', '.join(unknown)}; known: {', '.join(KEYS)}")
        merged.update({k: v for k, v in layer.items() if v is not None})
    classes = merged.get("skew_classes", ())
    if isinstance(classes, str):  # a Seldon STRING parameter: "3,8"
        classes = [c.strip() for c in classes.split(",") if c.strip()]
    if not isinstance(classes, (list, tuple)) or not all(isinstance(c, str) for c in classes):
        raise FaultConfigError(f"fault skew_classes={classes!r} must be a list of labels")
    seed = merged.get("fault_seed")
    return FaultConfig(
        # Bounded so a typo cannot park a worker past gunicorn's timeout forever.
        latency_ms=_number("latency_ms", merged.get("latency_ms", 0), 0, 60_000),
        latency_jitter_ms=_number("latency_jitter_ms", merged.get("latency_jitter_ms", 0), 0, 60_000),
        error_rate=_number("error_rate", merged.get("error_rate", 0), 0, 1),
        skew_classes=tuple(classes),
        skew_logit_bias=_number("skew_logit_bias", merged.get("skew_logit_bias", 0), -100, 100),
        fault_seed=None if seed is None else int(_number("fault_seed", seed, 0, 2**63)),
    )


class FaultInjector:
    """Applies one `FaultConfig` to predictions of a model with the given labels."""

    def __init__(self, config: FaultConfig, labels: tuple[str, ...]) -> None:
        missing = [c for c in config.skew_classes if c not in labels]
        if missing:
            raise FaultConfigError(f"fault skew_classes {missing} are not labels of this model {list(labels)}")
        self.config = config
        self._rng = random.Random(config.fault_seed)
        self._bias: torch.Tensor | None = None
        if config.skew_classes and config.skew_logit_bias:
            bias = torch.zeros(len(labels))
            for c in config.skew_classes:
                bias[labels.index(c)] = config.skew_logit_bias
            self._bias = bias

    def delay(self) -> None:
        ms = self.config.latency_ms
        if self.config.latency_jitter_ms:
            ms += self._rng.uniform(0, self.config.latency_jitter_ms)
        if ms > 0:
            time.sleep(ms / 1000.0)

    def should_fail(self) -> bool:
        return self.config.error_rate > 0 and self._rng.random() < self.config.error_rate

    def skew(self, logits: torch.Tensor) -> torch.Tensor:
        return logits if self._bias is None else logits + self._bias
