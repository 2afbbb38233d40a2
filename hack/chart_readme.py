#!/usr/bin/env python3
"""Writes the values table of the chart's README (docs/chart/README.md) from
values.schema.json (keys, types, allowed values, descriptions) and values.yaml (defaults,
and the `# --` comments above a key where the schema has no description).

    python3 hack/chart_readme.py          # rewrite the table in docs/chart/README.md
    python3 hack/chart_readme.py --check  # exit 1 when it is stale (tests/adoption runs this)

hack/package-chart.sh packages the chart with this README instead of the repository's.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
README = REPO / "docs" / "chart" / "README.md"
START, END = "<!-- values-table:start (hack/chart_readme.py) -->", "<!-- values-table:end -->"


def comments(values_yaml: str) -> dict[str, str]:
    """`# -- text` comment blocks (continued by `#` lines) -> the dotted key below them."""
    out: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    block: list[str] | None = None
    for line in values_yaml.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            block = [stripped[4:].strip()]
            continue
        if stripped.startswith("#"):
            if block is not None:
                block.append(stripped[1:].strip())
            continue
        m = re.match(r"^(\s*)([A-Za-z0-9_]+):", line)
        if not m:
            block = None
            continue
        indent = len(m.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, m.group(2)))
        if block is not None:
            out[".".join(k for _, k in stack)] = " ".join(b for b in block if b)
        block = None
    return out


def resolve(schema: Mapping[str, Any], root: Mapping[str, Any]) -> Mapping[str, Any]:
    while "$ref" in schema:
        ref = schema["$ref"].split("/")[-1]
        schema = {**root["definitions"][ref], **{k: v for k, v in schema.items() if k != "$ref"}}
    return schema


def type_of(schema: Mapping[str, Any], root: Mapping[str, Any]) -> str:
    schema = resolve(schema, root)
    if "enum" in schema:
        return " \\| ".join(f"`{json.dumps(v)}`" for v in schema["enum"])
    if "anyOf" in schema:
        parts = []
        for alt in schema["anyOf"]:
            alt = resolve(alt, root)
            parts.append(f"`{json.dumps(alt['const'])}`" if "const" in alt else type_of(alt, root))
        return " or ".join(dict.fromkeys(parts))
    t = schema.get("type", "any")
    if t == "array":
        items = resolve(schema.get("items", {}), root)
        return f"list of {items.get('type', 'any')}s" if "type" in items else "list"
    if t == "object" and isinstance(schema.get("additionalProperties"), Mapping):
        return "map of strings"
    return str(t)


def rows(schema: Mapping[str, Any], root: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Mapping]]:
    for key, sub in (schema.get("properties") or {}).items():
        path = f"{prefix}{key}"
        sub = resolve(sub, root)
        if sub.get("type") == "object" and sub.get("properties"):
            yield from rows(sub, root, path + ".")
        else:
            yield path, sub


def default_of(values: Mapping[str, Any], path: str) -> Any:
    node: Any = values
    for k in path.split("."):
        if not isinstance(node, Mapping) or k not in node:
            return None
        node = node[k]
    return node


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table() -> str:
    root = json.loads((REPO / "values.schema.json").read_text())
    values_text = (REPO / "values.yaml").read_text()
    values, notes = yaml.safe_load(values_text), comments(values_text)
    lines = ["| key | type | default | description |", "| --- | --- | --- | --- |"]
    for path, sub in rows(root, root):
        default = default_of(values, path)
        shown = "" if default is None else f"`{cell(json.dumps(default, separators=(', ', ': ')))}`"
        parent = path.rsplit(".", 1)[0] if "." in path else ""
        description = notes.get(path) or sub.get("description") or notes.get(parent, "")
        lines.append(f"| `{path}` | {type_of(sub, root)} | {shown} | {cell(description)} |")
    return "\n".join(lines)


def render(current: str) -> str:
    if START not in current or END not in current:
        raise SystemExit(f"{README}: the markers {START!r} and {END!r} are missing")
    head, rest = current.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table()}\n{END}{tail}"


def main(argv: list[str]) -> int:
    current = README.read_text()
    wanted = render(current)
    if "--check" in argv:
        if wanted != current:
            print(f"{README.relative_to(REPO)} is stale: run python3 hack/chart_readme.py", file=sys.stderr)
            return 1
        return 0
    README.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
