"""Routers: what turns the rollout's decided predictors into a data plane's objects.

A router is one module implementing `Router` plus one line in `ROUTERS`. The core
(`rollout`, `state`, `transitions`) works on `routing.Predictor` and
`routing.Observation` only; the shell (`handlers`, `kube`) asks the configured router to
render, compare and observe, and watches the resource it names.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from ..routing import MetricSeries, Observation, Predictor, Resource
from .seldon_v1 import SeldonV1


class Router(Protocol):
    """One traffic router (Seldon Core v1 today; Seldon v2 or KServe would be others)."""

    #: The object it owns per ModelDeployment (same name and namespace).
    resource: Resource
    #: The metrics its data plane exports, for the provider's default queries.
    series: MetricSeries

    def render(self, name: str, namespace: str, owner: Mapping[str, Any],
               predictors: Sequence[Predictor]) -> dict[str, Any]:
        """The whole desired object for these predictors, owned by the ModelDeployment."""
        ...

    def in_sync(self, actual: Mapping[str, Any] | None, desired: Mapping[str, Any]) -> bool:
        """Whether the cluster's object already routes and serves as `desired` does."""
        ...

    def observe(self, actual: Mapping[str, Any] | None) -> Observation:
        """Per-predictor readiness and failures from the object's status."""
        ...


ROUTERS: dict[str, Callable[[], Router]] = {
    "seldon-v1": SeldonV1,
}
DEFAULT = "seldon-v1"


def get(name: str = DEFAULT) -> Router:
    """The router registered as `name`; ValueError names the known ones."""
    try:
        return ROUTERS[name]()
    except KeyError:
        raise ValueError(f"MODELDEPLOY_ROUTER: unknown router {name!r}; known: {', '.join(sorted(ROUTERS))}") from None


def from_env(env: Mapping[str, str] = os.environ) -> Router:
    """The router named by MODELDEPLOY_ROUTER (default seldon-v1)."""
    return get(env.get("MODELDEPLOY_ROUTER") or DEFAULT)
