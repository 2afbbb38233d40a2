"""An open-loop load generator: digits images at a fixed rate, and feedback with the true
label for a fraction of them.

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
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import urllib3
from sklearn.datasets import load_digits

from .router import PREDICTOR_HEADER


class LoadGenerator:
    def __init__(self, url: str, rate: float, feedback_fraction: float = 0.5, seed: int = 0,
                 workers: int = 16) -> None:
        self.url = url.rstrip("/")  # .../seldon/<ns>/<deployment>/api/v1.0
        self.rate = rate
        self.feedback_fraction = feedback_fraction
        digits = load_digits()
        self._x, self._y = digits.data.astype(np.float64), digits.target
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
            if self._slots.acquire(blocking=False):
                self._pool.submit(self._one, i, feedback)
            else:
                self._count("dropped")
            delay = next_at - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)

    def _one(self, i: int, feedback: bool) -> None:
        try:
            request = {"data": {"ndarray": [self._x[i].tolist()]}}
            body = json.dumps(request).encode()
            try:
                r = self._http.request("POST", f"{self.url}/predictions", body=body,
                                       headers={"Content-Type": "application/json"})
            except urllib3.exceptions.HTTPError:
                self._count("unreachable")
                return
            self._count(f"http_{r.status}")
            predictor = r.headers.get(PREDICTOR_HEADER, "")
            if r.status == 200 and predictor:
                self._count(f"served_by:{predictor}")
            if feedback and r.status == 200:
                fb = {"request": request, "truth": {"data": {"ndarray": [int(self._y[i])]}}}
                try:
                    f = self._http.request("POST", f"{self.url}/feedback", body=json.dumps(fb).encode(),
                                           headers={"Content-Type": "application/json", PREDICTOR_HEADER: predictor})
                    self._count(f"feedback_{f.status}")
                except urllib3.exceptions.HTTPError:
                    self._count("feedback_unreachable")
        finally:
            self._slots.release()
