"""What a sandbox run leaves behind: a summary table, the timelines as JSON, a PNG plot."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .scenarios import Result

COLUMNS = ("scenario", "candidate", "result", "max weight", "candidate responses", "seconds", "reason")


def table(results: Sequence[Result], reason_width: int = 90) -> str:
    rows = [[str(r.row()[c]) for c in COLUMNS] for r in results]
    for row in rows:
        if len(row[-1]) > reason_width:
            row[-1] = row[-1][: reason_width - 1] + "…"
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(COLUMNS)]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([line(COLUMNS), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def _check(point: dict[str, Any], name: str) -> dict[str, Any]:
    for c in (point.get("analysis") or {}).get("checks") or []:
        if c.get("name") == name:
            return c
    return {}


def plot(results: Sequence[Result], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, len(results), figsize=(5.5 * len(results), 8), squeeze=False, sharex="col")
    for col, r in enumerate(results):
        pts = r.timeline.points
        t = [p["t"] for p in pts]
        ax = axes[0][col]
        cand, promoted = [], False
        for p in pts:  # after a promotion the status calls the candidate "stable"
            promoted = promoted or p["phase"] == "Promoting"
            cand.append(100 if promoted and p["phase"] in ("Promoting", "Stable") else (p["weight"] or 0))
        ax.step(t, cand, where="post", color="tab:orange", label=f"candidate {r.candidate}")
        ax.step(t, [100 - c for c in cand], where="post", color="tab:blue", label="stable 1.0.0")
        ax.set_title(f"{r.scenario}: {r.result}")
        ax.set_ylabel("traffic %")
        ax.set_ylim(-5, 105)
        ax.legend(loc="center left", fontsize=8)
        lat = [(p["t"], _check(p, "p99")) for p in pts if _check(p, "p99").get("candidate") is not None]
        ax = axes[1][col]
        if lat:
            ax.plot([x for x, _ in lat], [c["baseline"] for _, c in lat], "o-", color="tab:blue", label="baseline p99")
            ax.plot([x for x, _ in lat], [c["candidate"] for _, c in lat], "o-", color="tab:orange", label="candidate p99")
            ax.axhline(lat[0][1].get("threshold", 0), color="grey", ls="--", lw=1, label="limit")
            ax.set_yscale("log")
            ax.legend(fontsize=8)
        ax.set_ylabel("p99 latency (ms)")
        js = [(p["t"], _check(p, "outputs")) for p in pts if _check(p, "outputs").get("candidate") is not None]
        ax = axes[2][col]
        if js:
            ax.plot([x for x, _ in js], [c["candidate"] for _, c in js], "o-", color="tab:purple", label="Jensen–Shannon")
            ax.axhline(js[0][1].get("threshold", 0.1), color="grey", ls="--", lw=1, label="limit")
            ax.legend(fontsize=8)
        ax.set_ylabel("output divergence")
        ax.set_xlabel("seconds since the candidate was applied")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def write(results: Sequence[Result], directory: Path) -> dict[str, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    timeline = directory / "timeline.json"
    timeline.write_text(json.dumps([{"scenario": r.scenario, "summary": r.row(), "events": r.events,
                                     "points": r.timeline.points} for r in results], indent=1))
    summary = directory / "summary.md"
    summary.write_text(table(results, reason_width=400) + "\n")
    return {"timeline": timeline, "summary": summary, "plot": plot(results, directory / "rollouts.png")}
