"""How the operator scales with the number of ModelDeployments. Not a test: run it and
read the table.

For each N it starts the operator as shipped (`python -m modeldeploy`, one namespace) on a
local control plane (etcd + kube-apiserver, sandbox.controlplane), with N ModelDeployments
and a small writer that plays Seldon's status (a watch on SeldonDeployments, like
tests/integration/seldon_player.py but without polling), and prints:

* start-up: seconds until every object has a status, and until every one is Stable;
* idle: API requests per second the operator makes once everything is Stable (from
  kube-apiserver's ``apiserver_request_total``, counting only the resources the operator
  touches: nothing else writes them while idle), per object, its CPU-seconds per minute;
* one change: seconds from a spec.model.version change to the candidate predictor in the
  SeldonDeployment, one object at a time (median, max);
* all N at once: the same latency when every object changes at once (median, max) and the
  time until the last one has its candidate;
* RSS of the operator (peak) and whether any object was starved (never got status or
  never got its candidate).

    python benchmarks/scale.py [--sizes 10,100,1000] [--idle 70] [--singles 10]

The idle window should be longer than the resync period (60 s), so that it holds one
resync of every object.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import tempfile
import threading
import time
import ssl
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO), str(REPO / "operator"), str(REPO / "experiments")]

from kubernetes import client, config, watch  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402

from sandbox import controlplane  # noqa: E402
from sandbox.harness import MDEP, SDEP, operator_process  # noqa: E402
from sandbox.kubeutil import install_crds  # noqa: E402
from tests.integration.seldon_player import seldon_status  # noqa: E402

OPERATOR_RESOURCES = ("modeldeployments", "seldondeployments", "events", "kopfpeerings")


def body(name: str, version: str) -> dict[str, Any]:
    return {
        "apiVersion": "modeldeploy.io/v1alpha1", "kind": "ModelDeployment", "metadata": {"name": name},
        "spec": {"model": {"name": "digits", "version": version, "uri": f"file:///models/digits/{version}"},
                 "strategy": {"canary": {"steps": [50, 100], "stepDuration": "1h"}}},
    }


class Cluster:
    """Watches one namespace: plays Seldon on SeldonDeployments and timestamps what happens."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.ns = namespace
        self.phase: dict[str, str] = {}
        self.first_status: dict[str, float] = {}
        self.candidate_seen: dict[str, float] = {}  # name -> when a 2.0.0 predictor first appeared
        self.writes = 0
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(4)
        self._threads = [threading.Thread(target=self._watch, args=(kind, fn), daemon=True)
                         for kind, fn in ((MDEP, self._on_mdep), (SDEP, self._on_sdep))]

    def __enter__(self) -> Cluster:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _watch(self, kind: tuple[str, str, str], on: Any) -> None:
        rv = None
        while not self._stop.is_set():
            try:
                if rv is None:
                    listed = self.custom.list_namespaced_custom_object(*kind[:2], self.ns, kind[2])
                    for item in listed["items"]:
                        on(item)
                    rv = listed["metadata"]["resourceVersion"]
                for ev in watch.Watch().stream(self.custom.list_namespaced_custom_object, *kind[:2], self.ns, kind[2],
                                               resource_version=rv, timeout_seconds=3600, allow_watch_bookmarks=True):
                    rv = ev["object"]["metadata"]["resourceVersion"]
                    if ev["type"] in ("ADDED", "MODIFIED"):
                        on(ev["object"])
                    if self._stop.is_set():
                        return
            except ApiException as e:
                rv = None if e.status == 410 else rv
                time.sleep(0.2)
            except Exception:  # noqa: BLE001 - a dropped stream: resume from the last version seen
                time.sleep(0.2)

    def _on_mdep(self, obj: dict[str, Any]) -> None:
        name, st = obj["metadata"]["name"], obj.get("status") or {}
        if st.get("phase"):
            self.first_status.setdefault(name, time.monotonic())
            self.phase[name] = st["phase"]

    def _on_sdep(self, sd: dict[str, Any]) -> None:
        name = sd["metadata"]["name"]
        if any(p["labels"]["version"] == "2.0.0" for p in sd["spec"]["predictors"]):
            self.candidate_seen.setdefault(name, time.monotonic())
        status = seldon_status(sd, set(), {})
        old = (sd.get("status") or {}).get("deploymentStatus") or {}
        if (sd.get("status") or {}).get("state") != status["state"] or old != status["deploymentStatus"]:
            status["deploymentStatus"].update({k: None for k in old if k not in status["deploymentStatus"]})
            self._pool.submit(self._write_status, name, status)

    def _write_status(self, name: str, status: dict[str, Any]) -> None:
        try:
            self.custom.patch_namespaced_custom_object_status(*SDEP[:2], self.ns, SDEP[2], name, {"status": status})
            self.writes += 1
        except ApiException:
            pass

    def wait(self, what: str, done: Any, timeout: float) -> float:
        t0 = time.monotonic()
        while not done():
            if time.monotonic() - t0 > timeout:
                raise TimeoutError(f"{what}: not after {timeout:.0f}s")
            time.sleep(0.05)
        return time.monotonic() - t0


def apiserver_requests(cp: controlplane.ControlPlane) -> dict[tuple[str, str], float]:
    """(verb, resource) -> requests so far, for the resources the operator uses (WATCHes
    count when they end)."""
    ctx = ssl.create_default_context(cafile=str(cp.workdir / "pki" / "ca.crt"))
    ctx.load_cert_chain(str(cp.workdir / "pki" / "admin.crt"), str(cp.workdir / "pki" / "admin.key"))
    text = urllib.request.urlopen(f"{cp.server}/metrics", context=ctx, timeout=10).read().decode()
    out: dict[tuple[str, str], float] = {}
    for line in text.splitlines():
        m = re.match(r'apiserver_request_total\{(.*)\} (\S+)$', line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(1)))
        if labels.get("resource") in OPERATOR_RESOURCES:
            key = (labels.get("verb", ""), labels["resource"] + (f"/{labels['subresource']}" if labels.get("subresource") else ""))
            out[key] = out.get(key, 0.0) + float(m.group(2))
    return out


def delta(after: dict[tuple[str, str], float], before: dict[tuple[str, str], float]) -> dict[str, float]:
    return {f"{v} {r}": n - before.get((v, r), 0.0) for (v, r), n in sorted(after.items()) if n > before.get((v, r), 0.0)}


def proc_stat(pid: int) -> tuple[float, float, float]:
    """(CPU seconds, RSS MB, peak RSS MB) of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return cpu, int(status["VmRSS"].split()[0]) / 1024, int(status["VmHWM"].split()[0]) / 1024


def run(cp: controlplane.ControlPlane, api: client.ApiClient, n: int, idle: float, singles: int,
        workdir: Path) -> dict[str, Any]:
    ns = f"scale-{n}-{int(time.time()) % 100000}"
    core, custom = client.CoreV1Api(api), client.CustomObjectsApi(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=ns)))
    names = [f"m{i:05d}" for i in range(n)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda nm: custom.create_namespaced_custom_object(*MDEP[:2], ns, MDEP[2], body(nm, "1.0.0")), names))
    out: dict[str, Any] = {"n": n}
    with Cluster(api, ns) as cl:
        # The chart's environment: its defaults for concurrency and resync (the operator's
        # own), nothing for memory (the operator sets its allocator up itself, see
        # __main__ and handlers); PYTHONPATH only finds the package, installed in the image.
        env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO / "operator"), os.environ.get("PYTHONPATH")])),
               "MODELDEPLOY_CONCURRENCY": "8", "MODELDEPLOY_RESYNC_SECONDS": "60"}
        op = operator_process(cp.kubeconfig, workdir / f"operator-{n}.log", [ns], env=env, tick=1.0).start()
        try:
            t_start = time.monotonic()
            out["startup_status"] = cl.wait("every object has status", lambda: len(cl.first_status) == n, 600)
            out["startup_stable"] = out["startup_status"] + cl.wait(
                "every object Stable", lambda: sum(p == "Stable" for p in cl.phase.values()) == n, 600)
            out["startup_cpu"] = proc_stat(op.pid)[0]
            print(f"  start-up: {time.monotonic() - t_start:.1f}s wall, {out['startup_cpu']:.1f}s CPU", file=sys.stderr)
            time.sleep(10)  # let the start-up writes' watch events settle
            r0, (c0, _, _) = apiserver_requests(cp), proc_stat(op.pid)
            w0 = cl.writes
            time.sleep(idle)
            r1, (c1, rss, _) = apiserver_requests(cp), proc_stat(op.pid)
            assert cl.writes == w0, "the writer wrote while idle: the figure would include its requests"
            idle_requests = delta(r1, r0)
            print(f"  idle requests in {idle:.0f}s: {idle_requests}", file=sys.stderr)
            out["idle_rps"] = sum(idle_requests.values()) / idle
            out["cpu_per_min"] = (c1 - c0) / idle * 60
            out["rss_idle"] = rss

            def change(nm: str) -> float:
                custom.patch_namespaced_custom_object(*MDEP[:2], ns, MDEP[2], nm,
                                                      {"spec": {"model": body(nm, "2.0.0")["spec"]["model"]}})
                return time.monotonic()

            one = []
            for nm in names[:singles]:
                t = change(nm)
                cl.wait(f"{nm}'s candidate", lambda nm=nm: nm in cl.candidate_seen, 60)
                one.append(cl.candidate_seen[nm] - t)
            out["one"] = one
            rest = names[singles:]
            t0, c0 = time.monotonic(), proc_stat(op.pid)[0]
            with ThreadPoolExecutor(8) as pool:
                sent = dict(zip(rest, pool.map(change, rest)))
            try:
                cl.wait("every candidate", lambda: all(nm in cl.candidate_seen for nm in rest), 300)
            except TimeoutError:
                pass
            got = [cl.candidate_seen[nm] - sent[nm] for nm in rest if nm in cl.candidate_seen]
            print(f"  all at once: {time.monotonic() - t0:.1f}s wall, {proc_stat(op.pid)[0] - c0:.1f}s CPU; "
                  f"sending the changes took {max(sent.values(), default=t0) - t0:.1f}s", file=sys.stderr)
            out["all"] = got
            out["all_total"] = max((cl.candidate_seen[nm] for nm in rest if nm in cl.candidate_seen), default=t0) - t0
            starved = sorted(set(names) - set(cl.first_status)) + [nm for nm in rest if nm not in cl.candidate_seen]
            if starved:
                print(f"  starved: {starved[:20]}", file=sys.stderr)
            out["starved"] = len(starved)
            out["rss_peak"] = proc_stat(op.pid)[2]
        finally:
            op.stop()
    return out


def table(rows: list[dict[str, Any]]) -> str:
    head = ("N", "start-up: status / Stable (s)", "idle req/s (per object)", "idle CPU s/min", "RSS MB (peak)",
            "one change med / max (s)", "all at once med / max / last (s)", "starved")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        lines.append("| " + " | ".join((
            str(r["n"]), f"{r['startup_status']:.1f} / {r['startup_stable']:.1f}",
            f"{r['idle_rps']:.2f} ({r['idle_rps'] / r['n']:.4f})", f"{r['cpu_per_min']:.2f}",
            f"{r['rss_idle']:.0f} ({r['rss_peak']:.0f})",
            f"{statistics.median(r['one']):.2f} / {max(r['one']):.2f}",
            f"{statistics.median(r['all']):.2f} / {max(r['all']):.2f} / {r['all_total']:.1f}" if r["all"] else "-",
            str(r["starved"]),
        )) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="10,100,1000", help="comma-separated N (default %(default)s)")
    p.add_argument("--idle", type=float, default=70, help="seconds of the idle measurement (default %(default)s)")
    p.add_argument("--singles", type=int, default=10, help="one-at-a-time changes per N (default %(default)s)")
    args = p.parse_args(argv)
    rows = []
    tmp = tempfile.mkdtemp(prefix="modeldeploy-scale-")
    print(f"operator logs in {tmp}", file=sys.stderr)
    with controlplane.start() as cp:
        conf = client.Configuration()
        config.load_kube_config(config_file=str(cp.kubeconfig), client_configuration=conf)
        conf.connection_pool_maxsize = 16
        api = client.ApiClient(conf)
        install_crds(api, [REPO / "crds" / "modeldeploy.io_modeldeployments.yaml",
                           REPO / "experiments" / "sandbox" / "crds" / "seldondeployments.yaml"])
        for n in (int(s) for s in args.sizes.split(",")):
            print(f"N={n}...", file=sys.stderr, flush=True)
            rows.append(run(cp, api, n, args.idle, min(args.singles, n // 2), Path(tmp)))
            print(table(rows[-1:]), file=sys.stderr, flush=True)
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
