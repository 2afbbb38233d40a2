"""The metric-provider interface: one instant query in, per-series samples out.

Kept as small as Flagger's ``providers.Interface`` (``RunQuery``, ``IsOnline``), with
one difference that matters for rollouts: every way a query can go wrong is its own
exception, because the rollout treats them differently. *No data* means "not enough
traffic yet" (Inconclusive: hold the weight); everything else means "we could not
measure" (Error: hold, then pause). Flagger folds both into a failed check and rolls
back canaries that simply got no traffic; it also silently keeps the last of several
series, which we refuse: more series than expected is a broken query, reported as such.

A provider returns what the server computed and interprets nothing; the helpers
`one_value` and `by_label` turn samples into the shapes the checks need and raise the
distinct outcomes.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, cast, runtime_checkable

if TYPE_CHECKING:
    from ..routing import MetricSeries


@dataclass(frozen=True)
class Sample:
    """One series of an instant vector: its labels and its value at the query time."""

    labels: Mapping[str, str] = field(default_factory=dict)
    value: float = math.nan


class MetricQueryError(Exception):
    """A query did not yield a usable value; `query` is the PromQL that was sent."""

    #: True when the right reaction is "wait for more data", not "we cannot measure".
    inconclusive = False

    def __init__(self, message: str, query: str = "") -> None:
        super().__init__(message)
        self.query = query


class ProviderUnreachable(MetricQueryError):
    """The metric server could not be reached (connection refused, DNS, TLS)."""


class ProviderTimeout(MetricQueryError):
    """The server did not answer within the provider's timeout."""


class QueryFailed(MetricQueryError):
    """The server answered with an error: bad PromQL, evaluation error, overload."""


class NoData(MetricQueryError):
    """The query matched no series: no traffic yet, or labels that match nothing."""

    inconclusive = True


class NotANumber(MetricQueryError):
    """A series had the value NaN (0/0 in a ratio, a stale histogram)."""


class TooManySeries(MetricQueryError):
    """More series than the caller can attribute to one version: never silently picked."""


@runtime_checkable
class MetricProvider(Protocol):
    """What the analysis needs from a metric backend."""

    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        """Evaluate `promql` as an instant query at Unix time `at` (None: the server's now).

        Returns every series, possibly none. Raises `ProviderUnreachable`,
        `ProviderTimeout` or `QueryFailed`; never `NoData` and friends, which are the
        helpers' business.
        """
        ...

    def is_online(self) -> bool:
        """True when the backend answers a trivial query (for readiness and status)."""
        ...


@dataclass(frozen=True)
class Configured:
    """A provider built from the operator's configuration, with the query templates it
    runs for the router's metric series (its defaults, with operator overrides)."""

    provider: MetricProvider
    templates: Mapping[str, str]


class ProviderModule(Protocol):
    """What a provider module defines: its factory, which reads its own settings."""

    def from_env(self, env: Mapping[str, str], series: MetricSeries) -> Configured | None:
        """The configured provider, or None when its settings are absent (metrics then
        give Error verdicts, saying which setting is missing)."""
        ...


#: Metric providers by MODELDEPLOY_METRIC_PROVIDER: the module (in this package) whose
#: `from_env` builds it. Imported only when chosen, so the others' clients need not be
#: installed.
PROVIDERS: dict[str, str] = {
    "prometheus": ".prometheus",
}
DEFAULT = "prometheus"


def from_env(env: Mapping[str, str], series: MetricSeries) -> Configured | None:
    """The provider MODELDEPLOY_METRIC_PROVIDER names (default prometheus), configured."""
    name = env.get("MODELDEPLOY_METRIC_PROVIDER") or DEFAULT
    if name not in PROVIDERS:
        raise ValueError(f"MODELDEPLOY_METRIC_PROVIDER: unknown provider {name!r}; "
                         f"known: {', '.join(sorted(PROVIDERS))}")
    module = cast("ProviderModule", importlib.import_module(PROVIDERS[name], __name__))
    return module.from_env(env, series)


def _short(promql: str, limit: int = 160) -> str:
    return promql if len(promql) <= limit else promql[: limit - 3] + "..."


def one_value(samples: Sequence[Sample], promql: str) -> float:
    """The single value a scalar query must return.

    Zero series is `NoData`, two or more is `TooManySeries` (the query needs a
    ``sum``), NaN is `NotANumber`. Infinities are returned: comparisons handle them.
    """
    if not samples:
        raise NoData(f"no series matched: {_short(promql)}", promql)
    if len(samples) > 1:
        shown = ", ".join(str(dict(s.labels)) for s in samples[:3])
        raise TooManySeries(
            f"{len(samples)} series where one was expected ({shown}); aggregate the query, e.g. sum(...): "
            f"{_short(promql)}",
            promql,
        )
    value = samples[0].value
    if math.isnan(value):
        raise NotANumber(f"the query returned NaN: {_short(promql)}", promql)
    return value


def by_label(samples: Sequence[Sample], label: str, promql: str) -> dict[str, float]:
    """Values keyed by one label (``le`` of a histogram, ``class`` of a counter).

    Each label value must occur once: a duplicate means the query kept a dimension it
    should have summed away (per pod, per worker), and adding or picking would both
    hide that, so it is `TooManySeries`. A series without the label is the same
    mistake. NaN anywhere is `NotANumber`; no series at all is `NoData`.
    """
    if not samples:
        raise NoData(f"no series matched: {_short(promql)}", promql)
    out: dict[str, float] = {}
    for s in samples:
        key = s.labels.get(label)
        if key is None:
            raise TooManySeries(
                f"a series has no {label!r} label ({dict(s.labels)}); aggregate with sum by ({label}) (...): "
                f"{_short(promql)}",
                promql,
            )
        if key in out:
            raise TooManySeries(
                f"several series for {label}={key!r}; aggregate with sum by ({label}) (...): {_short(promql)}", promql
            )
        if math.isnan(s.value):
            raise NotANumber(f"the series {label}={key!r} is NaN: {_short(promql)}", promql)
        out[key] = s.value
    return out


__all__ = [
    "Configured",
    "MetricProvider",
    "PROVIDERS",
    "MetricQueryError",
    "NoData",
    "NotANumber",
    "ProviderTimeout",
    "ProviderUnreachable",
    "QueryFailed",
    "Sample",
    "TooManySeries",
    "by_label",
    "from_env",
    "one_value",
]
