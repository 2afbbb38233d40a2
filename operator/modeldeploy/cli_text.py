"""Text primitives for `kubectl modeldeploy`: colour only on a terminal, aligned tables,
human durations and numbers. No I/O."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from .state import Phase, Result
from .verdicts import Outcome


def parse_time(s: Any) -> datetime | None:
    if isinstance(s, datetime):
        return s if s.tzinfo else s.replace(tzinfo=timezone.utc)
    if not s:
        return None
    try:
        return datetime.fromisoformat(str(s).replace("Z", "+00:00"))
    except ValueError:
        return None


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_CODES = {"red": "31", "green": "32", "yellow": "33", "blue": "34", "magenta": "35", "cyan": "36", "bold": "1",
          "dim": "2"}
_COLOURS = {
    Phase.STABLE: "green", Phase.PENDING: "yellow", Phase.SHADOWING: "cyan", Phase.PROGRESSING: "cyan",
    Phase.AB_TESTING: "cyan", Phase.PAUSED: "yellow", Phase.PROMOTING: "green", Phase.ROLLING_BACK: "red",
    Phase.FAILED: "red",
    Outcome.PASS: "green", Outcome.FAIL: "red", Outcome.INCONCLUSIVE: "yellow", Outcome.ERROR: "magenta",
    Result.PROMOTED: "green", Result.ROLLED_BACK: "red", Result.ABORTED: "yellow", Result.NO_WINNER: "yellow",
    "Warning": "yellow",  # an event type
}


@dataclass(frozen=True)
class Style:
    """ANSI colour, on only when writing to a terminal (see cli.use_colour)."""

    colour: bool = False

    def paint(self, text: str, colour: str | None) -> str:
        if not self.colour or not colour or not text:
            return text
        return f"\x1b[{_CODES[colour]}m{text}\x1b[0m"

    def word(self, text: str) -> str:
        """A phase, verdict or result, in its colour."""
        return self.paint(text, _COLOURS.get(text))

    def bold(self, text: str) -> str:
        return self.paint(text, "bold")

    def dim(self, text: str) -> str:
        return self.paint(text, "dim")


PLAIN = Style(False)


def duration(seconds: float) -> str:
    """kubectl-like short durations: 45s, 3m12s, 25m, 4h5m, 3d."""
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    m, sec = divmod(s, 60)
    if m < 10:
        return f"{m}m{sec}s" if sec else f"{m}m"
    if m < 180:
        return f"{m}m"
    h, m = divmod(m, 60)
    if h < 8:
        return f"{h}h{m}m" if m else f"{h}h"
    if h < 48:
        return f"{h}h"
    return f"{h // 24}d"


def age(t: Any, now: datetime) -> str:
    when = parse_time(t)
    return "-" if when is None else duration((now - when).total_seconds())


def number(x: Any, digits: int = 4) -> str:
    if x is None:
        return "-"
    if isinstance(x, bool):
        return str(x).lower()
    if isinstance(x, int):
        return str(x)
    try:
        v = float(x)
    except (TypeError, ValueError):
        return str(x)
    if v != v:
        return "NaN"
    if v.is_integer() and abs(v) < 1e15:
        return str(int(v))
    return f"{v:.{digits}g}"


def _width(s: str) -> int:
    plain = _ANSI.sub("", s)
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in plain)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], style: Style = PLAIN, indent: str = "",
          right: Sequence[int] = ()) -> list[str]:
    """Aligned columns, two spaces apart; cells may carry colour codes. The last column is
    never padded (messages run as long as they are)."""
    cols = len(headers)
    widths = [max([_width(h) for h in [headers[i]]] + [_width(r[i]) for r in rows]) for i in range(cols)]
    out = []
    for n, row in enumerate([list(headers), *[list(r) for r in rows]]):
        cells = []
        for i, cell in enumerate(row):
            text = style.bold(cell) if n == 0 else cell
            pad = " " * (widths[i] - _width(cell))
            if i == cols - 1:
                cells.append(text if i not in right else pad + text)
            else:
                cells.append(pad + text if i in right else text + pad)
        out.append((indent + "  ".join(cells)).rstrip())
    return out


def fit(text: str, width: int) -> str:
    """Cut every line to `width` terminal columns (for --watch on a terminal, which redraws
    one screen); colour codes are kept and reset."""
    out = []
    for line in text.split("\n"):
        if _width(line) <= width:
            out.append(line)
            continue
        kept, cols, i = [], 0, 0
        while i < len(line) and cols < width - 1:
            m = _ANSI.match(line, i)
            if m:
                kept.append(m.group())
                i = m.end()
                continue
            kept.append(line[i])
            cols += _width(line[i])
            i += 1
        out.append("".join(kept) + ("\x1b[0m" if "\x1b[" in line else "") + "…")
    return "\n".join(out)


def bar(percent: int, width: int = 20) -> str:
    filled = round(max(0, min(100, percent)) * width / 100)
    return "█" * filled + "·" * (width - filled)


# -- the pieces of an object ----------------------------------------------------------------
