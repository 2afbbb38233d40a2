"""`templates.window_count` on a real Prometheus with a scrape gap across a window's start.

The gap is Prometheus itself restarted, as the sandbox's outage scenarios do: the requests
made while it was down and before the window began must not be counted, those after the
window began (while it was down) are, when the counter's sample at the start is known, and a
series born inside the window counts from zero. A plain ``x - x offset W`` is checked on the
same data to count the requests from before the window, so the test shows the gap is there.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from modeldeploy.analysis.templates import DEFAULT_ERRORS, format_duration, render

from sandbox import prometheus as prom_mod

from .conftest import NAMESPACE, Exporter

pytestmark = pytest.mark.prometheus

LOOKBACK = "2s"  # an analysis interval of 2 s over 1 s scrapes


def _count(prom: prom_mod.Prometheus, template: str, deployment: str, window_start: float, at: float) -> int:
    window = format_duration(round(at - window_start, 3))
    promql = render(template, {"namespace": NAMESPACE, "deployment": deployment, "predictor": "v1",
                               "window": window, "lookback": LOOKBACK})
    return round(sum(float(r["value"][1]) for r in prom.query(promql, at=at)))


def test_a_prometheus_restart_across_a_windows_start_counts_only_the_window(exporter: Exporter, workdir: Path) -> None:
    old, born = f"gap-{uuid.uuid4().hex[:8]}", f"born-{uuid.uuid4().hex[:8]}"
    group = prom_mod.TargetGroup([exporter.instance], labels={"namespace": NAMESPACE})
    prom = prom_mod.start(workdir / f"prometheus-{old}", scrape_interval="1s", targets=[group])
    try:
        exporter.observe(deployment=old, predictor="v1", requests=[[0.02, 100]])
        # A window starting here has a sample (of the 100) right at its start.
        before_gap = prom.wait_for_scrape(exporter.instance, after=time.time() + 0.05) + 0.01
        prom.process.stop()
        stopped = time.time()
        exporter.observe(deployment=old, predictor="v1", requests=[[0.02, 300]])  # before the window
        window_start = stopped + 5.0  # the last sample before it is 5 s old: more than LOOKBACK
        time.sleep(max(0.0, window_start + 0.2 - time.time()))
        exporter.observe(deployment=old, predictor="v1", requests=[[0.02, 7]])  # in it, but never scraped alone
        prom.start_again()
        first = prom.wait_for_scrape(exporter.instance, after=window_start, timeout=30)
        exporter.observe(deployment=old, predictor="v1", requests=[[0.02, 50]])
        exporter.observe(deployment=born, predictor="v1", requests=[[0.02, 20]])
        at = prom.wait_for_scrape(exporter.instance, after=max(first, time.time()) + 0.05) + 0.3

        # From the first sample inside the window: the 300 from before it are not counted
        # (nor are the 7 made before that sample: unknowable, and leaving them out is safe).
        assert _count(prom, DEFAULT_ERRORS, old, window_start, at) == 50
        # What the plain offset counts on the same data: the gap reaches back to the 100.
        x = ('seldon_api_executor_server_requests_seconds_count{deployment_name="{{deployment}}", '
             'predictor_name="{{predictor}}", namespace="{{namespace}}"}')
        plain = f"sum(clamp_min({x} - ({x} offset {{{{window}}}} or {x} * 0), 0))"
        assert _count(prom, plain, old, window_start, at) == 357
        # A window whose start has a recent sample counts everything after it, gap or not.
        assert _count(prom, DEFAULT_ERRORS, old, before_gap, at) == 357
        # Born inside the window: from zero.
        assert _count(prom, DEFAULT_ERRORS, born, window_start, at) == 20
    finally:
        prom.stop()
