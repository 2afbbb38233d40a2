"""The check kinds: what users write in ``spec.analysis.metrics[]``, one module each.

A kind module has `KEY` (the key users write, like ``errorRate``), `FIELDS` (the fields
under it; a flat kind such as ``query`` has them beside ``name``, `KEY` among them), a
frozen dataclass whose `kind` is `KEY`, `parse(name, fields, where)` and its run under
each method: `window(metric, WindowLook)` and `sequential(metric, SequentialLook)`, which
query the counts and call `checks` / `sequential_checks`. Adding a kind is one module,
its import and an entry in `_REGISTERED` below, plus its property in the CRD (its CEL
rules carry the limits), which tests/analysis/test_check_kinds.py checks against `KINDS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from ...verdicts import CheckResult
from . import custom, error_rate, latency, outputs
from .base import Metric, SequentialLook, WindowLook


class Kind(Protocol):
    """A kind module. Its runs take its own dataclass, which a Protocol cannot name for
    every kind, so `metric` is Any here; `KINDS[metric.kind]` pairs them."""

    @property
    def KEY(self) -> str: ...  # read-only members, so that a module's narrower tuple type matches

    @property
    def FIELDS(self) -> tuple[str, ...]: ...

    def parse(self, name: str, fields: Mapping[str, Any], where: str) -> Metric: ...

    def window(self, metric: Any, look: WindowLook) -> CheckResult: ...

    def sequential(self, metric: Any, look: SequentialLook) -> CheckResult: ...


_REGISTERED: tuple[Kind, ...] = (latency, error_rate, outputs, custom)  # in the CRD's order
#: Every check kind by its key; the analysis methods run a metric as `KINDS[metric.kind]`.
KINDS: dict[str, Kind] = {k.KEY: k for k in _REGISTERED}
