"""What every check kind uses: field parsing, the look each analysis method gives a
check, and fetching one measurement for both versions.

A kind module (`latency.py`, ...) holds the rest: its fields, its frozen dataclass, its
parser and its run under each method; `__init__.py` registers it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ...providers import MetricQueryError
from ...schema import DEFAULTS
from ...verdicts import CheckResult
from .. import checks
from ..errors import AnalysisConfigError
from ..query import QuerySession
from ..templates import Templates, check_template

if TYPE_CHECKING:  # sequential_analyse runs the kinds, so it imports this package
    from ..sequential_analyse import Evidence

MAX_QUERY_LENGTH = 4096
DEFAULT_SIGNIFICANCE: float = DEFAULTS["analysis.metrics[].latency.significance"]


class Metric(Protocol):
    """One parsed check: a frozen dataclass of a kind module, `kind` its key in `KINDS`."""

    kind: ClassVar[str]

    @property
    def name(self) -> str: ...


@dataclass(frozen=True)
class WindowLook:
    """What the window method (`analyse.py`) gives each check at one analysis."""

    templates: Templates
    session: QuerySession
    min_samples: int
    window: str  # the window the counts cover, for messages
    bins: tuple[float, ...] | None  # as for `analyse.analyse`


@dataclass(frozen=True)
class SequentialLook:
    """What the sequential method (`sequential_analyse.py`) gives each check at one look."""

    templates: Templates
    rollout: QuerySession  # counts since the rollout began
    step: QuerySession  # counts since the step began
    custom: QuerySession  # over spec.analysis.window: a scalar has no sample size to accumulate
    evidence: Evidence
    beta: float
    bins: tuple[float, ...] | None


def both(name: str, session: QuerySession,
         fetch: Callable[[QuerySession, str], Any]) -> tuple[Any, Any] | CheckResult:
    """Fetch one measurement for both versions; a query problem becomes the check's result."""
    out = []
    for version, predictor in (("baseline", session.target.baseline), ("candidate", session.target.candidate)):
        try:
            out.append(fetch(session, predictor))
        except MetricQueryError as e:
            return checks.from_query_error(name, f"{version} {predictor}", e)
    return out[0], out[1]


def number(d: Mapping[str, Any], key: str, where: str, default: float | None, lo: float, hi: float,
           lo_open: bool = False, hi_open: bool = False) -> float | None:
    value = d.get(key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise AnalysisConfigError(f"{where}.{key}: must be a number, got {value!r}")
    if value < lo or (lo_open and value == lo) or value > hi or (hi_open and value == hi):
        low, high = f"({lo:g}" if lo_open else f"[{lo:g}", f"{hi:g})" if hi_open else f"{hi:g}]"
        words = [f"{'greater than' if lo_open else 'at least'} {lo:g}"] if math.isfinite(lo) else []
        words += [f"{'less than' if hi_open else 'at most'} {hi:g}"] if math.isfinite(hi) else []
        raise AnalysisConfigError(f"{where}.{key}: {value!r} is outside {low}, {high}: it must be {' and '.join(words)}")
    return float(value)


def required(d: Mapping[str, Any], key: str, where: str, default: float, lo: float, hi: float,
             lo_open: bool = False, hi_open: bool = False) -> float:
    value = number(d, key, where, default, lo, hi, lo_open, hi_open)
    if value is None:  # an explicit null: the CRD schema would not let it through
        raise AnalysisConfigError(f"{where}.{key}: must be a number, got null")
    return value


def significance(d: Mapping[str, Any], where: str) -> float:
    return required(d, "significance", where, DEFAULT_SIGNIFICANCE, 0.0, 0.5, lo_open=True)


def only(d: Any, allowed: tuple[str, ...], where: str) -> Mapping[str, Any]:
    if d is None:
        return {}
    if not isinstance(d, Mapping):
        raise AnalysisConfigError(f"{where}: must be a mapping")
    unknown = sorted(set(d) - set(allowed))
    if unknown:
        raise AnalysisConfigError(f"{where}: unknown field(s) {', '.join(unknown)}; known: {', '.join(allowed)}")
    return d


def promql(where: str, value: Any, per_version: bool) -> str:
    if isinstance(value, str) and len(value) > MAX_QUERY_LENGTH:
        raise AnalysisConfigError(f"{where}: longer than {MAX_QUERY_LENGTH} characters")
    return check_template(where, value, per_version=per_version)
