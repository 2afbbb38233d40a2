"""A/B reward comparison: a winner only when the interval excludes zero."""

from __future__ import annotations

import pytest

from modeldeploy.analysis import AnalysisConfigError, Target, Templates, compare_rewards, measure_rewards, stats
from modeldeploy.routers.seldon_v1 import SERIES
from modeldeploy.providers import NoData, Sample
from modeldeploy.verdicts import Outcome


def test_candidate_wins_only_when_significant() -> None:
    r = compare_rewards(240, 400, 300, 400)
    assert r.winner == "candidate" and r.outcome == Outcome.PASS
    assert (r.difference, r.lower, r.upper) == stats.newcombe_interval(300, 400, 240, 400, 0.95)
    assert r.lower > 0 and r.message.startswith("candidate wins: reward 0.750 (400) vs baseline 0.600 (400)")


def test_no_winner_keeps_the_stable_version() -> None:
    r = compare_rewards(60, 100, 66, 100)  # +6 points, CI spans zero
    assert r.winner is None and r.lower < 0 < r.upper and r.message.startswith("no winner")


def test_baseline_wins() -> None:
    assert compare_rewards(900, 1000, 850, 1000).winner == "baseline"


def test_too_little_feedback_is_inconclusive_and_bad_rewards_an_error() -> None:
    assert compare_rewards(10, 20, 15, 20, min_samples=100).outcome == Outcome.INCONCLUSIVE
    r = compare_rewards(50, 20, 15, 20)
    assert r.outcome == Outcome.ERROR and "not a proportion" in r.message


def test_to_check_carries_the_numbers() -> None:
    c = compare_rewards(240, 400, 300, 400).to_check()
    assert (c.name, c.baseline, c.candidate, c.n_baseline) == ("reward", 0.6, 0.75, 400)
    assert c.statistic == pytest.approx(0.15)


class Fake:
    def __init__(self, answers: dict[str, list[Sample]]) -> None:
        self.answers = answers

    def query(self, promql: str, at: float | None = None) -> list[Sample]:
        for key, samples in self.answers.items():
            if key in promql:
                return samples
        return []

    def is_online(self) -> bool:
        return True


def test_reward_series_not_born_yet_means_zero_reward_not_no_data() -> None:
    # A user's reward query on the wrapper's counter, created at the first non-zero reward.
    provider = Fake({"modeldeploy_feedback_total{": [Sample({}, 200.0)]})
    r = measure_rewards(Target("ns", "d", "v1", "v2", window="10m"), provider, min_samples=100)
    assert r.outcome == Outcome.PASS and r.baseline_rate == 0 and r.candidate_rate == 0 and r.winner is None


def test_default_queries_read_count_and_reward_from_the_model_servers_pair() -> None:
    # Same target, same scrapes: the two selectors differ only in the metric name. Neither
    # the executor (another scrape target) nor the wrapper's count (skips reward 0).
    t = Templates()
    assert (SERIES.feedback_counter, SERIES.reward_counter) == ("modeldeploy_feedback_total",
                                                                 "modeldeploy_feedback_reward_total")
    assert t.feedback.replace(SERIES.feedback_counter, SERIES.reward_counter) == t.reward
    for query in (t.feedback, t.reward):
        assert "seldon_api" not in query and 'service="feedback"' not in query


def test_no_feedback_is_inconclusive_and_window_is_required() -> None:
    r = measure_rewards(Target("ns", "d", "v1", "v2", window="10m"), Fake({}))
    assert r.outcome == Outcome.INCONCLUSIVE and "no series matched" in r.message
    assert "modeldeploy_feedback_total" in r.message and "queries.feedback and .reward" in r.message
    assert isinstance(NoData("x"), Exception)
    with pytest.raises(AnalysisConfigError, match=r"^target\.window: required"):
        measure_rewards(Target("ns", "d", "v1", "v2"), Fake({}))
