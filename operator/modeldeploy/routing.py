"""The routing vocabulary the rollout decides in, naming no router.

The rollout decides *predictors* (a model version and its share of traffic, or a
mirror) and reads back an `Observation` (which of them are ready, which failed). A
router (`modeldeploy.routers`) turns predictors into the objects its data plane runs,
and what that data plane reports back into an Observation.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from .spec import ModelSpec


def predictor_name(version: str, taken: str | None = None) -> str:
    """A DNS-1123 label for a version ("2.0.0" -> "v2-0-0"), distinct from `taken`.

    Versions are label values ([A-Za-z0-9_.-]), which predictor names are not, so two
    versions can map to one name ("1.0" and "1-0"); when the other live predictor already
    has the name, this one gets a hash suffix.
    """
    base = ("v" + re.sub(r"[^a-z0-9]+", "-", version.lower()).strip("-"))[:40].rstrip("-")
    if base != taken:
        return base
    return f"{base[:33]}-{hashlib.sha256(version.encode()).hexdigest()[:6]}"


@dataclass(frozen=True)
class Predictor:
    """One version's predictor as the rollout wants it."""

    name: str
    version: str
    model: ModelSpec
    traffic: int
    shadow: bool = False


@dataclass(frozen=True)
class Observation:
    """What the router reports about the routed object, per predictor.

    `available` maps each predictor with status entries to (available, replicas) summed
    over its workloads, for messages; `kind` names the routed object in them.
    """

    exists: bool
    state: str = ""
    description: str = ""
    ready: frozenset[str] = field(default_factory=frozenset)
    failed: Mapping[str, str] = field(default_factory=dict)
    available: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    # What the rollout's messages call the object ("the SeldonDeployment reports it ready"):
    # the router's `resource.kind`, so the core's words name no data plane.
    kind: str = "routed object"

    def is_ready(self, predictor: str) -> bool:
        return predictor in self.ready

    def failure(self, predictor: str) -> str | None:
        return self.failed.get(predictor)

    def serves(self, predictor: str) -> bool:
        """At least one replica available: requests routed to it can be answered."""
        return self.available.get(predictor, (0, 0))[0] > 0


@dataclass(frozen=True)
class Resource:
    """The Kubernetes resource a router owns: one object per ModelDeployment, of the same
    name and namespace, owned by it."""

    group: str
    version: str
    plural: str
    kind: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}"


@dataclass(frozen=True)
class MetricSeries:
    """The metrics a router's data plane exports per predictor, from which a metric
    provider builds its default queries.

    `*_filter` are label matchers added to a series' selector; `service_name` is the
    Kubernetes Service that carries one predictor's share, with `{{deployment}}` and
    `{{predictor}}` placeholders. `feedback_counter` and `reward_counter` are the A/B
    test's pair: they must count the same feedback in one target's scrape (a count from
    another target covers other feedback at the window's edges).
    """

    latency_histogram: str
    predictions_counter: str
    reward_counter: str
    feedback_counter: str
    namespace_label: str
    deployment_label: str
    predictor_label: str
    predict_filter: str
    service_name: str
    # The output monitor node's counters (outputs by label ``output``; unreadable
    # responses by ``reason``); empty where the router adds no monitor.
    outputs_counter: str = ""
    unreadable_counter: str = ""
