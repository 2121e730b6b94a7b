"""Lineage graphs as Graphviz DOT and Mermaid text."""

from __future__ import annotations

import json
from typing import Any


def _label(node: dict[str, Any]) -> str:
    marks = [m for m, on in (("STALE", node["stale"]), ("QUARANTINED", node["quarantined"])) if on]
    status = f" [{node['status']}]" if node["status"] not in ("registered",) else ""
    suffix = f" ({', '.join(marks)})" if marks else ""
    return f"{node['kind']}\\n{node['name']} v{node['version']}{status}{suffix}"


def to_dot(graph: dict[str, Any]) -> str:
    lines = ["digraph lineage {", "  rankdir=BT;", '  node [shape=box, fontname="Helvetica"];']
    for node in graph["nodes"]:
        color = "red" if node["quarantined"] else "orange" if node["stale"] else "black"
        lines.append(f"  {json.dumps(node['id'])} [label={json.dumps(_label(node))}, color={color}];")
    for edge in graph["edges"]:
        lines.append(
            f"  {json.dumps(edge['child'])} -> {json.dumps(edge['parent'])} [label={json.dumps(edge['role'])}];"
        )
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_id(record_id: str) -> str:
    return "n" + record_id.replace("-", "")


def to_mermaid(graph: dict[str, Any]) -> str:
    lines = ["flowchart BT"]
    for node in graph["nodes"]:
        text = _label(node).replace("\\n", "<br/>").replace('"', "'")
        lines.append(f'  {_mermaid_id(node["id"])}["{text}"]')
        if node["quarantined"]:
            lines.append(f"  class {_mermaid_id(node['id'])} quarantined")
        elif node["stale"]:
            lines.append(f"  class {_mermaid_id(node['id'])} stale")
    for edge in graph["edges"]:
        lines.append(f"  {_mermaid_id(edge['child'])} -->|{edge['role']}| {_mermaid_id(edge['parent'])}")
    lines.append("  classDef quarantined stroke:#c00,stroke-width:2px")
    lines.append("  classDef stale stroke:#e80,stroke-dasharray: 4 2")
    return "\n".join(lines) + "\n"
