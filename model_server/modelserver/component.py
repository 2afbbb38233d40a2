"""The Seldon Python wrapper component: `seldon-core-microservice modelserver.component.TorchClassifier`.

How it meets the wrapper (seldon-core 1.17.1), and why:

* `load()` runs once in every gunicorn worker (and in the gRPC process). It never
  raises: the wrapper treats an AttributeError from `load` as "no load method" and any
  other exception kills the worker, then gunicorn halts. A failed load leaves the
  component unready and the reason is served on `/health/status` (HTTP 503).
* The output-class counter travels with each prediction (`SeldonResponse.metrics`),
  not through `metrics()`: the wrapper also calls `metrics()` after every health check
  and feedback call and tags what it returns with that method, so counts buffered for
  `metrics()` would be exported under `method="health"` by whichever call came next.
* `predict_raw` handles REST payloads only to turn the wrapper's own parse errors
  (ragged arrays, a tensor whose values do not fit its shape, a `meta` that is no
  object) into HTTP 400 instead of 500; it builds the response with the wrapper's own
  function, then the normal path. It drops the request's `meta.metrics`: on this path
  the wrapper would export them as the server's own counters.
* `model_error_handler` is `modelserver.guard`'s blueprint: the body limit
  (`max_request_bytes`) and 400 instead of 500 for what the wrapper cannot parse.
* Feedback: every call is counted here, in `modeldeploy_feedback_total` and
  `modeldeploy_feedback_reward_total`, both in one metrics update, so one scrape always
  sees a count and a reward sum of the same feedback (the A/B test's mean reward is
  their ratio). Not the wrapper's `seldon_api_model_feedback(_reward)`: it skips reward
  0 (`update_reward` returns early), so its count is of rewarded feedback only, and it
  adds the count and the reward in two separate updates. Feedback that carries a truth
  and no reward is scored here (reward = 1 per correctly predicted row).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch
from seldon_core.flask_utils import SeldonMicroserviceException
from seldon_core.user_model import SeldonNotImplementedError, SeldonResponse
from seldon_core.utils import construct_response_json, extract_request_parts_json

from modelserver import lifecycle
from modelserver.artifact import CARD_FILE, ArtifactError, LoadedModel, load_artifact, read_card, resolve_uri
from modelserver.faults import KEYS as FAULT_KEYS
from modelserver.faults import FaultConfigError, FaultInjector, parse_faults
from modelserver.guard import DEFAULT_MAX_REQUEST_BYTES, parse_limit, request_guard
from modelserver.payload import PayloadError, request_meta, to_batch, to_label_indices

logger = logging.getLogger(__name__)
# The wrapper imports this module in its main process before it forks anything.
lifecycle.install()

# The wrapper exposes a COUNTER key through prometheus_client's CounterMetricFamily,
# which strips one trailing "_total" and adds it back: this key is exposed verbatim.
PREDICTIONS_METRIC = "modeldeploy_predictions_total"
CLASS_LABEL = "class"
FEEDBACK_METRIC = "modeldeploy_feedback_total"
FEEDBACK_REWARD_METRIC = "modeldeploy_feedback_reward_total"
PARAMETERS = ("model_uri", "sha256", "version", "torch_threads", "max_request_bytes", *FAULT_KEYS)


class ModelServerError(SeldonMicroserviceException):
    """The wrapper's error (REST: JSON status with this HTTP code), with a message that
    also reaches gRPC clients: the base class passes no args to Exception, so gRPC
    reports just "Exception calling application"."""

    def __str__(self) -> str:
        return str(self.message)


def _error(message: str, status: int, reason: str) -> ModelServerError:
    return ModelServerError(message, status_code=status, reason=reason)


class TorchClassifier:
    """A TorchScript classifier from a verified artifact (see `modelserver.artifact`).

    Seldon parameters (all optional but `model_uri`): model_uri (STRING, path or
    file:// URI), sha256 and version (STRING pins checked against the artifact),
    torch_threads (INT, default 1 per worker), max_request_bytes (INT, default 4 MiB:
    larger bodies get 413 unread), and the fault settings of
    `modelserver.faults` (latency_ms, latency_jitter_ms, error_rate, skew_classes,
    skew_logit_bias, fault_seed), which override the card's `faults`.
    """

    def __init__(
        self,
        model_uri: str = "",
        sha256: str = "",
        version: str = "",
        torch_threads: int = 1,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
        **others: Any,
    ) -> None:
        # Never raise here: the wrapper builds this object before serving anything, so
        # an exception would stop the process instead of reporting unready.
        self.model_uri = str(model_uri)
        self.sha256 = str(sha256)
        self.version = str(version)
        self.torch_threads = torch_threads
        self._fault_overrides = {k: v for k, v in others.items() if k in FAULT_KEYS}
        self._unknown = sorted(k for k in others if k not in FAULT_KEYS)
        self._loaded: LoadedModel | None = None
        self._faults: FaultInjector | None = None
        self._error: str | None = "the model has not been loaded yet"
        self._all_classes_exported = False
        try:
            limit, self._limit_error = parse_limit(max_request_bytes), None
        except ValueError as e:
            limit, self._limit_error = DEFAULT_MAX_REQUEST_BYTES, str(e)
        # Read by the wrapper (an attribute, not a method) when it builds its Flask app.
        self.model_error_handler = request_guard(limit)

    # ----- lifecycle -----------------------------------------------------------------

    def load(self) -> None:
        started = time.monotonic()
        try:
            if self._limit_error:
                raise ArtifactError(self._limit_error)
            if self._unknown:
                raise ArtifactError(
                    f"unknown Seldon parameter(s) {', '.join(self._unknown)}; known: {', '.join(PARAMETERS)}"
                )
            try:
                threads = int(self.torch_threads)
            except (TypeError, ValueError):
                raise ArtifactError(f"torch_threads={self.torch_threads!r} is not an integer") from None
            # One intra-op thread per worker by default: requests are single images, and
            # N workers x M threads oversubscribes the CPUs a pod gets.
            torch.set_num_threads(max(1, threads))
            loaded = load_artifact(self.model_uri, self.sha256, self.version)
            config = parse_faults(loaded.card.faults, self._fault_overrides)
            faults = FaultInjector(config, loaded.card.labels)
        except (ArtifactError, FaultConfigError) as e:
            self._error = str(e)
            logger.error("model NOT ready, it will not serve: %s", self._error)
            return
        except Exception as e:  # noqa: BLE001 - whatever happens, stay up and say why
            self._error = f"unexpected error loading {self.model_uri!r}: {type(e).__name__}: {e}"
            logger.exception("model NOT ready, it will not serve")
            return
        self._loaded, self._faults, self._error = loaded, faults, None
        card = loaded.card
        logger.info(
            "model ready: %s %s from %s (sha256 %s, %d labels, input %s) in %.2fs; faults: %s",
            card.name, card.version, loaded.directory, card.sha256[:12], len(card.labels),
            list(card.input_shape), time.monotonic() - started, config.describe() or "none",
        )  # fmt: skip

    def _ready(self) -> tuple[LoadedModel, FaultInjector]:
        if self._loaded is None or self._faults is None:
            raise _error(f"model not ready: {self._error}", 503, "MODEL_NOT_READY")
        return self._loaded, self._faults

    def health_status(self) -> dict[str, Any]:
        loaded, faults = self._ready()
        return {
            "status": "ready",
            "name": loaded.card.name,
            "version": loaded.card.version,
            "sha256": loaded.card.sha256,
            "faults": faults.config.describe(),
        }

    # ----- prediction ----------------------------------------------------------------

    def _batch(self, loaded: LoadedModel, X: Any, what: str) -> np.ndarray:
        try:
            return to_batch(X, loaded.card.input_shape, loaded.card.input_range)
        except PayloadError as e:
            raise _error(f"{what}: {e}", 400, "BAD_PAYLOAD") from None

    @staticmethod
    def _scores(loaded: LoadedModel, faults: FaultInjector, batch: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            logits = faults.skew(loaded.module(torch.from_numpy(batch)))
            return torch.softmax(logits, dim=1).numpy()

    def predict(self, X: Any, names: Any = None, meta: dict | None = None) -> SeldonResponse:
        loaded, faults = self._ready()
        faults.delay()
        if faults.should_fail():
            raise _error("injected fault: error_rate is configured", 500, "INJECTED_FAULT")
        batch = self._batch(loaded, X, "bad payload")
        try:
            probs = self._scores(loaded, faults, batch)
        except Exception as e:  # noqa: BLE001 - a TypeError would make the wrapper call predict twice
            logger.exception("prediction failed")
            raise _error(f"prediction failed: {type(e).__name__}: {e}", 500, "MODEL_ERROR") from None
        labels = loaded.card.labels
        counts = np.bincount(probs.argmax(axis=1), minlength=len(labels))
        # Export every class once (at 0) so rates and ratios see all series from the start.
        seed_all = not self._all_classes_exported
        self._all_classes_exported = True
        metrics = [
            {"type": "COUNTER", "key": PREDICTIONS_METRIC, "value": int(n), "tags": {CLASS_LABEL: label}}
            for label, n in zip(labels, counts)
            if n or seed_all
        ]
        return SeldonResponse(data=probs, metrics=metrics)

    def predict_raw(self, msg: Any) -> dict:
        if not isinstance(msg, dict):
            # gRPC: the wrapper's normal path decodes the proto and calls predict().
            raise SeldonNotImplementedError("gRPC requests take the default path")
        self._ready()
        try:
            meta = request_meta(msg)
            features, _, datadef, _ = extract_request_parts_json(msg)
        except SeldonMicroserviceException:
            raise
        except PayloadError as e:
            raise _error(f"bad payload: {e}", 400, "BAD_PAYLOAD") from None
        except Exception as e:  # noqa: BLE001 - numpy and reshape errors of bad payloads
            raise _error(f"bad payload: cannot read the data: {e}", 400, "BAD_PAYLOAD") from None
        names = datadef.get("names", []) if isinstance(datadef, dict) else []
        response = self.predict(features, names, meta)
        return construct_response_json(self, False, msg, response.data, meta, response.metrics, response.tags)

    # ----- feedback ------------------------------------------------------------------

    def send_feedback(
        self, features: Any, feature_names: Any, reward: float, truth: Any, routing: Any = None
    ) -> SeldonResponse:
        loaded, faults = self._ready()
        # The proto's reward is a float: absent and 0 are the same, so a truth is scored
        # only when no non-zero reward was given (a client's reward wins).
        feedback, rewarded = 1, float(reward or 0.0)
        if not reward and isinstance(truth, np.ndarray) and truth.size:
            batch = self._batch(loaded, features, "bad feedback: request.data")
            try:
                truths = to_label_indices(truth, loaded.card.labels, batch.shape[0])
            except PayloadError as e:
                raise _error(f"bad feedback: {e}", 400, "BAD_PAYLOAD") from None
            # Without faults.delay/should_fail: they model serving, not the model.
            probs = self._scores(loaded, faults, batch)
            feedback, rewarded = len(truths), float((probs.argmax(axis=1) == truths).sum())
        # One list, one `SeldonMetrics.update`: a scrape sees both counters or neither.
        metrics = [
            {"type": "COUNTER", "key": FEEDBACK_METRIC, "value": feedback},
            {"type": "COUNTER", "key": FEEDBACK_REWARD_METRIC, "value": rewarded},
        ]
        return SeldonResponse(data=None, metrics=metrics)

    # ----- what the wrapper asks for on every response -------------------------------

    def metrics(self) -> list[dict]:
        # Deliberately empty: see the module docstring (counts ride on each response).
        return []

    def class_names(self) -> list[str]:
        return list(self._loaded.card.labels) if self._loaded else []

    def tags(self) -> dict[str, str]:
        if self._loaded is None:
            return {}
        return {"model_name": self._loaded.card.name, "model_version": self._loaded.card.version}

    def init_metadata(self) -> dict[str, Any]:
        # Called once by the wrapper before any worker loads the model, so it reads the
        # card only; an unreadable card means empty metadata here and unready later.
        try:
            card = read_card(resolve_uri(self.model_uri))
        except Exception as e:  # noqa: BLE001 - metadata must never stop the server
            logger.warning("no model metadata: %s", e)
            return {}
        return {
            "name": card.name,
            "versions": [card.version],
            "platform": "pytorch-torchscript",
            "inputs": [{"messagetype": "ndarray", "schema": {"shape": list(card.input_shape)}}],
            "outputs": [
                {"messagetype": "ndarray", "schema": {"names": list(card.labels), "shape": [len(card.labels)]}}
            ],
            "custom": {"sha256": card.sha256, "card": CARD_FILE, "description": card.description},
        }
