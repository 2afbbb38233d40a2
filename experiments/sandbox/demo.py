"""The README's main command: the whole system on one machine, two rollouts, a report.

    python -m sandbox.demo [SCENARIO ...] [--results DIR]

By default a healthy 2.0.0 that is promoted and a skewed candidate that is rolled back
(`--list` shows the others). Progress is printed live; at the end a summary table, and a
timeline (JSON) and a plot (PNG) in the results directory. Everything it starts is
stopped on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
import time
from pathlib import Path
from typing import Any

from . import report, scenarios, stack

DEFAULT = ("healthy", "skewed")


def _progress(name: str):  # noqa: ANN202 - a closure printing one line per change
    last: list[Any] = [None]

    def show(p: dict[str, Any]) -> None:
        a = p.get("analysis") or {}
        checks = ", ".join(f"{c['name']} {c['outcome']}" for c in a.get("checks") or [])
        line = f"  {p['t']:6.1f}s  {name:<16} {p['phase'] or '-':<12} weight {p['weight'] or 0:>3}%  " \
               f"{a.get('outcome', ''):<12} {checks}"
        key = (p["phase"], p["weight"], a.get("time"))
        if key != last[0]:
            print(line, flush=True)
            last[0] = key

    return show


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m sandbox.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("scenarios", nargs="*", default=list(DEFAULT), help=f"default: {' '.join(DEFAULT)}")
    p.add_argument("--results", type=Path, help="results directory (default results/<time>)")
    p.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = p.parse_args(argv)
    if args.list:
        for s in scenarios.SCENARIOS.values():
            print(f"{s.name:<16} expect {s.expect:<10} {s.description}")
        return 0
    unknown = [s for s in args.scenarios if s not in scenarios.SCENARIOS]
    if unknown:
        p.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(scenarios.SCENARIOS)}")
    results_dir = args.results or Path("results") / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    t0 = time.monotonic()
    print("Starting the sandbox: control plane, CRDs, Seldon stand-in, Prometheus, operator...", flush=True)
    results = []
    try:
        with stack.up() as s:
            print(f"  up in {time.monotonic() - t0:.0f}s; namespace {s.namespace}; Prometheus {s.prom.url}; "
                  f"router http://127.0.0.1:{s.router_port}", flush=True)
            for name in args.scenarios:
                sc = scenarios.SCENARIOS[name]
                print(f"\n== {name}: 1.0.0 -> {s.version(sc.artifact)} ({sc.description})", flush=True)
                r = scenarios.run(s, sc, on_point=_progress(name))
                results.append(r)
                mark = "as expected" if r.result == sc.expect else f"UNEXPECTED (wanted {sc.expect})"
                print(f"  => {r.result} after {r.seconds:.0f}s, {mark}: {r.reason[:200]}", flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted: everything was stopped", file=sys.stderr)
        return 130
    print("\n" + report.table(results))
    paths = report.write(results, results_dir)
    print(f"\nResults in {results_dir.resolve()}: {', '.join(p.name for p in paths.values())} "
          f"(total {time.monotonic() - t0:.0f}s)")
    return 0 if all(r.result == scenarios.SCENARIOS[r.scenario].expect for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
