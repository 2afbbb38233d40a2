"""A/B tests: which version earns more reward per feedback?

Reward is treated as a proportion (the model server sends reward 1 for a correct
prediction, 0 otherwise), so the comparison is a difference of two proportions with a
Newcombe hybrid-score interval. A winner is declared only when the interval excludes
zero; otherwise "no winner", and the rollout keeps the stable version. Fractional
rewards in [0, 1] are handled as expected counts (an approximation that is
conservative for rewards away from 0 and 1); rewards outside [0, 1] are an Error.

Counting: the reward sum and the feedback count of a version must cover the same
feedback, or the edges of the window add noise that no interval accounts for. The
default templates read both from our model server's pair of counters, updated together
and scraped together (`routing.MetricSeries.feedback_counter`); Seldon's own counters cannot serve
(the wrapper skips reward-0 feedback, the executor is another scrape target).

Validity: with `sequential`, the comparison is a confidence sequence and may be looked at
every interval; without it, Newcombe's interval is valid for one look, which is what the
rollout takes (it decides at the first comparison with `min_samples` per version, unless
the candidate leads before its guard checks have passed: then it looks again).
`sandbox.aa_noise` measures both on simulated A/A tests through the default queries.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..providers import MetricProvider, MetricQueryError, NoData
from ..verdicts import CheckResult, Outcome
from . import sequential as seq
from . import stats
from .errors import AnalysisConfigError
from .query import QuerySession, Target
from .templates import DEFAULT_FEEDBACK, Templates

DEFAULT_CONFIDENCE = 0.95
_NO_FEEDBACK_HINT = (" (no feedback counted yet: the default queries read the counters of modeldeploy's model "
                     "server; for another server set spec.analysis.queries.feedback and .reward)")


@dataclass(frozen=True)
class RewardComparison:
    outcome: Outcome  # Pass when the comparison was made (winner or not)
    winner: str | None  # "candidate", "baseline" or None
    message: str
    baseline_rate: float | None = None
    candidate_rate: float | None = None
    n_baseline: int | None = None
    n_candidate: int | None = None
    difference: float | None = None  # candidate - baseline
    lower: float | None = None
    upper: float | None = None
    confidence: float = DEFAULT_CONFIDENCE

    def to_check(self, name: str = "reward") -> CheckResult:
        """For status and events: the interval's lower bound is the `statistic`."""
        return CheckResult(name, self.outcome, self.message, baseline=self.baseline_rate,
                           candidate=self.candidate_rate, threshold=0.0, n_baseline=self.n_baseline,
                           n_candidate=self.n_candidate, statistic=self.difference)


def compare_rewards(baseline_reward: float, baseline_n: float, candidate_reward: float, candidate_n: float,
                    confidence: float = DEFAULT_CONFIDENCE, min_samples: int = 1,
                    sequential: bool = False) -> RewardComparison:
    """Pure: summed rewards and feedback counts of both versions -> winner or none.

    `sequential`: the interval is a confidence sequence (each version's beta-binomial
    sequence at (1 - confidence)/2, `sequential.difference_cs`) instead of Newcombe's
    fixed-sample interval. The A/B test compares at every interval, and a fixed-sample
    interval checked at every look names a false winner far more often than 1 -
    confidence; the sequence holds at all looks at once. Without a winner the outcome is
    Inconclusive (still collecting), so the test runs on until one emerges or maxDuration.
    """
    nb, nc = int(round(baseline_n)), int(round(candidate_n))
    if nb < min_samples or nc < min_samples:
        return RewardComparison(Outcome.INCONCLUSIVE, None,
                                f"too little feedback: baseline {nb}, candidate {nc} (minSamples {min_samples})",
                                n_baseline=nb, n_candidate=nc, confidence=confidence)
    for version, reward, n in (("baseline", baseline_reward, nb), ("candidate", candidate_reward, nc)):
        if reward < 0 or reward > n * (1 + 1e-9):
            return RewardComparison(Outcome.ERROR, None,
                                    f"{version}: reward {reward:g} over {n} feedback is not a proportion; rewards "
                                    "must be in [0, 1]", n_baseline=nb, n_candidate=nc, confidence=confidence)
    rb, rc = baseline_reward / nb, candidate_reward / nc
    if sequential:
        d = rc - rb
        lo, hi = seq.difference_cs(candidate_reward, nc, baseline_reward, nb, 1 - confidence, seq.JEFFREYS)
    else:
        d, lo, hi = stats.newcombe_interval(candidate_reward, nc, baseline_reward, nb, confidence)
    winner = "candidate" if lo > 0 else "baseline" if hi < 0 else None
    verdict = {"candidate": "candidate wins", "baseline": "baseline wins", None: "no winner"}[winner]
    if sequential and winner is None:
        # The sequence stays valid as feedback accumulates: keep comparing until a winner
        # emerges or maxDuration ends the test (a fixed-sample "no winner" at minSamples
        # would stop a test that more feedback could still decide).
        verdict = "no winner yet"
    msg = (f"{verdict}: reward {rc:.3f} ({nc}) vs baseline {rb:.3f} ({nb}), difference {d:+.3f}, "
           f"{confidence * 100:g}% {'confidence sequence' if sequential else 'CI'} [{lo:+.3f}, {hi:+.3f}]")
    outcome = Outcome.INCONCLUSIVE if sequential and winner is None else Outcome.PASS
    return RewardComparison(outcome, winner, msg, rb, rc, nb, nc, d, lo, hi, confidence)


def measure_rewards(target: Target, provider: MetricProvider, templates: Templates | None = None, *,
                    confidence: float = DEFAULT_CONFIDENCE, min_samples: int = 100,
                    at: float | None = None, sequential: bool = False,
                    lookback_s: float | None = None) -> RewardComparison:
    """Query reward sums and feedback counts over ``target.window`` and compare them.

    ``target.window`` is required (use the time since the A/B test began). No feedback
    data is Inconclusive; any other query problem is an Error. ``lookback_s`` as for
    `QuerySession` (the analysis interval).
    """
    if not target.window:
        raise AnalysisConfigError("target.window: required for a reward comparison (e.g. the A/B test's age)")
    tmpl = templates or Templates()
    session = QuerySession(provider, target.validated(target.window), at, lookback_s)
    values = {}
    for version, predictor in (("baseline", target.baseline), ("candidate", target.candidate)):
        try:
            n = session.value(tmpl.feedback, predictor)
            try:
                reward = session.value(tmpl.reward, predictor)
            except NoData:
                # A reward counter created at the first non-zero reward (the wrapper's,
                # in a user's query): feedback but no series yet means nothing earned.
                reward = 0.0
            values[version] = (reward, n)
        except MetricQueryError as e:
            outcome = Outcome.INCONCLUSIVE if e.inconclusive else Outcome.ERROR
            hint = _NO_FEEDBACK_HINT if isinstance(e, NoData) and tmpl.feedback == DEFAULT_FEEDBACK else ""
            return RewardComparison(outcome, None, f"{version} {predictor}: {e}{hint}", confidence=confidence)
    (rb, nb), (rc, nc) = values["baseline"], values["candidate"]
    return compare_rewards(rb, nb, rc, nc, confidence, min_samples, sequential)
