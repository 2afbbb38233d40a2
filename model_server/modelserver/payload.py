"""Turning request payloads into model input, and truths into label indices.

Every rejection is a `PayloadError` whose message tells the client what was expected
and what arrived; the component turns it into HTTP 400. The checks are strict on
purpose: a client that sends 0..1 floats or 32 features has an encoding bug, and a
silent wrong prediction would show up only as a drifting output distribution.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


class PayloadError(ValueError):
    pass


def _shape(shape: tuple[int, ...]) -> str:
    return "[n, " + ", ".join(str(d) for d in shape) + "]"


def _kind(X: Any) -> str:
    if isinstance(X, str):
        return "strData"
    if isinstance(X, (bytes, bytearray)):
        return "binData"
    if isinstance(X, dict):
        return "jsonData"
    return type(X).__name__


def to_batch(X: Any, input_shape: tuple[int, ...], input_range: tuple[float, float] | None) -> np.ndarray:
    """A float32 array of shape (n, *input_shape) from a Seldon ndarray/tensor payload.

    Rows may be flat (n, prod(input_shape)) or shaped (n, *input_shape).
    """
    expected = _shape(input_shape)
    width = math.prod(input_shape)
    if len(input_shape) > 1:
        expected += f" or [n, {width}]"
    if not isinstance(X, np.ndarray):
        raise PayloadError(f"expected numbers in data.ndarray or data.tensor with shape {expected}; got {_kind(X)}")
    if X.size == 0:
        raise PayloadError(f"empty payload: expected a batch of at least one row with shape {expected}")
    if X.dtype == object or not (np.issubdtype(X.dtype, np.number) and not np.issubdtype(X.dtype, np.complexfloating)):
        raise PayloadError(
            f"values must be numbers (got {X.dtype.name} data, e.g. strings, booleans or nulls); "
            f"expected shape {expected}"
        )
    if X.ndim == 1 + len(input_shape) and tuple(X.shape[1:]) == tuple(input_shape):
        batch = X
    elif X.ndim == 2 and X.shape[1] == width:
        batch = X.reshape((X.shape[0], *input_shape))
    elif X.ndim == 1 and X.shape[0] == width:
        raise PayloadError(f"got one image of {width} values but no batch: wrap it in a list, shape {expected}")
    else:
        raise PayloadError(f"wrong shape {list(X.shape)}: expected {expected}")
    batch = batch.astype(np.float32, copy=False)
    finite = np.isfinite(batch).reshape(batch.shape[0], -1).all(axis=1)
    if not finite.all():
        rows = np.flatnonzero(~finite)[:5].tolist()
        raise PayloadError(f"NaN or infinite values in row(s) {rows}")
    if input_range is not None:
        low, high = input_range
        flat = batch.reshape(batch.shape[0], -1)
        bad = ((flat < low) | (flat > high)).any(axis=1)
        if bad.any():
            rows = np.flatnonzero(bad)[:5].tolist()
            raise PayloadError(
                f"values out of range [{low:g}, {high:g}] in row(s) {rows} "
                f"(min {float(flat.min()):g}, max {float(flat.max()):g})"
            )
    return batch


def request_meta(msg: dict) -> dict | None:
    """The request's `meta`, checked where the wrapper would crash on it, and without
    `meta.metrics`: the wrapper exports a response's `meta.metrics` as this server's own
    metrics, so a client could otherwise write any counter (or crash the export)."""
    meta = msg.get("meta")
    if meta is None:
        return None
    if not isinstance(meta, dict):
        raise PayloadError(f"meta must be a JSON object, got {type(meta).__name__}")
    for field, kind, name in (("tags", dict, "an object"), ("requestPath", dict, "an object")):
        if field in meta and not isinstance(meta[field], kind):
            raise PayloadError(f"meta.{field} must be {name}, got {type(meta[field]).__name__}")
    return {k: v for k, v in meta.items() if k != "metrics"}


def to_label_indices(truth: Any, labels: tuple[str, ...], rows: int) -> np.ndarray:
    """Indices into `labels` from a feedback truth: one label per row ("3" or 3), or
    one-hot / score rows (argmax)."""
    if not isinstance(truth, np.ndarray) or truth.size == 0:
        raise PayloadError(f"feedback needs truth.data.ndarray with one label per request row ({rows} rows)")
    if truth.ndim == 2 and truth.shape[1] == len(labels) and len(labels) > 1:
        if not np.issubdtype(truth.dtype, np.number):
            raise PayloadError("truth rows of one score per label must be numbers")
        indices = truth.argmax(axis=1)
    else:
        flat = truth.reshape(-1) if truth.ndim == 2 and truth.shape[1] == 1 else truth
        if flat.ndim != 1:
            raise PayloadError(f"truth has shape {list(truth.shape)}: expected [n] labels or [n, {len(labels)}] scores")
        indices = np.empty(flat.shape[0], dtype=np.int64)
        for i, value in enumerate(flat.tolist()):
            # 3, 3.0 and "3" all name label "3": JSON clients differ in what they send.
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            key = str(value)
            if key not in labels:
                raise PayloadError(f"truth {value!r} in row {i} is not one of the labels {list(labels)}")
            indices[i] = labels.index(key)
    if indices.shape[0] != rows:
        raise PayloadError(f"truth has {indices.shape[0]} label(s) but the request has {rows} row(s)")
    return indices
