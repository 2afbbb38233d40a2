"""`kubectl modeldeploy`: the on-call engineer's view of ModelDeployments, and the manual
controls of a rollout.

Installed as the console script ``kubectl-modeldeploy``, so kubectl finds it as a plugin
(``kubectl modeldeploy status digits -n team-a``); ``python -m modeldeploy.cli`` works
too. It talks to the API server only, as the user running it (kubeconfig, --context,
--as), never to the operator.

Manual controls, and why each works the way it does:

* ``promote``, ``abort``, ``retry`` set the one-shot annotation ``modeldeploy.io/command``;
  the operator acts on it at its next tick, records a ``Command<Name>`` event saying what
  it did (or why it refused: an unready candidate is never promoted), and removes it.
* ``pause`` sets ``spec.paused: true``: a durable pause that survives operator restarts
  and holds until someone clears it. (A ``pause`` annotation alone would be resumed at the
  next tick, since spec.paused is false.)
* ``resume`` sets ``spec.paused: false`` and the ``resume`` command in the same patch: the
  first ends a pause by a user, the second a pause the operator took itself when the
  analysis was inconclusive or could not read metrics.

Every write is conditional on the resourceVersion it checked (the phase is read, judged and
written in one step; a conflict re-reads and judges again).

Exit codes (scripts rely on them; docs/runbook.md lists them too): 0 ok, and for
``status --watch --exit-when-done`` the rollout was promoted (phase Stable); 1 error (API
server unreachable, bad kubeconfig); 2 usage; 3 not found; 4 forbidden or unauthorised;
5 not possible in the current phase ("no rollout in progress", "not paused", "nothing to
retry"); 6 the rollout ended without promotion (rolled back, aborted, no A/B winner:
phase Failed); 7 timed out (``--exit-when-done --timeout``, ``--wait --wait-timeout``);
8 the rollout was paused by a person (spec.paused or the pause command) and waits for
one (``--exit-when-done``; pauses the operator ends by itself are watched through).
Every time taken on the command line is a duration: "90s", "2m", "1m30s", "500ms", or
a bare number of seconds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from collections.abc import Mapping
from datetime import datetime, timezone
from typing import Any, NoReturn

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from . import COMMAND_ANNOTATION, GROUP, PLURAL, VERSION, __version__, routers
from .cli_data import FROM_EVENTS, FROM_STATUS, dump, history_doc, list_doc, status_doc, status_history
from .cli_format import parse_duration, render_list, render_status
from .cli_history import render_history
from .cli_kube import (EXIT_ERROR, EXIT_FORBIDDEN, EXIT_NOT_FOUND, EXIT_NOT_PROMOTED, EXIT_OK, EXIT_PAUSED,  # noqa: F401
                       EXIT_STATE, EXIT_TIMEOUT, EXIT_USAGE, CliError, Kubectl, connect, now_utc)
from .cli_text import Style, fit
from .routing import Resource
from .state import FAILED, FINISHING, IN_ROLLOUT, PAUSE_COMMAND, PAUSE_USER, PAUSED, STABLE

EXIT_CODES = {
    EXIT_OK: "ok; with --exit-when-done: promoted (Stable)", EXIT_ERROR: "error", EXIT_USAGE: "usage",
    EXIT_NOT_FOUND: "not found", EXIT_FORBIDDEN: "forbidden or unauthorised",
    EXIT_STATE: "not possible in the current phase",
    EXIT_NOT_PROMOTED: "the rollout ended without promotion (rolled back, aborted, no winner)",
    EXIT_TIMEOUT: "timed out (--exit-when-done --timeout, --wait --wait-timeout)",
    EXIT_PAUSED: "the rollout was paused by a person and waits for one (--exit-when-done)",
}
OUTPUTS = ("json", "yaml")


# -- commands --------------------------------------------------------------------------------
def use_colour(args: argparse.Namespace, stream: Any = None) -> bool:
    stream = stream or sys.stdout
    mode = getattr(args, "color", "auto") or "auto"
    if mode == "always":
        return True
    if mode == "never" or os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


def cmd_list(k: Kubectl, args: argparse.Namespace) -> int:
    items = k.list(args.all_namespaces)
    if args.output:
        sys.stdout.write(dump(list_doc(items), args.output))
        return EXIT_OK
    if not items:
        where = "any namespace" if args.all_namespaces else f'namespace "{k.namespace}"'
        print(f"No ModelDeployments found in {where}.", file=sys.stderr)
        return EXIT_OK
    sys.stdout.write(render_list(items, now_utc(), Style(use_colour(args)), args.all_namespaces))
    return EXIT_OK


def router_resource() -> Resource:
    """What the operator's router owns, for the status hints: MODELDEPLOY_ROUTER read as the
    operator reads it (default seldon-v1). The plugin cannot see the operator's environment,
    so with another router (the chart's operator.router) set the same variable here."""
    try:
        return routers.from_env().resource
    except ValueError as e:
        raise CliError(str(e), EXIT_USAGE) from None


def _status_text(k: Kubectl, mdep: Mapping[str, Any], args: argparse.Namespace, style: Style) -> str:
    events, note = k.events(mdep)
    text = render_status(mdep, events, now_utc(), style, max_events=args.events, resource=router_resource())
    return text + (f"  ({note})\n" if note else "")


def cmd_status(k: Kubectl, args: argparse.Namespace) -> int:
    style = Style(use_colour(args))
    if not args.watch:
        mdep = k.get(args.name)
        if args.output:
            events, note = k.events(mdep)
            sys.stdout.write(dump(status_doc(mdep, events, note), args.output))
        else:
            sys.stdout.write(_status_text(k, mdep, args, style))
        return EXIT_OK
    return watch(k, args, style)


def watch(k: Kubectl, args: argparse.Namespace, style: Style) -> int:
    """Redraw on a terminal; elsewhere (a pipe, a log) print a new block whenever the object
    or its events change (with -o, one document per change). Ctrl-C ends it with exit
    code 0. With --exit-when-done the exit code says how the rollout ended (see the
    module's docstring): a timeout is never mistaken for a promotion."""
    tty = bool(getattr(sys.stdout, "isatty", lambda: False)())
    last_key: Any = None
    deadline = time.monotonic() + args.timeout if args.timeout else None
    try:
        while True:
            mdep = k.get(args.name)
            events, note = k.events(mdep)
            st = mdep.get("status") or {}
            key = (mdep["metadata"].get("resourceVersion"), len(events), events[-1].time if events else None)
            if args.output:
                if key != last_key:
                    sys.stdout.write(("---\n" if args.output == "yaml" else "")
                                     + dump(status_doc(mdep, events, note), args.output))
                    sys.stdout.flush()
            elif tty:
                header = style.dim(f"Every {args.interval:g}s: kubectl modeldeploy status {args.name} -n "
                                   f"{k.namespace}    {now_utc():%Y-%m-%dT%H:%M:%SZ}   (Ctrl-C to stop)")
                text = render_status(mdep, events, now_utc(), style, max_events=args.events, resource=router_resource())
                screen = fit(header + "\n\n" + text + (f"  ({note})\n" if note else ""),
                             shutil.get_terminal_size().columns)
                sys.stdout.write("\x1b[H\x1b[2J" + screen)
                sys.stdout.flush()
            elif key != last_key:
                text = render_status(mdep, events, now_utc(), style, max_events=args.events, resource=router_resource())
                sys.stdout.write(f"--- {now_utc():%Y-%m-%dT%H:%M:%SZ} ---\n" + text
                                 + (f"  ({note})\n" if note else "") + "\n")
                sys.stdout.flush()
            last_key = key
            phase = st.get("phase")
            if args.exit_when_done and (st.get("observedGeneration") or 0) >= (mdep["metadata"].get("generation") or 0):
                if phase in (STABLE, FAILED):
                    return EXIT_OK if phase == STABLE else EXIT_NOT_PROMOTED
                # Only a person ends these pauses; the operator's own (missing data, metrics
                # errors, an unready stable predictor) may end by themselves: keep watching.
                if phase == PAUSED and st.get("pauseReason") in (PAUSE_USER, PAUSE_COMMAND):
                    return EXIT_PAUSED
            if deadline is not None and time.monotonic() >= deadline:
                if args.exit_when_done:
                    print(f"timed out after {args.timeout:g}s: {_phase_line(mdep)}", file=sys.stderr)
                    return EXIT_TIMEOUT
                return EXIT_OK
            time.sleep(args.interval)
    except KeyboardInterrupt:
        return EXIT_OK


def cmd_history(k: Kubectl, args: argparse.Namespace) -> int:
    mdep = k.get(args.name)
    rows, source, note = status_history(mdep), FROM_STATUS, None
    if rows is None:  # an operator without status.history: the events are what is left
        (rows, note), source = k.events(mdep), FROM_EVENTS
    if args.output:
        doc = history_doc(mdep, rows, source)
        if note:
            doc["eventsUnavailable"] = note
        sys.stdout.write(dump(doc, args.output))
        return EXIT_OK
    sys.stdout.write(render_history(mdep, rows, now_utc(), Style(use_colour(args)), from_status=source == FROM_STATUS))
    if note:
        print(f"  ({note})")
    return EXIT_OK


def _where(mdep: Mapping[str, Any]) -> str:
    m = mdep["metadata"]
    return f"{m['namespace']}/{m['name']}"


def _phase_line(mdep: Mapping[str, Any]) -> str:
    st = mdep.get("status") or {}
    phase = st.get("phase") or "without status"
    extra = f", stable {st['stableVersion']}" if st.get("stableVersion") else ""
    return f"{_where(mdep)} is {phase}{extra}"


def _no_rollout(mdep: Mapping[str, Any]) -> CliError:
    st = mdep.get("status") or {}
    if st.get("phase") in FINISHING:
        return CliError(f"the rollout is already finishing: {_phase_line(mdep)}", EXIT_STATE)
    return CliError(f"no rollout in progress: {_phase_line(mdep)}", EXIT_STATE)


def plan(command: str, mdep: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The merge patch that asks for `command`, and what it does; CliError when the
    current phase does not allow it."""
    st, spec = mdep.get("status") or {}, mdep.get("spec") or {}
    phase = st.get("phase")
    annotate = {"metadata": {"annotations": {COMMAND_ANNOTATION: command}}}
    if command in ("promote", "abort"):
        if phase not in IN_ROLLOUT:
            raise _no_rollout(mdep)
        if command == "promote":
            return annotate, (f"promote {st.get('candidateVersion')} now, skipping the remaining steps (the operator "
                              "refuses if the candidate is not ready)")
        return annotate, f"abort the rollout of {st.get('candidateVersion')}: all traffic returns to " \
                         f"{st.get('stableVersion')}"
    if command == "retry":
        lr = st.get("lastRollout") or {}
        wanted = (spec.get("model") or {}).get("version")
        if phase != FAILED or not lr or wanted == st.get("stableVersion"):
            raise CliError(f"nothing to retry: {_phase_line(mdep)} (retry restarts a rollout that was rolled back "
                           "or aborted, while spec.model.version still names it)", EXIT_STATE)
        return annotate, f"roll out {wanted} again from the first step"
    if command == "pause":
        if phase not in IN_ROLLOUT:
            raise _no_rollout(mdep)
        if spec.get("paused"):
            raise CliError(f"already paused: spec.paused is true ({_phase_line(mdep)})", EXIT_STATE)
        return {"spec": {"paused": True}}, (f"hold {st.get('candidateVersion')} at {st.get('candidateWeight', 0)}% "
                                            "(spec.paused=true) until `kubectl modeldeploy resume`")
    if command == "resume":
        if spec.get("paused"):
            body: dict[str, Any] = {"spec": {"paused": False}}
            if phase == PAUSED:
                body.update(annotate)
            return body, "clear spec.paused and continue the rollout from where it was held"
        if phase != PAUSED:
            if phase not in IN_ROLLOUT:
                raise _no_rollout(mdep)
            raise CliError(f"not paused: {_phase_line(mdep)}", EXIT_STATE)
        return annotate, f"resume the rollout paused by the operator ({st.get('pauseReason', 'unknown reason')})"
    raise CliError(f"unknown command {command}", EXIT_USAGE)


def _done(command: str, mdep: Mapping[str, Any]) -> bool:
    ann = (mdep["metadata"].get("annotations") or {}).get(COMMAND_ANNOTATION)
    phase = (mdep.get("status") or {}).get("phase")
    if command == "pause":
        return phase == PAUSED
    if command == "resume":
        return ann is None and phase != PAUSED
    return ann is None


def cmd_control(k: Kubectl, args: argparse.Namespace) -> int:
    command = args.command
    for _attempt in range(5):
        mdep = k.get(args.name)
        body, what = plan(command, mdep)
        body.setdefault("metadata", {})["resourceVersion"] = mdep["metadata"]["resourceVersion"]
        pending = (mdep["metadata"].get("annotations") or {}).get(COMMAND_ANNOTATION)
        try:
            k.custom.patch_namespaced_custom_object(GROUP, VERSION, k.namespace, PLURAL, args.name, body)
        except ApiException as e:
            if e.status == 409:  # the operator wrote status meanwhile: judge the new state
                continue
            raise k.error(e, f'patch {PLURAL}.{GROUP} "{args.name}" in namespace "{k.namespace}"', args.name) from None
        except HTTPError as e:
            raise CliError(f"cannot reach the API server at {k.api.configuration.host}: {e}") from None
        break
    else:
        raise CliError(f"{_where(mdep)} kept changing under us; try again")
    sent = datetime.now(timezone.utc)
    if pending and "metadata" in body and COMMAND_ANNOTATION in (body["metadata"].get("annotations") or {}):
        print(f"warning: replaced the pending command {pending!r}, which the operator had not acted on yet",
              file=sys.stderr)
    print(f"{command}: asked {_where(mdep)} to {what}.")
    if not args.wait:
        print(f"Follow it with: kubectl modeldeploy status {args.name} -n {k.namespace} --watch")
        return EXIT_OK
    deadline = time.monotonic() + args.wait_timeout
    while time.monotonic() < deadline:
        time.sleep(0.5)
        mdep = k.get(args.name)
        if _done(command, mdep):
            events, _ = k.events(mdep)
            # Events are stamped by the operator's clock, ours may differ: allow for skew.
            recent = [ev for ev in events if (ev.time - sent).total_seconds() > -5 and
                      (ev.reason.startswith("Command") or ev.reason in ("Paused", "Resumed", "Promoting", "Aborting"))]
            for ev in recent[-3:]:
                print(f"{ev.type} {ev.reason}: {ev.message}")
            print(_phase_line(mdep) + ".")
            return EXIT_OK
    raise CliError(f"the operator did not act on {command} within {args.wait_timeout:g}s: is it running and watching "
                   f'namespace "{k.namespace}"? (the request stays in place until it does)', EXIT_TIMEOUT)


# -- the command line ------------------------------------------------------------------------
def _common(p: argparse.ArgumentParser, top: bool) -> None:
    d: dict[str, Any] = {} if top else {"default": argparse.SUPPRESS}
    g = p.add_argument_group("cluster options")
    g.add_argument("-n", "--namespace", help="the namespace (default: the kubeconfig context's)", **d)
    g.add_argument("--context", help="the kubeconfig context to use", **d)
    g.add_argument("--kubeconfig", help="path to the kubeconfig (default: $KUBECONFIG or ~/.kube/config)", **d)
    g.add_argument("--as", dest="as_user", metavar="USER", help="impersonate USER (as kubectl --as)", **d)
    g.add_argument("--as-group", dest="as_group", action="append", metavar="GROUP", help="impersonate GROUP", **d)
    g.add_argument("--color", choices=("auto", "always", "never"),
                   help="colour output: auto (default) colours only on a terminal, and honours NO_COLOR", **d)


def seconds(text: str) -> float:
    """argparse type of every time on the command line: a duration ("3s", "2m", "1m30s",
    "500ms") or a bare number of seconds."""
    value: float | None
    try:
        value = float(text)
    except ValueError:
        value = parse_duration(text.strip())
    if value is None or value < 0 or value != value:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration: use e.g. 30s, 2m, 1m30s, 500ms or seconds")
    return value


def _output(s: argparse.ArgumentParser) -> None:
    s.add_argument("-o", "--output", choices=OUTPUTS, help="machine-readable output (one document; with --watch, "
                                                          "one per change)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kubectl modeldeploy",
        description="Inspect and steer modeldeploy rollouts (ModelDeployment, short name mdep).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="exit codes:\n" + "\n".join(f"  {code}  {text}" for code, text in EXIT_CODES.items())
               + "\n\ndurations: 30s, 2m, 1m30s, 500ms, or a bare number of seconds. See docs/runbook.md.",
    )
    p.add_argument("--version", action="version", version=f"kubectl-modeldeploy {__version__}")
    _common(p, top=True)
    sub = p.add_subparsers(dest="cmd", metavar="COMMAND", required=True)

    s = sub.add_parser("list", aliases=["ls", "get"], help="ModelDeployments with phase, versions, weight, verdict")
    s.add_argument("-A", "--all-namespaces", action="store_true", help="list across all namespaces")
    _output(s)
    s.set_defaults(func=cmd_list)

    s = sub.add_parser("status", help="one ModelDeployment: phase, step, weights, checks, recent events")
    s.add_argument("name")
    s.add_argument("-w", "--watch", action="store_true", help="keep watching (Ctrl-C stops)")
    s.add_argument("--interval", type=seconds, default=2.0, metavar="DURATION",
                   help="time between refreshes with --watch (default 2s)")
    s.add_argument("--exit-when-done", action="store_true",
                   help="with --watch: exit once the rollout ended or a person paused it: 0 promoted (Stable), "
                        "6 not promoted (Failed), 8 paused by a person; 7 when --timeout passes first")
    s.add_argument("--timeout", type=seconds, default=0, metavar="DURATION",
                   help="with --watch: stop after this long (e.g. 10m); exit code 7 with --exit-when-done")
    s.add_argument("--events", type=int, default=10, help="how many recent events to show (default 10)")
    _output(s)
    s.set_defaults(func=cmd_status)

    s = sub.add_parser("history", help="the last rollout and the transitions of past rollouts")
    s.add_argument("name")
    _output(s)
    s.set_defaults(func=cmd_history)

    helps = {
        "promote": "promote the candidate now, skipping the remaining steps (annotation)",
        "abort": "roll back now: all traffic to the stable version (annotation)",
        "pause": "hold the rollout at its current weight (spec.paused=true, durable)",
        "resume": "continue a paused rollout (spec.paused=false, and the resume annotation)",
        "retry": "roll a rolled-back or aborted version out again (annotation)",
    }
    for command, text in helps.items():
        s = sub.add_parser(command, help=text, description=text)
        s.add_argument("name")
        s.add_argument("--wait", action="store_true", help="wait until the operator has acted, and print what it did")
        s.add_argument("--wait-timeout", type=seconds, default=30.0, metavar="DURATION",
                       help="how long --wait waits (default 30s); exit code 7 when it passes")
        s.set_defaults(func=cmd_control, command=command)

    for s in {id(s): s for s in sub.choices.values()}.values():  # aliases share a parser
        _common(s, top=False)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        k = connect(args)
        return args.func(k, args)
    except CliError as e:
        print(f"error: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `kubectl modeldeploy list | head`
        return EXIT_OK


def _exit() -> NoReturn:
    sys.exit(main())


if __name__ == "__main__":
    _exit()
