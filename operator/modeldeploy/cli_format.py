"""Rendering of `kubectl modeldeploy list` and `status`: plain data in, text out. No I/O,
and the clock is a parameter, so the output is tested exactly (tests/oncall). `history`
is rendered by `cli_history`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from . import COMMAND_ANNOTATION, routers
from .cli_history import EventRow
from .cli_text import PLAIN, Style, age, bar, number, parse_time, table
from .routing import Resource
from .schema import DEFAULTS
from .spec import SpecError, parse_duration as go_seconds
from .state import (
    AB_TESTING, FAILED, FINISHING, IN_ROLLOUT, PAUSE_ERRORS, PAUSE_INCONCLUSIVE, PAUSE_USER, PAUSED, PENDING,
    PROGRESSING, SHADOWING, ABTest, Status, traffic,
)


# -- small formatters ----------------------------------------------------------------------
def parse_duration(s: Any) -> float | None:
    """Seconds of a Go-style duration ("1m30s"); None when unparseable."""
    if s is None or isinstance(s, (int, float)):
        return None if s is None else float(s)
    try:
        return go_seconds(str(s), "duration")
    except SpecError:
        return None


def steps_of(mdep: Mapping[str, Any]) -> list[int]:
    strategy = (mdep.get("spec") or {}).get("strategy") or {}
    return list(((strategy.get("canary") or {}).get("steps")) or DEFAULTS["strategy.canary.steps"])


def is_ab_test(mdep: Mapping[str, Any]) -> bool:
    st, strategy = mdep.get("status") or {}, (mdep.get("spec") or {}).get("strategy") or {}
    return st.get("phase") == AB_TESTING or st.get("pausedFrom") == AB_TESTING or strategy.get("type") == "ABTest"


def step_text(mdep: Mapping[str, Any]) -> str:
    st = mdep.get("status") or {}
    if st.get("phase") not in IN_ROLLOUT + FINISHING or not st.get("candidateVersion"):
        return "-"
    if st.get("shadow"):
        return "shadow"
    if is_ab_test(mdep):
        return "A/B"
    if not st.get("stepStartedAt"):
        return "0/" + str(len(steps_of(mdep)))
    return f"{int(st.get('step') or 0) + 1}/{len(steps_of(mdep))}"


def weight_text(st: Mapping[str, Any]) -> str:
    """The candidate's share, by the operator's own rule (`state.traffic`)."""
    shares = traffic(Status.from_dict(st))
    if not st.get("candidateVersion") or shares is None or shares.candidate is None:
        return "-"
    return "shadow" if shares.shadow else f"{shares.candidate}%"


def verdict_text(st: Mapping[str, Any], now: datetime, style: Style) -> str:
    last = st.get("lastAnalysis") or {}
    outcome = last.get("outcome") or last.get("verdict")
    if not outcome:
        return "-"
    return f"{style.word(outcome)} ({age(last.get('time'), now)} ago)"


def last_rollout_text(st: Mapping[str, Any], now: datetime, style: Style, reason: bool = False) -> str:
    lr = st.get("lastRollout") or {}
    if not lr:
        return "-"
    text = f"{lr.get('version', '?')} {style.word(str(lr.get('result', '?')))} {age(lr.get('finishedAt'), now)} ago"
    if reason and lr.get("reason"):
        text += f": {lr['reason']}"
    return text


def _meta(mdep: Mapping[str, Any]) -> Mapping[str, Any]:
    return mdep.get("metadata") or {}


# -- list --------------------------------------------------------------------------------------
def render_list(items: Sequence[Mapping[str, Any]], now: datetime, style: Style = PLAIN,
                all_namespaces: bool = False) -> str:
    headers = (["NAMESPACE"] if all_namespaces else []) + [
        "NAME", "PHASE", "STABLE", "CANDIDATE", "WEIGHT", "STEP", "VERDICT", "LAST ROLLOUT", "AGE"]
    rows = []
    for m in sorted(items, key=lambda m: (_meta(m).get("namespace", ""), _meta(m).get("name", ""))):
        st = m.get("status") or {}
        phase = st.get("phase") or "-"
        rows.append(([_meta(m).get("namespace", "")] if all_namespaces else []) + [
            _meta(m).get("name", ""), style.word(phase), st.get("stableVersion") or "-",
            st.get("candidateVersion") or "-", weight_text(st), step_text(m), verdict_text(st, now, style),
            last_rollout_text(st, now, style), age(_meta(m).get("creationTimestamp"), now)])
    return "\n".join(table(headers, rows, style)) + "\n"


#: The resource the hints name unless the caller says otherwise: the default router's.
DEFAULT_RESOURCE = routers.get().resource


# -- status ---------------------------------------------------------------------------------
def _next_steps(mdep: Mapping[str, Any], resource: Resource) -> str | None:
    """What the on-call engineer can do now (phase-specific; see docs/runbook.md); `resource`
    is what the operator's router owns, named where the data plane is what we wait for."""
    st, spec = mdep.get("status") or {}, mdep.get("spec") or {}
    name, phase = _meta(mdep).get("name", "NAME"), st.get("phase")
    cmd = f"kubectl modeldeploy {{}} {name}"
    if phase == PAUSED:
        reason = st.get("pauseReason")
        if reason == PAUSE_USER or spec.get("paused"):
            return f"paused by spec.paused; `{cmd.format('resume')}` to continue, `{cmd.format('abort')}` to roll back"
        if reason == PAUSE_INCONCLUSIVE:
            return (f"not enough requests to judge the candidate: check it gets traffic; it resumes by itself when "
                    f"analysis passes, or `{cmd.format('resume')}` / `{cmd.format('abort')}`")
        if reason == PAUSE_ERRORS:
            return (f"the operator cannot read metrics (is Prometheus up? see the Error checks); it resumes by itself "
                    f"when they pass, or `{cmd.format('resume')}` / `{cmd.format('abort')}`")
        return f"`{cmd.format('resume')}` to continue, `{cmd.format('abort')}` to roll back"
    if phase == AB_TESTING:
        if ABTest.from_dict(st.get("abTest") or {}).winner == "candidate":
            return (f"the candidate won the A/B test and promoteWinner is false: `{cmd.format('promote')}` adopts it, "
                    f"`{cmd.format('abort')}` keeps {st.get('stableVersion')}")
        return (f"the test decides at minSamples feedback per version or maxDuration; `{cmd.format('promote')}` adopts "
                f"the candidate now, `{cmd.format('abort')}` ends the test")
    if phase in (PROGRESSING, SHADOWING):
        if not st.get("stepStartedAt"):
            return f"waiting for the {resource.kind} to report the candidate ready (it gets no traffic until then)"
        return f"`{cmd.format('promote')}` skips the remaining steps; `{cmd.format('abort')}` rolls back now"
    if phase == FAILED:
        lr = st.get("lastRollout") or {}
        if lr:
            return (f"{lr.get('version')} was {lr.get('result')}; fix it and set a new spec.model.version, or "
                    f"`{cmd.format('retry')}` to roll the same version out again")
        return f"the stable version never became available: check the {resource.kind} and its pods"
    if phase == PENDING:
        return (f"waiting for the {resource.kind} to report the model available "
                f"(kubectl get {resource.plural} {name}, then the pods)")
    return None


def render_status(mdep: Mapping[str, Any], events: Sequence[EventRow], now: datetime, style: Style = PLAIN,
                  max_events: int = 10, command_annotation: str = COMMAND_ANNOTATION,
                  resource: Resource = DEFAULT_RESOURCE) -> str:
    """`resource`: what the operator's router owns (`cli.router_resource`), for the hints."""
    meta, spec, st = _meta(mdep), mdep.get("spec") or {}, mdep.get("status") or {}
    phase = st.get("phase") or "-"
    lines: list[str] = []

    def field(label: str, value: str) -> None:
        lines.append(f"{style.bold(f'{label}:'.ljust(13))} {value}")

    field("Name", f"{meta.get('name')}  (namespace {meta.get('namespace')})")
    phase_text = style.word(phase)
    if phase == PAUSED and st.get("pauseReason"):
        phase_text += f" ({st['pauseReason']})"
    field("Phase", phase_text)
    if st.get("message"):
        field("Message", st["message"])
    gen, seen = meta.get("generation"), st.get("observedGeneration")
    if gen is not None and seen is not None and seen < gen:
        field("Note", style.paint(f"the operator has not yet acted on generation {gen} (status is of {seen})",
                                  "yellow"))
    elif st == {}:
        field("Note", style.paint("no status yet: is the operator running and watching this namespace?", "yellow"))
    model = spec.get("model") or {}
    field("Wanted", f"model {model.get('name', '?')} version {model.get('version', '?')} (spec.model)")
    annotations = meta.get("annotations") or {}
    if annotations.get(command_annotation):
        field("Command", style.paint(f"{command_annotation}={annotations[command_annotation]} "
                                     "(waiting for the operator to act on it)", "yellow"))
    if spec.get("paused"):
        field("Paused", "spec.paused is true (the rollout holds until it is false)")

    cand = st.get("candidateVersion")
    if cand and phase in IN_ROLLOUT + FINISHING:
        steps = steps_of(mdep)
        strategy = spec.get("strategy") or {}
        started = parse_time(st.get("stepStartedAt"))
        ab = strategy.get("abTest") or {}
        if st.get("shadow"):
            want = (strategy.get("shadow") or {}).get("duration", DEFAULTS["strategy.shadow.duration"])
            where = f"shadow (mirrored traffic), for {age(started, now)} of {want}" if started else "shadow"
        elif started is not None and is_ab_test(mdep):
            where = (f"A/B test at {100 - int(st.get('candidateWeight') or 0)}/{st.get('candidateWeight', 0)}, for "
                     f"{age(started, now)} (until {ab.get('minSamples', DEFAULTS['strategy.abTest.minSamples'])} "
                     f"feedback per version, at most {ab.get('maxDuration', DEFAULTS['strategy.abTest.maxDuration'])}; "
                     f"promoteWinner {str(ab.get('promoteWinner', DEFAULTS['strategy.abTest.promoteWinner'])).lower()})")
        elif started is None:
            where = f"0/{len(steps)}: waiting for the candidate to be ready (progressDeadline " \
                    f"{strategy.get('progressDeadline', DEFAULTS['strategy.progressDeadline'])})"
        else:
            i = int(st.get("step") or 0)
            want = (strategy.get("canary") or {}).get("stepDuration", DEFAULTS["strategy.canary.stepDuration"])
            where = f"{i + 1}/{len(steps)} at {st.get('candidateWeight', 0)}%, for {age(started, now)} " \
                    f"(stepDuration {want}; steps {', '.join(map(str, steps))})"
        field("Step", where)
        if st.get("rolloutStartedAt"):
            field("Rollout", f"{cand} started {age(st['rolloutStartedAt'], now)} ago ({st['rolloutStartedAt']})")
        c = st.get("counters") or {}
        a = spec.get("analysis") or {}
        field("Counters", f"failed {c.get('failed', 0)}/{a.get('failureLimit', DEFAULTS['analysis.failureLimit'])}  "
                          f"inconclusive {c.get('inconclusive', 0)}/"
                          f"{a.get('inconclusiveLimit', DEFAULTS['analysis.inconclusiveLimit'])}  "
                          f"errors {c.get('errors', 0)}/{a.get('errorLimit', DEFAULTS['analysis.errorLimit'])}")
    if st.get("lastRollout"):
        reason = (st["lastRollout"].get("reason") or "")
        # The message of a finished rollout already quotes its reason: say it once.
        field("Last rollout", last_rollout_text(st, now, style, reason=not reason or reason not in st.get("message", "")))
    conds = st.get("conditions") or []
    if conds:
        field("Conditions", "  ".join(f"{c.get('type')}={c.get('status')}" + (f" ({c['reason']})" if c.get("reason")
                                      else "") for c in conds))
    hint = _next_steps(mdep, resource)
    if hint:
        field("Next", hint)

    # traffic, by the rule the operator routes with
    shares = traffic(Status.from_dict(st))
    if shares is not None:
        lines += ["", style.bold("Traffic")]
        rows = [["stable", st.get("stablePredictor") or "-", st.get("stableVersion") or "-", f"{shares.stable}%",
                 bar(shares.stable)]]
        if shares.candidate is not None and shares.shadow:
            rows.append(["candidate", st["candidatePredictor"], cand or "-", "shadow",
                         "mirrored copy of the stable traffic; responses discarded"])
        elif shares.candidate is not None:
            rows.append(["candidate", st["candidatePredictor"], cand or "-", f"{shares.candidate}%",
                         bar(shares.candidate)])
        lines += table(["ROLE", "PREDICTOR", "VERSION", "WEIGHT", ""], rows, style, indent="  ", right=(3,))

    # A/B test: the reward comparison over the whole test so far
    if st.get("abTest") and phase in IN_ROLLOUT + FINISHING:
        ab = ABTest.from_dict(st["abTest"])
        winner = {"candidate": "candidate wins", "baseline": "baseline wins"}.get(str(ab.winner), "no winner yet")
        lines += ["", f"{style.bold('A/B test')} {style.word(ab.outcome or '?')}, {winner}, {age(ab.time, now)} ago"]
        conf = ab.confidence
        interval = f"[{number(ab.lower)}, {number(ab.upper)}]" if ab.lower is not None else "-"
        lines += table(["VERSION", "REWARD RATE", "FEEDBACK", "DIFFERENCE", f"{number(conf * 100) if conf else '?'}% CI",
                        "P-VALUE"],
                       [["baseline", number(ab.baselineRate), number(ab.nBaseline), "", "", ""],
                        ["candidate", number(ab.candidateRate), number(ab.nCandidate),
                         number(ab.difference), interval, number(ab.pValue, 3)]],
                       style, indent="  ", right=(1, 2, 3, 5))
        if ab.message:
            lines.append(f"  {ab.message}")

    # analysis
    last = st.get("lastAnalysis") or {}
    if last:
        outcome = last.get("outcome") or last.get("verdict") or "?"
        title = "Analysis" if phase in IN_ROLLOUT + FINISHING else "Last analysis (of the previous rollout)"
        lines += ["", f"{style.bold(title)} {style.word(outcome)}, {age(last.get('time'), now)} ago "
                      f"({last.get('time', '-')})"]
        checks = last.get("checks") or []
        if checks:
            rows = []
            for ch in checks:
                n_b, n_c = ch.get("n_baseline"), ch.get("n_candidate")
                rows.append([ch.get("name", "?"), style.word(str(ch.get("outcome") or ch.get("verdict") or "?")),
                             number(ch.get("baseline")), number(ch.get("candidate")), number(ch.get("threshold")),
                             f"{number(n_b)}/{number(n_c)}" if n_b is not None or n_c is not None else "-",
                             number(ch.get("statistic")), number(ch.get("p_value"), 3)])
            lines += table(["CHECK", "VERDICT", "BASELINE", "CANDIDATE", "THRESHOLD", "N (B/C)", "STATISTIC",
                            "P-VALUE"], rows, style, indent="  ", right=(2, 3, 4, 5, 6, 7))
            # Sequential checks: the increase and its confidence sequence against the margins,
            # and the evidence against the tolerance next to the e-value that fails the check.
            evidence = [[ch.get("name", "?"), number(ch.get("estimate")),
                         f"[{number(ch.get('lower'))}, {number(ch.get('upper'))}]" if "lower" in ch else "-",
                         number(ch.get("margin")), number(ch.get("pass_margin")), number(ch.get("e_value"), 3),
                         number(ch.get("threshold"))] for ch in checks if ch.get("e_value") is not None]
            if evidence:
                lines += [""] + table(["CHECK", "INCREASE", "CONFIDENCE SEQUENCE", "TOLERANCE", "PASS BELOW",
                                       "E-VALUE", "FAILS AT"], evidence, style, indent="  ", right=(1, 3, 4, 5, 6))
            for ch in checks:
                if ch.get("message"):
                    lines.append(f"  {style.bold(ch.get('name', '?'))}: {ch['message']}")
        elif last.get("message"):
            lines.append(f"  {last['message']}")

    # events
    lines += ["", style.bold("Events") + (f" (latest {max_events} of {len(events)})" if len(events) > max_events
                                          else "")]
    if not events:
        lines.append("  <none>")
    else:
        shown = sorted(events, key=lambda e: e.time)[-max_events:]
        rows = [[age(e.time, now), style.paint(e.type, "yellow" if e.type == "Warning" else None), e.reason,
                 e.message] for e in shown]
        lines += table(["AGE", "TYPE", "REASON", "MESSAGE"], rows, style, indent="  ")
    return "\n".join(lines) + "\n"
