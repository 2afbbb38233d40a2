"""An open-loop load generator: digits images (or rows of another scikit-learn data set)
at a fixed rate, and feedback with the true label for a fraction of them.

Feedback goes where it would have to go on a cluster for an A/B test to be fair: to the
predictor that served the request. Sent to the SeldonDeployment's endpoint, Istio would
split it by weight like any request, and reward would land on whichever predictor
received it. So the response's `meta.tags.model_version` (the model server's tag: the
version it loaded and checked) names the version that answered, and `feedback_base`
maps it to that predictor's own Service (Seldon's `<sdep>-<predictor>`, port 8000).

Open loop (requests leave on schedule whatever the latency) because a closed loop slows
down with a slow model and hides the very latency regression a canary must catch.
Requests that cannot even be started on time (all workers busy) are counted as dropped.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import urllib3
from sklearn.datasets import load_diabetes, load_digits, load_iris

from .router import PROTOCOL_HEADER

DATASETS = {"digits": load_digits, "diabetes": load_diabetes, "iris": load_iris}


class LoadGenerator:
    def __init__(self, url: str, rate: float, feedback_fraction: float = 0.5, seed: int = 0,
                 workers: int = 16, feedback_base: Callable[[str], str | None] | None = None,
                 protocol: str = "rest", malformed_fraction: float = 0.0, dataset: str = "digits") -> None:
        self.url = url.rstrip("/")  # .../seldon/<ns>/<deployment>/api/v1.0
        self.malformed_fraction = malformed_fraction  # client mistakes: 3 features, not 64
        self.feedback_base = feedback_base  # version -> .../<predictor Service>/api/v1.0
        # "grpc": each request is labelled as a gRPC call (see router.PROTOCOL_HEADER); the
        # transport stays HTTP, as the stand-in cannot proxy gRPC.
        self._headers = {"Content-Type": "application/json", **({PROTOCOL_HEADER: "grpc"} if protocol == "grpc" else {})}
        self.rate = rate
        self.feedback_fraction = feedback_fraction
        # digits for our classifiers; diabetes (10 features, a score) for the regressors;
        # iris (4 features, 3 species) for the prepackaged classifier.
        data = DATASETS[dataset]()
        self._x, self._y = data.data.astype(np.float64), data.target
        self._rng = random.Random(seed)
        self._http = urllib3.PoolManager(maxsize=workers, timeout=urllib3.Timeout(connect=2, read=15), retries=False)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="load")
        self._slots = threading.Semaphore(workers)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="loadgen", daemon=True)
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def start(self) -> LoadGenerator:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _count(self, key: str) -> None:
        with self._lock:
            self.counts[key] += 1

    def _run(self) -> None:
        period = 1.0 / self.rate
        next_at = time.monotonic()
        while not self._stop.is_set():
            next_at += period
            i = self._rng.randrange(len(self._y))
            feedback = self._rng.random() < self.feedback_fraction
            # Drawn only when asked for, so other runs see the same request sequence as before.
            malformed = self.malformed_fraction > 0 and self._rng.random() < self.malformed_fraction
            if self._slots.acquire(blocking=False):
                self._pool.submit(self._one, i, feedback, malformed)
            else:
                self._count("dropped")
            delay = next_at - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)

    def _one(self, i: int, feedback: bool, malformed: bool = False) -> None:
        try:
            request = {"data": {"ndarray": [self._x[i][:3].tolist() if malformed else self._x[i].tolist()]}}
            body = json.dumps(request).encode()
            try:
                r = self._http.request("POST", f"{self.url}/predictions", body=body, headers=self._headers)
            except urllib3.exceptions.HTTPError:
                self._count("unreachable")
                return
            self._count(f"http_{r.status}")
            version, predicted = _read(r.data) if r.status == 200 else (None, None)
            if version:
                self._count(f"served_by:{version}")
                if predicted is not None:
                    self._count(f"predicted:{version}:{predicted}")
            if not (feedback and version):
                return
            base = self.feedback_base(version) if self.feedback_base else self.url
            if base is None:
                self._count("feedback_unrouted")  # that version's predictor is gone already
                return
            fb = {"request": request, "truth": {"data": {"ndarray": [int(self._y[i])]}}}
            try:
                f = self._http.request("POST", f"{base}/feedback", body=json.dumps(fb).encode(), headers=self._headers)
                self._count(f"feedback_{f.status}")
            except urllib3.exceptions.HTTPError:
                self._count("feedback_unreachable")
        finally:
            self._slots.release()


def _read(body: bytes) -> tuple[str | None, str | None]:
    """The version that answered, and the class it predicted as the client sees it (a
    classifier's score row's argmax, by `names` when given; None for other outputs): the
    clients' side of the outputs the operator reads from Prometheus, for diagnosis."""
    try:
        msg = json.loads(body)
    except ValueError:
        return None, None
    try:
        version = str(msg["meta"]["tags"]["model_version"])
    except (KeyError, TypeError):
        version = None
    try:
        data = msg["data"]
        row = data["ndarray"][0]
        names = data.get("names") or []
        if not isinstance(row, list) or len(row) < 2:
            return version, None
        i = max(range(len(row)), key=row.__getitem__)
        return version, str(names[i]) if len(names) == len(row) else str(i)
    except (KeyError, TypeError, IndexError, ValueError):
        return version, None
