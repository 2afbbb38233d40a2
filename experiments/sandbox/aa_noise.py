"""How often does an A/A A/B test name a winner? The operator's pipeline on simulated scrapes.

Real, i.e. the operator's own code: the PromQL (`Templates`, rendered by `measure_rewards`
at each look), the comparison (`measure_rewards` -> `compare_rewards`, either
`analysis.method`), the window and lookback the analyzer passes (whole seconds since the
test began, the analysis interval: `Analyzer.rewards`) and when the rollout decides (`judge_ab_test`: with the window method
at the first comparison that is decisive, winner or not; with sequential at the first
winner, else at maxDuration). A/A guard checks are taken to pass.

Simulated: Prometheus and what it scrapes. Each version's feedback is a Poisson stream,
each one rewarded with probability `accuracy` (as the model server scores a truth). Every
scrape target - each version's model server, each version's executor - is scraped every
`scrape` seconds at its own random phase, as Prometheus spreads targets; a counter's value
at time t is its value at the target's last scrape at or before t, at the query's
instant, and at the window's start as `templates.window_count` picks it. The simulated
Prometheus answers only the templates' shape (``sum(window_count(selector))``) on the
counters it knows, and refuses anything else, so it cannot drift from the queries the
operator sends.

Countings compared:
* default: `Templates()`: count and reward sum from the model server's pair of counters;
* executor: the previous default: the reward sum from the model server, the count of
  feedback requests from the executor histogram (another scrape target).

    python -m sandbox.aa_noise --runs 2000                 # the sandbox's settings
    python -m sandbox.aa_noise --runs 2000 --profile cluster
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, replace

import numpy as np

from modeldeploy.analysis import Target, Templates, measure_rewards
from modeldeploy.analysis.templates import prometheus_seconds, window_count
from modeldeploy.providers import QueryFailed, Sample
from modeldeploy.routers.seldon_v1 import SERIES
from modeldeploy.verdicts import Outcome

NAMESPACE, DEPLOYMENT, PREDICTORS = "ab", "digits", ("v1", "v2")
EXECUTOR_HISTOGRAM, FEEDBACK_COUNTER, FEEDBACK_REWARD_COUNTER = (
    SERIES.latency_histogram, SERIES.feedback_counter, SERIES.reward_counter)
_SELECT = 'namespace="{{namespace}}", deployment_name="{{deployment}}", predictor_name="{{predictor}}"'
#: The previous default: the executor's count of successful feedback requests.
EXECUTOR_FEEDBACK = "sum(" + window_count(
    f'{EXECUTOR_HISTOGRAM}_count{{{_SELECT}, service="feedback", code=~"2.."}}') + ")"
COUNTINGS = {"default": Templates(), "executor": Templates(feedback=EXECUTOR_FEEDBACK)}
# sum(window_count(SEL)) for one selector SEL, its window W and lookback L (the whole
# query is then compared with the template's, so the two cannot drift apart).
_QUERY = re.compile(r"^sum\(clamp_min\((?P<sel>[a-z_:]+\{[^{}]*\}) - \(last_over_time\((?P=sel)\[(?P<l>\w+)\] "
                    r"offset (?P<w>\w+)\)")
_MATCHER = re.compile(r'(\w+)(=~|=)"([^"]*)"')


@dataclass(frozen=True)
class Profile:
    rate: float  # feedback per second per version
    scrape: float  # Prometheus scrape interval, seconds
    interval: float  # analysis.interval, seconds
    min_samples: int  # strategy.abTest.minSamples
    max_duration: float  # strategy.abTest.maxDuration, seconds
    accuracy: float = 0.93


PROFILES = {
    # experiments/sandbox/scenarios.py: 40 req/s, half with feedback, split 50/50; 1 s scrapes.
    "sandbox": Profile(rate=10.0, scrape=1.0, interval=5.0, min_samples=300, max_duration=180.0),
    # The operator's defaults on a cluster scraped every 30 s.
    "cluster": Profile(rate=10.0, scrape=30.0, interval=30.0, min_samples=1000, max_duration=1800.0),
}


class ScrapedCounters:
    """The provider: Prometheus over simulated scrapes of two versions' counters."""

    def __init__(self, rng: np.random.Generator, p: Profile, accuracies: tuple[float, float]) -> None:
        horizon = p.max_duration + p.interval + 60.0
        self.scrape = p.scrape
        self.events: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # predictor -> (times, cumulative reward)
        self.phase: dict[tuple[str, str], float] = {}  # (target, predictor) -> scrape phase
        for predictor, accuracy in zip(PREDICTORS, accuracies):
            n = rng.poisson(p.rate * horizon)
            times = np.sort(rng.uniform(0.0, horizon, n))
            self.events[predictor] = (times, np.cumsum(rng.random(n) < accuracy))
            for target in ("model", "executor"):
                self.phase[(target, predictor)] = float(rng.uniform(0.0, p.scrape))

    def _scraped(self, metric: str, predictor: str, t: float) -> float:
        """When the counter's target was last scraped at or before t."""
        phase = self.phase[("executor" if metric.startswith(EXECUTOR_HISTOGRAM) else "model", predictor)]
        return float(np.floor((t - phase) / self.scrape) * self.scrape + phase)

    def _value(self, metric: str, predictor: str, t: float) -> float:
        """A counter at its target's last scrape at or before t (0 before it was born)."""
        times, rewards = self.events[predictor]
        i = int(np.searchsorted(times, self._scraped(metric, predictor, t), side="right"))
        if metric == FEEDBACK_REWARD_COUNTER:
            return float(rewards[i - 1]) if i else 0.0
        return float(i)

    def _window_count(self, metric: str, predictor: str, at: float, window: float, lookback: float) -> float | None:
        """`templates.window_count` over the simulated scrapes (no gaps here): the value
        at the window's start is the last scrape within `lookback` before it, else the
        first scrape inside the window, else nothing; a series is born with its first
        feedback (the model server creates its pair then)."""
        start = at - window
        before = self._scraped(metric, predictor, start)
        existed = self._value(FEEDBACK_COUNTER, predictor, before) > 0
        if not existed:
            return self._value(metric, predictor, at)  # born inside the window: from 0
        if before > start - lookback:
            return max(self._value(metric, predictor, at) - self._value(metric, predictor, before), 0.0)
        first = before + self.scrape
        if first > at:
            return None  # no sample inside the window
        return max(self._value(metric, predictor, at) - self._value(metric, predictor, first), 0.0)

    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        m = _QUERY.match(promql)
        sel, window, lookback = (m.group("sel"), m.group("w"), m.group("l")) if m else ("", "", "")
        expected = "sum(" + window_count(sel).replace("{{window}}", window).replace("{{lookback}}", lookback) + ")"
        if not m or at is None or promql != expected:
            raise QueryFailed("the simulation answers only sum(window_count(selector)) at a given time", promql)
        metric, _, matchers = sel.partition("{")
        labels = {k: (op, v) for k, op, v in _MATCHER.findall(matchers)}
        wanted = {"namespace": ("=", NAMESPACE), "deployment_name": ("=", DEPLOYMENT)}
        if metric.startswith(EXECUTOR_HISTOGRAM):
            ok = metric == f"{EXECUTOR_HISTOGRAM}_count" and labels.get("service") == ("=", "feedback") \
                and labels.get("code") == ("=~", "2..")
            wanted.update(service=labels.get("service"), code=labels.get("code"))
        else:
            ok = metric in (FEEDBACK_COUNTER, FEEDBACK_REWARD_COUNTER)
        predictor = labels.get("predictor_name", ("", ""))[1]
        if not ok or predictor not in self.events or {k: v for k, v in labels.items() if k != "predictor_name"} != wanted:
            raise QueryFailed("not a counter this simulation knows", promql)
        if self._value(FEEDBACK_COUNTER, predictor, at) == 0:
            return []  # no series yet: the model server creates its pair at the first feedback
        count = self._window_count(metric, predictor, at, prometheus_seconds(window), prometheus_seconds(lookback))
        return [] if count is None else [Sample({}, count)]

    def is_online(self) -> bool:
        return True


def one_test(rng: np.random.Generator, p: Profile, templates: Templates, confidence: float, sequential: bool,
             accuracies: tuple[float, float] | None = None) -> str | None:
    """One A/B test from its start to the rollout's decision: the winner named, or None."""
    provider = ScrapedCounters(rng, p, accuracies or (p.accuracy, p.accuracy))
    start = float(rng.uniform(30.0, 60.0))  # the test starts after traffic is flowing
    at = start + float(rng.uniform(0.0, p.interval))
    while at - start < p.max_duration:
        target = Target(NAMESPACE, DEPLOYMENT, *PREDICTORS, window=f"{max(1, int(at - start))}s")
        r = measure_rewards(target, provider, templates, confidence=confidence, min_samples=p.min_samples,
                            at=at, sequential=sequential, lookback_s=p.interval)
        # Inconclusive or Error (a reward sum over its count, which two scrape targets can
        # produce) decides nothing: the rollout looks again at the next interval.
        if r.outcome == Outcome.PASS:
            return r.winner
        at += p.interval
    return None


def winner_rate(runs: int, seed: int, p: Profile, counting: str, confidence: float, method: str,
                difference: float = 0.0) -> tuple[int, int]:
    """(tests naming a winner, tests naming the candidate) of `runs`; A/A when difference is 0."""
    rng = np.random.default_rng(seed)
    accuracies = (p.accuracy, p.accuracy + difference)
    winners = [one_test(rng, p, COUNTINGS[counting], confidence, method == "sequential", accuracies)
               for _ in range(runs)]
    return sum(w is not None for w in winners), sum(w == "candidate" for w in winners)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--profile", choices=sorted(PROFILES), default="sandbox")
    ap.add_argument("--confidence", type=float, nargs="+", default=[0.95, 0.99])
    ap.add_argument("--method", choices=("window", "sequential"), nargs="+", default=["window", "sequential"])
    ap.add_argument("--counting", choices=sorted(COUNTINGS), nargs="+", default=["default", "executor"])
    ap.add_argument("--scrape", type=float, help="override the profile's scrape interval (seconds)")
    ap.add_argument("--difference", type=float, default=0.0,
                    help="the candidate's accuracy minus the baseline's (0: an A/A test)")
    args = ap.parse_args(argv)
    p = PROFILES[args.profile] if args.scrape is None else replace(PROFILES[args.profile], scrape=args.scrape)
    print(f"profile {args.profile}: {p}, {args.runs} runs each, seed {args.seed}")
    for confidence in args.confidence:
        for method in args.method:
            for counting in args.counting:
                named, cand = winner_rate(args.runs, args.seed, p, counting, confidence, method, args.difference)
                head = f"confidence {confidence:g}, {method:10s}, {counting:8s} counting:"
                if args.difference == 0:
                    print(f"{head} A/A: a winner in {named}/{args.runs} = {named / args.runs:.1%} "
                          f"(bound 1 - confidence = {1 - confidence:.1%})", flush=True)
                else:
                    print(f"{head} candidate {args.difference:+g}: named the winner in {cand}/{args.runs} = "
                          f"{cand / args.runs:.1%}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
