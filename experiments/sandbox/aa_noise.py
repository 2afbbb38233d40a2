"""How often does an A/A A/B test name a winner? A simulation of the sandbox's counting.

Two identical versions get feedback as Poisson streams (each correct with probability
`accuracy`); the operator judges at its first analysis once both have `min_samples`
feedback in the window since the test began, with `compare_rewards`. Two ways to count:

* aligned: reward and feedback counts of a version cover the same feedback;
* scraped: as the default templates count in the sandbox: the reward sum from the model
  server's counter, the feedback count from the executor histogram (another target),
  each read from its own 1 s scrapes with independent phases, so at both ends of the
  window the two counts cover slightly different sets of feedback.

    python -m sandbox.aa_noise --runs 2000
"""

from __future__ import annotations

import argparse

import numpy as np

from modeldeploy.analysis import compare_rewards


def _scraped(times: np.ndarray, values: np.ndarray, at: float, phase: float, interval: float) -> float:
    """A counter's value as Prometheus returns it at `at`: its last scrape at or before."""
    scrape = np.floor((at - phase) / interval) * interval + phase
    return float(values[np.searchsorted(times, scrape, side="right") - 1]) if scrape >= times[0] else 0.0


def one_run(rng: np.random.Generator, aligned: bool, confidence: float, rate: float = 10.0, accuracy: float = 0.93,
            min_samples: int = 300, interval: float = 5.0, scrape: float = 1.0) -> str | None:
    start = 30.0
    horizon = start + 3 * min_samples / rate + 60
    streams = []
    for _ in range(2):
        t = np.cumsum(rng.exponential(1 / rate, int(horizon * rate * 1.5)))
        t = np.concatenate([[0.0], t[t < horizon]])
        ok = np.concatenate([[0], rng.random(len(t) - 1) < accuracy]).cumsum()
        n = np.arange(len(t))
        streams.append((t, n, ok))
    router_phase = rng.uniform(0, scrape)
    server_phase = rng.uniform(0, scrape, 2)
    at = start + rng.uniform(0, interval)
    while at < horizon:
        counts = []
        for v, (t, n, ok) in enumerate(streams):
            if aligned:
                i0, i1 = (np.searchsorted(t, x, side="right") - 1 for x in (start, at))
                counts.append((float(ok[i1] - ok[i0]), float(n[i1] - n[i0])))
            else:
                fb = _scraped(t, n, at, router_phase, scrape) - _scraped(t, n, start, router_phase, scrape)
                rw = _scraped(t, ok, at, server_phase[v], scrape) - _scraped(t, ok, start, server_phase[v], scrape)
                counts.append((max(rw, 0.0), fb))
        (rb, nb), (rc, nc) = counts
        if min(nb, nc) >= min_samples:
            # A reward sum over its feedback count is clipped as a proportion would be.
            return compare_rewards(min(rb, nb), nb, min(rc, nc), nc, confidence=confidence,
                                   min_samples=min_samples).winner
        at += interval
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    for confidence in (0.95, 0.999):
        for aligned in (True, False):
            winners = [one_run(rng, aligned, confidence) for _ in range(args.runs)]
            named = sum(w is not None for w in winners)
            print(f"confidence {confidence}: {'aligned' if aligned else 'scraped'} counts: a winner in {named}/{args.runs} "
                  f"A/A runs = {named / args.runs:.1%} (bound 1 - confidence = {1 - confidence:.1%})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
