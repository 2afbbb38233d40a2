"""A stand-in for Seldon Core 1.17's prepackaged SKLEARN_SERVER (seldon protocol), for the
sandbox: `seldon-core-microservice modelserver.sklearn_server.SKLearnServer`.

Why a stand-in: Seldon ships that server as a container image (seldonio/sklearnserver)
whose Python class is not published on PyPI, and no container runs here. MLServer (the
Apache-2.0 server behind SKLEARN_SERVER with protocol v2) is on PyPI, but it speaks the
v2 protocol, which the output monitor does not read, and its pins clash with
seldon-core 1.17.1's in one virtualenv. This class does what Seldon documents for the
SKLEARN_SERVER: it loads `model.joblib` from the directory Seldon's storage initializer
filled (the `model_uri` parameter Seldon passes), and answers `predict` with the model's
`predict_proba` (parameter `method`: predict_proba, predict or decision_function). It
runs on the real Seldon Python wrapper, like the real one.
"""

from __future__ import annotations

import logging
from typing import Any

import joblib
import numpy as np
from seldon_core.flask_utils import SeldonMicroserviceException

from modelserver.artifact import ArtifactError, resolve_uri

logger = logging.getLogger(__name__)
METHODS = ("predict_proba", "predict", "decision_function")
MODEL_FILE = "model.joblib"


class SKLearnServer:
    def __init__(self, model_uri: str = "", method: str = "predict_proba", **_: Any) -> None:
        self.model_uri, self.method = model_uri, method
        self.model: Any = None
        self.error: str | None = None if method in METHODS else f"method={method!r} must be one of {', '.join(METHODS)}"

    def load(self) -> None:
        # Never raises (the wrapper would kill the worker): unready with the reason instead.
        if self.error:
            return
        try:
            self.model = joblib.load(resolve_uri(self.model_uri) / MODEL_FILE)
        except (ArtifactError, OSError, ValueError) as e:
            self.error = f"cannot load {MODEL_FILE} from {self.model_uri!r}: {e}"
            logger.error("SKLearnServer NOT ready: %s", self.error)

    def health_status(self) -> dict[str, Any]:
        if self.model is None:
            raise SeldonMicroserviceException(self.error or "model not loaded", 503, reason="MODEL_NOT_READY")
        return {"status": "ready"}

    def predict(self, X: Any, names: Any = None, meta: Any = None) -> np.ndarray:
        if self.model is None:
            raise SeldonMicroserviceException(self.error or "model not loaded", 503, reason="MODEL_NOT_READY")
        try:
            return getattr(self.model, self.method)(np.asarray(X, dtype=np.float64))
        except (ValueError, TypeError) as e:
            raise SeldonMicroserviceException(f"bad request: {e}", 400, reason="BAD_REQUEST") from None
