"""What the Seldon wrapper costs: the model in-process vs behind 1 and 2 gunicorn workers.

    $MODEL_VENV/bin/python model_server/benchmark.py [--artifact DIR] [--seconds 5]
        [--batch 1] [--clients 1,4]

Without --artifact it trains 2.0.0 into a temporary directory. Each configuration
runs closed-loop clients (separate processes, so the client's GIL does not cap the
server) for --seconds, one REST request per loop (a new TCP connection each time:
gunicorn's sync workers do not keep connections alive). The in-process rows call
the same component the server runs, `TorchClassifier.predict` (validation, model,
softmax, counting), plus the bare TorchScript forward pass. Client and server share
the machine's CPUs, as they do in the sandbox: read the ratios, not the absolutes.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import requests
import torch
from sandbox.processes import ManagedProcess, free_port, port_open
from sklearn.datasets import load_digits

from modelserver import train
from modelserver.component import TorchClassifier
from modelserver.launch import command, seldon_env


def summarize(name: str, latencies: list[float], wall: float, errors: int = 0) -> dict:
    ms = sorted(x * 1000 for x in latencies)
    return {
        "name": name,
        "n": len(ms),
        "rps": len(ms) / wall,
        "p50": statistics.median(ms),
        "p99": ms[min(len(ms) - 1, int(0.99 * len(ms)))],
        "errors": errors,
    }


def in_process(name: str, call: Callable[[], object], seconds: float) -> dict:
    for _ in range(50):  # warm-up: first TorchScript calls run the profiling executor
        call()
    latencies = []
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        t = time.perf_counter()
        call()
        latencies.append(time.perf_counter() - t)
    return summarize(name, latencies, time.perf_counter() - started)


def _client(url: str, payload: dict, seconds: float, out: mp.Queue) -> None:
    latencies, errors = [], 0
    session = requests.Session()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t = time.perf_counter()
        ok = session.post(url, json=payload, timeout=10).status_code == 200
        latencies.append(time.perf_counter() - t)
        errors += not ok
    out.put((latencies, errors))


def over_http(name: str, url: str, payload: dict, clients: int, seconds: float) -> dict:
    for _ in range(20):
        requests.post(url, json=payload, timeout=10)
    queue: mp.Queue = mp.Queue()
    procs = [mp.Process(target=_client, args=(url, payload, seconds, queue)) for _ in range(clients)]
    started = time.perf_counter()
    for p in procs:
        p.start()
    results = [queue.get() for _ in procs]
    wall = time.perf_counter() - started
    for p in procs:
        p.join()
    latencies = [x for lat, _ in results for x in lat]
    return summarize(name, latencies, wall, sum(e for _, e in results))


def start_server(artifact: Path, workers: int, logdir: Path) -> tuple[ManagedProcess, str]:
    http, metrics, grpc = free_port(), free_port(), free_port()
    argv = command(http, metrics, grpc, {"model_uri": artifact.as_uri()}, workers=workers)
    env = {**os.environ, **seldon_env("bench", f"w{workers}", "2.0.0")}
    server = ManagedProcess(f"model server ({workers} workers)", argv, logdir / f"w{workers}.log", http, env).start()
    url = f"http://127.0.0.1:{http}"
    server.wait_until(lambda: port_open(http) and requests.get(url + "/health/status", timeout=1).ok, 60)
    # Every worker loads on its own: wait until each has answered once.
    time.sleep(1.0)
    return server, url + "/api/v1.0/predictions"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--artifact", type=Path, help="artifact directory (default: train 2.0.0)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=1, help="images per request")
    parser.add_argument("--clients", default="1,4", help="concurrent clients per server run")
    args = parser.parse_args(argv)
    clients = [int(c) for c in args.clients.split(",")]

    with tempfile.TemporaryDirectory(prefix="modeldeploy-bench-") as tmp:
        tmpdir = Path(tmp)
        artifact = args.artifact
        if artifact is None:
            train.train_version(train.BETTER, tmpdir, seed=0)
            artifact = tmpdir / train.BETTER.version
        X = load_digits().data[: args.batch]
        payload = {"data": {"ndarray": X.tolist()}}

        rows = []
        component = TorchClassifier(model_uri=str(artifact))
        component.load()  # sets torch to 1 thread, as in each server worker
        batch = X.astype(np.float32)
        module = component._loaded.module  # noqa: SLF001 - the bare model, for the floor
        with torch.inference_mode():
            forward = lambda: module(torch.from_numpy(batch))  # noqa: E731
            rows.append(in_process("in-process: TorchScript forward", forward, args.seconds))
        rows.append(in_process("in-process: TorchClassifier.predict", lambda: component.predict(X, []), args.seconds))

        for workers in (1, 2):
            server, url = start_server(artifact, workers, tmpdir)
            try:
                for c in clients:
                    rows.append(over_http(f"HTTP: {workers} worker(s), {c} client(s)", url, payload, c, args.seconds))
            finally:
                server.stop()

    base = rows[1]
    print(f"batch {args.batch} image(s) per request, {args.seconds:g} s per row, {os.cpu_count()} CPUs, "
          f"torch {torch.__version__}, python {sys.version.split()[0]}")  # fmt: skip
    header = (
        f"{'configuration':<40} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} "
        f"{'p50 / in-proc':>13} {'in-proc rps / rps':>17}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['name']:<40} {r['n']:>8} {r['rps']:>8.0f} {r['p50']:>8.3f} {r['p99']:>8.3f} {r['errors']:>6} "
            f"{r['p50'] / base['p50']:>13.1f} {base['rps'] / r['rps']:>17.1f}"
        )
    print("ratios are against 'in-process: TorchClassifier.predict' (the wrapper's overhead)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
