"""What the Seldon wrapper costs: the model in-process vs behind 1 and 2 gunicorn workers;
what the output monitor adds; what one hostile client does to everyone else's latency.

    $MODEL_VENV/bin/python model_server/benchmark.py [--mode wrapper|monitor|hostile]
        [--artifact DIR] [--seconds 5] [--batch 1] [--clients 1,4] [--blocks 24] [--profile]

--mode wrapper (default): the rows below. --mode monitor: `OutputMonitor` on a
classifier response (--batch rows) and on a regressor's (--batch values, the fine grid),
in-process with the wrapper's export of the counts (--profile: where that time goes) and
over HTTP against a pass-through component on the same wrapper (`BASELINE_MODULE` here: the
raw path, the same request guard, nothing counted). The configurations are called in
turn, request by request, so background load hits all alike; the added p50 is the median
over --blocks blocks of consecutive cycles of the difference of medians, with a 95 %
interval, and the load average is printed with it.
--mode hostile: one client's latency while another client, in its own process, sends
60 MB bodies (refused unread), bodies just under the 4 MiB limit, or half a body and
then stalls for 2 s; with 1 worker and with the image's 2.

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
import cProfile
import itertools
import json
import math
import multiprocessing as mp
import os
import pstats
import socket
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
from seldon_core.metrics import SeldonMetrics
from sklearn.datasets import load_digits

from modelserver import train
from modelserver.component import TorchClassifier
from modelserver.guard import DEFAULT_MAX_REQUEST_BYTES
from modelserver.launch import INTERFACE, MONITOR_INTERFACE, WORKERS, command, seldon_env
from modelserver.monitor import OutputMonitor


def summarize(name: str, latencies: list[float], wall: float, errors: int = 0) -> dict:
    ms = sorted(x * 1000 for x in latencies)
    return {
        "name": name,
        "n": len(ms),
        "rps": len(ms) / wall,
        "p50": statistics.median(ms),
        "p99": ms[min(len(ms) - 1, int(0.99 * len(ms)))],
        "errors": errors,
        "latencies": latencies,
    }


def in_process(name: str, call: Callable[[], object], seconds: float) -> dict:
    for _ in range(50):  # warm-up: first TorchScript calls run the profiling executor
        call()
    started = time.perf_counter()
    (latencies,) = in_turn([call], seconds)
    return summarize(name, latencies, time.perf_counter() - started)


def _client(url: str, payload: dict, seconds: float, out: mp.Queue) -> None:
    latencies, errors = [], 0
    session = requests.Session()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t = time.perf_counter()
        try:
            ok = session.post(url, json=payload, timeout=10).status_code == 200
        except requests.RequestException:
            ok = False
        latencies.append(time.perf_counter() - t)
        errors += not ok
    out.put((latencies, errors))


def over_http(name: str, url: str, payload: dict, clients: int, seconds: float, warmup: int = 20) -> dict:
    for _ in range(warmup):
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


def start_server(logdir: Path, name: str, params: dict, workers: int = 1,
                 interface: str = INTERFACE) -> tuple[ManagedProcess, str]:  # fmt: skip
    """A server as Seldon runs it, serving once every worker has loaded; its base URL."""
    http, metrics, grpc = free_port(), free_port(), free_port()
    argv = command(http, metrics, grpc, params, workers=workers, interface=interface)
    # This script's directory and `logdir` (where monitor mode writes its pass-through) on the path.
    env = {**os.environ, **seldon_env("bench", name, "2.0.0"), "INCLUDE_METRICS_IN_CLIENT_RESPONSE": "false",
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), str(logdir), os.environ.get("PYTHONPATH", "")])}
    server = ManagedProcess(f"{name} ({workers} workers)", argv, logdir / f"{name}-w{workers}.log", http, env).start()
    url = f"http://127.0.0.1:{http}"
    server.wait_until(lambda: port_open(http) and requests.get(url + "/health/status", timeout=1).ok, 60)
    # Every worker loads on its own: wait until each has answered once.
    time.sleep(1.0)
    return server, url


def table(rows: list[dict], base: dict, what: str) -> None:
    header = (
        f"{'configuration':<50} {'requests':>8} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} "
        f"{'p50 / base':>10} {'base rps / rps':>14}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['name']:<50} {r['n']:>8} {r['rps']:>8.0f} {r['p50']:>8.3f} {r['p99']:>8.3f} {r['errors']:>6} "
            f"{r['p50'] / base['p50']:>10.1f} {base['rps'] / r['rps']:>14.1f}"
        )
    print(f"ratios are against '{base['name']}' ({what})")


def wrapper_mode(args: argparse.Namespace, artifact: Path, tmpdir: Path) -> None:
    clients = [int(c) for c in args.clients.split(",")]
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
        server, url = start_server(tmpdir, "model", {"model_uri": artifact.as_uri()}, workers)
        try:
            for c in clients:
                name = f"HTTP: {workers} worker(s), {c} client(s)"
                rows.append(over_http(name, url + "/api/v1.0/predictions", payload, c, args.seconds))
        finally:
            server.stop()
    print(f"batch {args.batch} image(s) per request, {args.seconds:g} s per row")
    table(rows, rows[1], "the wrapper's overhead")


#: The monitor's baseline on the wrapper: the raw path, the same request guard, nothing
#: counted. Written to a module of its own for the server to load, so that its process
#: imports what the monitor's does (the wrapper, numpy), not this script's torch: a larger
#: heap makes every garbage collection, and so the baseline, slower.
BASELINE_MODULE = """
from modelserver.guard import DEFAULT_MAX_REQUEST_BYTES, request_guard


class PassThrough:
    def __init__(self):
        self.model_error_handler = request_guard(DEFAULT_MAX_REQUEST_BYTES)

    def transform_output_raw(self, msg):
        return msg
"""


def _paired(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Median of the per-block differences b - a and a 95 % interval for it: the j-th
    smallest and largest differences, j the largest with 2 P(Binomial(n, 1/2) < j) <= 0.05
    (the median lies between them with at least that probability, whatever the
    distribution of the differences; the whole range when n < 6)."""
    d = sorted(y - x for x, y in zip(a, b))
    n = len(d)
    j = 1
    while 2 * sum(math.comb(n, i) for i in range(j + 1)) / 2**n <= 0.05:
        j += 1
    return statistics.median(d), d[j - 1], d[n - j]


def in_turn(calls: list[Callable[[], object]], seconds: float) -> list[list[float]]:
    """Latencies of each call, called in turn for `seconds`, the order rotating every
    cycle: consecutive requests to different targets see the same background load, so
    their differences are robust to load that comes and goes."""
    latencies: list[list[float]] = [[] for _ in calls]
    deadline, turn = time.perf_counter() + seconds, 0
    while time.perf_counter() < deadline:
        for k in range(len(calls)):
            j = (turn + k) % len(calls)
            t = time.perf_counter()
            calls[j]()
            latencies[j].append(time.perf_counter() - t)
        turn += 1
    return latencies


def _turns_client(targets: list[tuple[str, list[dict]]], seconds: float, out: mp.Queue) -> None:
    """`in_turn` over HTTP: each target's url gets its payloads in rotation."""
    session = requests.Session()
    errors = [0] * len(targets)

    def post(j: int, url: str, payloads: list[dict]) -> Callable[[], None]:
        rotation = itertools.cycle(payloads)

        def call() -> None:
            errors[j] += session.post(url, json=next(rotation), timeout=10).status_code != 200

        return call

    out.put((in_turn([post(j, url, payloads) for j, (url, payloads) in enumerate(targets)], seconds), errors))


def paired_blocks(base: list[float], other: list[float], blocks: int, unit: float) -> str:
    """The added p50: median over `blocks` consecutive blocks of cycles of (other's median
    - base's median), with its 95 % interval, in `unit`s of a second."""
    size = max(1, min(len(base), len(other)) // blocks)
    medians = [(statistics.median(base[i:i + size]), statistics.median(other[i:i + size]))
               for i in range(0, size * blocks, size)]  # fmt: skip
    median, low, high = _paired([m[0] for m in medians], [m[1] for m in medians])
    return f"{median / unit:.3f} (95 % interval {low / unit:.3f} to {high / unit:.3f})"


def monitor_mode(args: argparse.Namespace, artifact: Path, tmpdir: Path) -> None:
    (tmpdir / "passthrough.py").write_text(BASELINE_MODULE)
    sys.path.insert(0, str(tmpdir))
    from passthrough import PassThrough  # type: ignore[import-not-found]

    component = TorchClassifier(model_uri=str(artifact))
    component.load()
    X = load_digits().data[: args.batch]
    classifier = component.predict_raw({"data": {"ndarray": X.tolist()}})
    classifier["meta"].pop("metrics", None)  # as a model with INCLUDE_METRICS_IN_CLIENT_RESPONSE=false sends it
    # A regressor's responses (diabetes-like scores), counted on the fine grid (no bins
    # given), in rotation: each monitor worker then holds the ~40 series such a model fills
    # (the wrapper's export copies every one of them on every request).
    rng = np.random.default_rng(0)
    regressor = [{"data": {"names": [], "ndarray": rng.normal(150, 50, size=args.batch).round(2).tolist()},
                  "meta": {}} for _ in range(200)]  # fmt: skip
    responses = {"classifier": [classifier], "regressor": regressor}
    monitors = {"classifier": OutputMonitor(), "regressor": OutputMonitor(kind="regressor")}

    def export(component: object, payloads: list[dict]) -> Callable[[], None]:
        # What the wrapper does with the counts: round trips to its manager process, which
        # copy the worker's whole dict of series each way (so one SeldonMetrics each, as
        # each server has its own).
        exporter, rotation = SeldonMetrics(), itertools.cycle(payloads)

        def call() -> None:  # as seldon_methods.transform_output: the raw method, then the export
            out = component.transform_output_raw(next(rotation))  # type: ignore[attr-defined]
            exporter.update(out.get("meta", {}).get("metrics", []), "outputtransform")

        for _ in range(len(payloads) + 50):
            call()
        return call

    def alone(monitor: OutputMonitor, payloads: list[dict]) -> Callable[[], object]:
        rotation = itertools.cycle(payloads)
        return lambda: monitor.transform_output_raw(next(rotation))

    calls = {"pass-through + export": export(PassThrough(), responses["classifier"])}
    for kind, payloads in responses.items():
        calls[f"monitor, {kind}, alone"] = alone(monitors[kind], payloads)
        calls[f"monitor, {kind} + export"] = export(monitors[kind], payloads)
    if args.profile:
        profile(calls["monitor, regressor + export"])
    load = [os.getloadavg()[0]]
    local = dict(zip(calls, in_turn(list(calls.values()), args.seconds / 4)))
    servers = {
        "pass-through": start_server(tmpdir, "passthrough", {}, 1, "passthrough.PassThrough"),
        "monitor, classifier": start_server(tmpdir, "monitor", {}, 1, MONITOR_INTERFACE),
        "monitor, regressor": start_server(tmpdir, "regressor", {"kind": "regressor"}, 1, MONITOR_INTERFACE),
    }
    # Each monitor against the pass-through on the same response (the JSON's size matters).
    targets = {f"{server} ({kind})": (servers[server][1] + "/transform-output", responses[kind])
               for kind in responses for server in ("pass-through", f"monitor, {kind}")}  # fmt: skip
    try:
        for url, payloads in targets.values():
            for payload in payloads * max(1, 20 // len(payloads)):
                requests.post(url, json=payload, timeout=10)
        queue: mp.Queue = mp.Queue()
        client = mp.Process(target=_turns_client, args=(list(targets.values()), args.seconds, queue))
        client.start()
        latencies, errors = queue.get()
        client.join()
    finally:
        for server, _ in servers.values():
            server.stop()
    load.append(os.getloadavg()[0])
    print(f"a classifier response of {args.batch} row(s) x 10 scores, regressors' of {args.batch} value(s); each "
          f"table's rows called in turn, request by request ({args.seconds / 4:g} s in-process, {args.seconds:g} s "
          f"over HTTP: 1 client, 1 worker each); load average {load[0]:.2f} before, {load[1]:.2f} after")
    rows = [summarize(f"in-process: {name}", lat, args.seconds / 4) for name, lat in local.items()]
    table(rows, rows[0], "the pass-through with its export")
    http = dict(zip(targets, latencies))
    rows = [summarize(f"HTTP /transform-output: {name}", lat, args.seconds, e)
            for (name, lat), e in zip(http.items(), errors)]  # fmt: skip
    table(rows, rows[0], "the pass-through")
    print(f"added p50, median over {args.blocks} blocks of consecutive cycles:")
    for kind in responses:
        alone = statistics.median(local[f"monitor, {kind}, alone"]) * 1e6
        print(f"  {kind}: in-process, the monitor alone {alone:.1f} us; with the wrapper's export, against the "
              f"pass-through's, "
              f"{paired_blocks(local['pass-through + export'], local[f'monitor, {kind} + export'], args.blocks, 1e-6)}"
              f" us; over HTTP "
              f"{paired_blocks(http[f'pass-through ({kind})'], http[f'monitor, {kind} ({kind})'], args.blocks, 1e-3)}"
              " ms")
    print(f"what any extra graph node costs here (the pass-through's own p50 over HTTP): "
          f"{statistics.median(http['pass-through (classifier)']) * 1e3:.3f} ms")


def profile(call: Callable[[], None], n: int = 3000) -> None:
    """Where the per-request time goes: the monitor and the wrapper's export, in-process."""
    profiler = cProfile.Profile()
    profiler.runcall(lambda: [call() for _ in range(n)])
    print(f"profile of {n} calls (monitor, regressor + export), by own time:")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(14)


def _attack(url: str, kind: str, seconds: float, out: mp.Queue) -> None:
    """One hostile client, in a loop: how many attempts and how they ended."""
    host, port = url.split("//")[1].split("/")[0].split(":")
    row = json.dumps([0.0] * 64)
    body = b""
    if kind == "60 MB bodies":
        body = b" " * (60 * 1024 * 1024)
    elif kind in ("bodies just under the limit", "half a body, stall 2 s"):
        rows = (DEFAULT_MAX_REQUEST_BYTES - 64) // (len(row) + 2)
        body = ('{"data": {"ndarray": [' + ", ".join([row] * rows) + "]}}").encode()
    head = (f"POST /api/v1.0/predictions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Connection: close\r\nContent-Length: {len(body)}\r\n\r\n").encode()  # fmt: skip
    outcomes: dict[str, int] = {}
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        try:
            with socket.create_connection((host, int(port)), timeout=30) as sock:
                if kind == "half a body, stall 2 s":
                    sock.sendall(head + body[: len(body) // 2])
                    time.sleep(2.0)
                    sock.sendall(body[len(body) // 2 :])
                else:
                    sock.sendall(head)
                    try:
                        sock.sendall(body)
                    except OSError:  # refused unread: the server closed while we were sending
                        pass
                status = sock.recv(64).split(b" ")[1].decode()
        except OSError as e:
            status = type(e).__name__
        outcomes[status] = outcomes.get(status, 0) + 1
    out.put(outcomes)


def hostile_mode(args: argparse.Namespace, artifact: Path, tmpdir: Path) -> None:
    payload = {"data": {"ndarray": load_digits().data[:1].tolist()}}
    rows, notes = [], []
    for workers in sorted({1, WORKERS}):
        server, url = start_server(tmpdir, "model", {"model_uri": artifact.as_uri()}, workers)
        try:
            for kind in ("none", "60 MB bodies", "bodies just under the limit", "half a body, stall 2 s"):
                queue: mp.Queue = mp.Queue()
                attacker = mp.Process(target=_attack, args=(url, kind, args.seconds, queue))
                if kind != "none":
                    attacker.start()
                name = f"{workers} worker(s), hostile client: {kind}"
                rows.append(over_http(name, url + "/api/v1.0/predictions", payload, 1, args.seconds, warmup=0))
                if kind != "none":
                    notes.append(f"{name}: {queue.get()}")
                    attacker.join()
        finally:
            server.stop()
    print(f"one normal client (1 image per request, 10 s timeout) for {args.seconds:g} s per row")
    table(rows, rows[0], "no hostile client, 1 worker")
    print("the hostile client's requests, by outcome:")
    for note in notes:
        print("  " + note)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mode", choices=("wrapper", "monitor", "hostile"), default="wrapper")
    parser.add_argument("--artifact", type=Path, help="artifact directory (default: train 2.0.0)")
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--batch", type=int, default=1, help="images per request")
    parser.add_argument("--clients", default="1,4", help="concurrent clients per server run (wrapper mode)")
    parser.add_argument("--blocks", type=int, default=24, help="blocks of cycles compared pairwise (monitor mode)")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the monitor (monitor mode)")
    args = parser.parse_args(argv)
    print(f"{os.cpu_count()} CPUs, torch {torch.__version__}, python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory(prefix="modeldeploy-bench-") as tmp:
        tmpdir = Path(tmp)
        artifact = args.artifact
        if artifact is None:
            train.train_version(train.BETTER, tmpdir, seed=0)
            artifact = tmpdir / train.BETTER.version
        {"wrapper": wrapper_mode, "monitor": monitor_mode, "hostile": hostile_mode}[args.mode](args, artifact, tmpdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
