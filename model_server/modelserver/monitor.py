"""The output monitor: a Seldon OUTPUT_TRANSFORMER that passes every response through
unchanged and counts what the model predicted, for any model Seldon serves.

    seldon-core-microservice modelserver.monitor.OutputMonitor --service-type TRANSFORMER \\
        --parameters '[{"name": "bins", "value": "[0, 100, 200]", "type": "STRING"}]'

What it counts, per response row, as `modeldeploy_outputs_total{output="<label>"}`:

* classifier (`kind=classifier`, the default without `bins`): the argmax of each row
  of scores, named by the response's `data.names` when they match its width (else the
  column index), or the row's label itself when the model returns one label per row
  (strings, or integers such as sklearn's `predict`);
* regressor (`kind=regressor`, the default with `bins`): the bin of each value, from
  the `bins` edges (a JSON list, strictly increasing): `(-inf,e0)`, `[e0,e1)`, ...,
  `[ek,+inf)`, and `NaN`; without `bins`, the bin of a fixed fine grid (`FineGrid`), from
  which the operator merges bins of roughly equal mass chosen from the stable version's
  outputs (operator/modeldeploy/analysis/output_bins.py says why it works that way).

A response it cannot read (no `data`, strings for a regressor, probabilities of the
wrong rank, ...) passes through all the same and counts
`modeldeploy_outputs_unreadable_total{reason="<one of REASONS>"}`, with a log line saying
why (at most one a minute per reason and worker).

How it meets the wrapper (seldon-core 1.17.1): it implements `transform_output_raw`, so
the wrapper hands it the message as received (REST: the JSON dict; gRPC: the proto) and
sends back what it returns. The plain `transform_output(X, names, meta)` path would
rebuild the message: `data.names` replaced by the component's `class_names()` (or
`t:0`, `t:1`...), `meta.routing` dropped. On the raw path the wrapper exports
`meta.metrics` of the returned message as this node's custom metrics (method label
`outputtransform`), and removes them from it only if INCLUDE_METRICS_IN_CLIENT_RESPONSE
is "false" (the wrapper's default is "true"). So the monitor returns the message with
`meta.metrics` set to its own counts only: the model's own `meta.metrics` (which the
model's wrapper includes by default) must not be exported again as this node's. Run the
monitor with INCLUDE_METRICS_IN_CLIENT_RESPONSE=false and the response is the model's,
unchanged but for `meta.metrics` (absent).
"""

from __future__ import annotations

import bisect
import json
import logging
import math
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from google.protobuf import json_format
from seldon_core.flask_utils import SeldonMicroserviceException
from seldon_core.proto import prediction_pb2

from modelserver import lifecycle
from modelserver.guard import parse_limit, request_guard

logger = logging.getLogger(__name__)
lifecycle.install()

OUTPUTS_METRIC = "modeldeploy_outputs_total"
UNREADABLE_METRIC = "modeldeploy_outputs_unreadable_total"
OUTPUT_LABEL = "output"
REASON_LABEL = "reason"
KINDS = ("classifier", "regressor")
REASONS = ("no_data", "empty", "shape", "not_numeric", "not_a_label", "bad_config")
# Model responses can be larger than client requests (scores for every class).
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024
LOG_EVERY_S = 60.0


class Unreadable(ValueError):
    def __init__(self, reason: str, message: str) -> None:
        assert reason in REASONS
        super().__init__(message)
        self.reason = reason


def _edge(x: float) -> str:
    return str(int(x)) if x.is_integer() and abs(x) < 1e15 else repr(x)


#: A regressor without bins is counted on this fine grid: |x| in 20 bins per decade, at
#: the R20 preferred numbers (ISO 3: 1, 1.12, 1.25, 1.4, ... 9, 11-14 % apart, so labels
#: read "[140,160)") x 10^e from 1e-9 to 1e12, mirrored for negative values, one bin around
#: zero and one beyond each end. Log-spaced because the monitor cannot know the output's
#: scale; the same for every monitor and version, so the operator can merge any version's
#: counts into the coarse bins it fixed from the stable version's (exactly: it cuts on
#: the grid's edges). Not finer because every series costs every request: the wrapper
#: copies a worker's series to and from its metrics manager on each one (benchmark.py
#: --mode monitor), and a regressor spanning a decade fills 20 of them.
R20 = (1.0, 1.12, 1.25, 1.4, 1.6, 1.8, 2.0, 2.24, 2.5, 2.8, 3.15, 3.55, 4.0, 4.5, 5.0, 5.6, 6.3, 7.1, 8.0, 9.0)
FINE_DECADES = range(-9, 12)
#: Up to this many values per response are binned in plain Python (see `Binning.label`).
SMALL_BATCH = 16


def fine_edges() -> tuple[float, ...]:
    # Through decimal strings, so that 1.12e2 is 112.0 exactly as printed, not 112.00000000000001.
    return (*(float(f"{m}e{e}") for e in FINE_DECADES for m in R20), float(f"1e{FINE_DECADES.stop}"))


@dataclass(frozen=True)
class Binning:
    """Bin labels of a regressor's values: `index` maps values to positions in `labels`."""

    edges: tuple[float, ...]
    labels: tuple[str, ...]
    fine: bool

    @cached_property
    def _array(self) -> np.ndarray:
        return np.asarray(self.edges)

    @classmethod
    def of_edges(cls, edges: tuple[float, ...]) -> Binning:
        """(-inf,e0), [e0,e1), ..., [ek,+inf), NaN."""
        e = [_edge(x) for x in edges]
        inner = [f"[{a},{b})" for a, b in zip(e, e[1:])]
        return cls(edges, (f"(-inf,{e[0]})", *inner, f"[{e[-1]},+inf)", "NaN"), False)

    @classmethod
    def fine_grid(cls) -> Binning:
        """Labels: the zero bin, positive bins up, then negative bins down, then NaN."""
        edges = fine_edges()
        e = [_edge(x) for x in edges]
        zero = f"[-{e[0]},{e[0]})"
        positive = [zero, *(f"[{a},{b})" for a, b in zip(e, e[1:])), f"[{e[-1]},+inf)"]
        negative = [zero, *(f"[-{b},-{a})" for a, b in zip(e, e[1:])), f"(-inf,-{e[-1]})"]
        return cls(edges, (*positive, *negative, "NaN"), True)

    def index(self, values: np.ndarray) -> np.ndarray:
        if self.fine:
            # |x| in [e(i-1), e(i)) for x >= 0; in (e(i-1), e(i)] for x < 0, so that x is in [-e(i), -e(i-1)).
            magnitude = np.abs(values)
            up = np.searchsorted(self._array, magnitude, side="right")
            down = np.searchsorted(self._array, magnitude, side="left") + len(self.edges) + 1
            index = np.where(values >= 0, up, down)
        else:
            index = np.searchsorted(self._array, values, side="right")
        return np.where(np.isnan(values), len(self.labels) - 1, index)

    def _index_one(self, x: float) -> int:
        """`index` of one value, in plain Python."""
        if x != x:  # NaN
            return len(self.labels) - 1
        if not self.fine or x >= 0:
            return bisect.bisect_right(self.edges, abs(x) if self.fine else x)
        return bisect.bisect_left(self.edges, -x) + len(self.edges) + 1

    def label(self, values: np.ndarray) -> list[str]:
        """The bin of each value. A few values (a request's usual batch) in plain Python:
        numpy's fixed cost per call (six calls, ~25 us) would be most of the monitor's work."""
        if values.size > SMALL_BATCH:
            return [self.labels[i] for i in self.index(values).tolist()]
        return [self.labels[self._index_one(x)] for x in values.tolist()]


@dataclass(frozen=True)
class MonitorConfig:
    kind: str
    edges: tuple[float, ...] = ()

    @property
    def bin_labels(self) -> tuple[str, ...]:
        """The labels of the bins from `bins` (none for a classifier or the fine grid)."""
        return Binning.of_edges(self.edges).labels if self.edges else ()

    def binning(self) -> Binning | None:
        if self.kind != "regressor":
            return None
        return Binning.of_edges(self.edges) if self.edges else Binning.fine_grid()

    def describe(self) -> dict[str, Any]:
        if self.kind != "regressor":
            return {"kind": self.kind}
        return {"kind": self.kind, "bins": list(self.edges) if self.edges else f"fine grid, {len(R20)} per decade"}


def parse_config(kind: Any = "", bins: Any = "") -> MonitorConfig:
    """From the Seldon parameters; ValueError naming the parameter and the fix."""
    edges: tuple[float, ...] = ()
    if bins not in ("", None):
        try:
            raw = json.loads(bins) if isinstance(bins, str) else bins
        except ValueError:
            raw = None
        if not isinstance(raw, list) or not raw or not all(isinstance(x, (int, float)) for x in raw):
            raise ValueError(f'bins={bins!r} must be a JSON list of numbers, e.g. "[0, 100, 200]"')
        edges = tuple(float(x) for x in raw)
        if not all(math.isfinite(x) for x in edges) or any(a >= b for a, b in zip(edges, edges[1:])):
            raise ValueError(f"bins={list(edges)} must be finite and strictly increasing")
    kind = str(kind or ("regressor" if edges else "classifier")).lower()
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} must be one of {', '.join(KINDS)} (or empty: regressor if bins are given)")
    if kind == "classifier" and edges:
        raise ValueError("bins are for kind=regressor; a classifier is counted by class")
    return MonitorConfig(kind, edges)


# ----- reading a response ---------------------------------------------------------------


def read_rest(msg: Any) -> tuple[np.ndarray, list[str]]:
    """The output values and column names of a REST SeldonMessage."""
    if not isinstance(msg, dict):
        raise Unreadable("no_data", f"the response is a JSON {type(msg).__name__}, not a SeldonMessage object")
    data = msg.get("data")
    if not isinstance(data, dict):
        present = [k for k in ("jsonData", "strData", "binData") if k in msg]
        raise Unreadable("no_data", f"no data.ndarray or data.tensor in the response (it has {present or 'no data'})")
    names = data.get("names") if isinstance(data.get("names"), list) else []
    try:
        if "ndarray" in data:
            values = np.asarray(data["ndarray"])
        elif "tensor" in data:
            values = np.asarray(data["tensor"]["values"]).reshape(data["tensor"]["shape"])
        else:
            raise Unreadable("no_data", "data has neither ndarray nor tensor")
    except Unreadable:
        raise
    except Exception as e:  # noqa: BLE001 - ragged rows, bad tensor shapes: all unreadable
        raise Unreadable("shape", f"cannot read data as an array: {type(e).__name__}: {e}") from None
    return values, [str(n) for n in names]


def read_proto(msg: prediction_pb2.SeldonMessage) -> tuple[np.ndarray, list[str]]:
    """The same for a gRPC SeldonMessage."""
    which = msg.WhichOneof("data_oneof")
    if which != "data":
        raise Unreadable("no_data", f"no data.ndarray or data.tensor in the response (it has {which or 'no data'})")
    data = msg.data
    try:
        if data.WhichOneof("data_oneof") == "tensor":
            values = np.asarray(data.tensor.values).reshape(list(data.tensor.shape))
        elif data.WhichOneof("data_oneof") == "ndarray":
            values = np.asarray(json_format.MessageToDict(data.ndarray))
        else:
            raise Unreadable("no_data", "data has neither ndarray nor tensor")
    except Unreadable:
        raise
    except Exception as e:  # noqa: BLE001
        raise Unreadable("shape", f"cannot read data as an array: {type(e).__name__}: {e}") from None
    return values, list(data.names)


def output_labels(values: np.ndarray, names: list[str], binning: Binning | None) -> list[str]:
    """One label per response row: the class, or (with a `binning`: a regressor) the bin."""
    if values.size == 0:
        raise Unreadable("empty", "the response has no values")
    if values.ndim > 2:
        raise Unreadable("shape", f"outputs of shape {list(values.shape)}: expected [n] or [n, k]")
    numeric = np.issubdtype(values.dtype, np.number) and not np.issubdtype(values.dtype, np.complexfloating)
    flat = values.reshape(-1) if values.ndim == 1 or values.shape[1] == 1 else None
    if binning is not None:
        if flat is None:
            raise Unreadable("shape", f"regressor outputs of shape {list(values.shape)}: expected one value per row")
        if not numeric:
            raise Unreadable("not_numeric", f"regressor outputs are {values.dtype.name}, not numbers")
        return binning.label(flat.astype(np.float64, copy=False))
    if flat is None:  # rows of scores
        if not numeric:
            raise Unreadable("not_numeric", f"classifier score rows are {values.dtype.name}, not numbers")
        columns = names if len(names) == values.shape[1] else [str(i) for i in range(values.shape[1])]
        return [columns[i] for i in values.argmax(axis=1).tolist()]
    if values.dtype.kind in "US":
        return [str(v) for v in flat.tolist()]
    if numeric:
        as_float = flat.astype(np.float64, copy=False)
        if np.all(np.isfinite(as_float)) and np.all(as_float == np.round(as_float)):
            return [str(int(v)) for v in as_float.tolist()]
        raise Unreadable(
            "not_a_label",
            "classifier outputs are one non-integer number per row: for a regressor set kind=regressor",
        )
    raise Unreadable("not_numeric", f"classifier outputs are {values.dtype.name}: expected labels or score rows")


def counter(key: str, tag: str, value: str, n: int) -> dict[str, Any]:
    return {"type": "COUNTER", "key": key, "value": n, "tags": {tag: value}}


class OutputMonitor:
    """The Seldon component. Parameters (all optional): kind (STRING: classifier or
    regressor), bins (STRING: JSON list of bin edges, for a regressor; without them a
    regressor is counted on the fine grid),
    max_request_bytes (INT, default 32 MiB: model responses over it get 413)."""

    def __init__(self, kind: str = "", bins: str = "", max_request_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
                 **others: Any) -> None:  # fmt: skip
        # Never raise here (the wrapper would exit): a bad setting makes it unready.
        self._error: str | None = None
        self.config = MonitorConfig("classifier")
        limit = DEFAULT_MAX_RESPONSE_BYTES
        try:
            if others:
                raise ValueError(f"unknown Seldon parameter(s) {', '.join(sorted(others))}; known: kind, bins, "
                                 "max_request_bytes")  # fmt: skip
            self.config = parse_config(kind, bins)
            limit = parse_limit(max_request_bytes)
        except ValueError as e:
            self._error = str(e)
            logger.error("output monitor NOT ready: %s", e)
        self.model_error_handler = request_guard(limit)
        self._binning = self.config.binning()
        self._seeded: set[str] = set()
        self._last_logged: dict[str, tuple[float, int]] = {}

    def health_status(self) -> dict[str, Any]:
        if self._error:
            message = f"output monitor not ready: {self._error}"
            raise SeldonMicroserviceException(message, 503, reason="MONITOR_NOT_READY")
        return {"status": "ready", **self.config.describe()}

    def _metrics(self, labels: list[str], names: list[str]) -> list[dict[str, Any]]:
        counts: dict[str, int] = {}
        for label in labels:
            counts[label] = counts.get(label, 0) + 1
        # Every known output once at 0, so rates and ratios see all series from the first
        # response of each worker; not the fine grid's thousands of bins, nor unreadable
        # reasons that never happen: the wrapper copies a worker's every series to and from
        # its metrics manager on each request (+3.5 us a series at load 9 here), and the
        # operator's queries count a series born in their window from 0 anyway.
        known = self.config.bin_labels if self.config.kind == "regressor" else tuple(names)
        unseen = [k for k in known if k not in counts and k not in self._seeded]
        metrics = [counter(OUTPUTS_METRIC, OUTPUT_LABEL, k, 0) for k in unseen]
        self._seeded.update(known)
        return metrics + [counter(OUTPUTS_METRIC, OUTPUT_LABEL, k, n) for k, n in counts.items()]

    def _unreadable(self, e: Unreadable) -> list[dict[str, Any]]:
        now = time.monotonic()
        last, suppressed = self._last_logged.get(e.reason, (-math.inf, 0))
        if now - last >= LOG_EVERY_S:
            more = f" ({suppressed} more since the last log line)" if suppressed else ""
            logger.warning("output monitor cannot read a response, passed it through (%s): %s%s", e.reason, e, more)
            self._last_logged[e.reason] = (now, 0)
        else:
            self._last_logged[e.reason] = (last, suppressed + 1)
        return [counter(UNREADABLE_METRIC, REASON_LABEL, e.reason, 1)]

    def count(self, read: Any, msg: Any) -> list[dict[str, Any]]:
        """The metrics for one response: its outputs, or why it is unreadable."""
        try:
            if self._error:
                raise Unreadable("bad_config", self._error)
            values, names = read(msg)
            return self._metrics(output_labels(values, names, self._binning), names)
        except Unreadable as e:
            return self._unreadable(e)

    def transform_output_raw(self, msg: Any) -> Any:
        if isinstance(msg, prediction_pb2.SeldonMessage):
            metrics = self.count(read_proto, msg)
            del msg.meta.metrics[:]
            # The wrapper reads these back with MessageToDict, which omits a 0 value
            # and then fails on the missing key: no zero seeds over gRPC.
            for m in (m for m in metrics if m["value"]):
                msg.meta.metrics.add(key=m["key"], type=prediction_pb2.Metric.COUNTER, value=m["value"], tags=m["tags"])
            return msg
        metrics = self.count(read_rest, msg)
        if not isinstance(msg, dict):
            return msg  # logged as unreadable; the wrapper exports metrics of dicts only
        meta = msg.get("meta") if isinstance(msg.get("meta"), dict) else {}
        return {**msg, "meta": {**{k: v for k, v in meta.items() if k != "metrics"}, "metrics": metrics}}
