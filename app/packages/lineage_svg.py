"""The package's lineage graph as a self-contained SVG drawn by the server (no Graphviz binary, nothing
fetched): a layered layout where each record sits one row below its deepest parent, so criteria and
prompt sets are on top and the deployment at the bottom; edges run from a child up to each parent."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

BOX_W, BOX_H, GAP_X, GAP_Y, MARGIN = 190, 46, 18, 56, 12
MAX_LABEL = 30


@dataclass(frozen=True)
class SvgNode:
    id: str
    kind: str
    label: str
    stale: bool
    quarantined: bool
    highlight: bool


def _depths(nodes: Sequence[SvgNode], edges: Sequence[tuple[str, str, str]]) -> dict[str, int]:
    parents: dict[str, set[str]] = {}
    for child, parent, _ in edges:
        parents.setdefault(child, set()).add(parent)
    depth: dict[str, int] = {}

    def visit(node: str, trail: frozenset[str]) -> int:
        if node in depth:
            return depth[node]
        above = [visit(p, trail | {node}) for p in sorted(parents.get(node, ())) if p not in trail]
        depth[node] = 1 + max(above) if above else 0
        return depth[node]

    for node in nodes:
        visit(node.id, frozenset())
    return depth


def _short(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def render_svg(nodes: Sequence[SvgNode], edges: Sequence[tuple[str, str, str]]) -> str:
    """`edges` are (child, parent, role) between the given nodes."""
    depth = _depths(nodes, edges)
    rows: dict[int, list[SvgNode]] = {}
    for node in sorted(nodes, key=lambda n: (n.kind, n.label, n.id)):
        rows.setdefault(depth[node.id], []).append(node)
    widest = max((len(r) for r in rows.values()), default=1)
    width = MARGIN * 2 + widest * BOX_W + (widest - 1) * GAP_X
    height = MARGIN * 2 + len(rows) * BOX_H + max(len(rows) - 1, 0) * GAP_Y
    where: dict[str, tuple[float, float]] = {}
    for level, row in rows.items():
        offset = (width - (len(row) * BOX_W + (len(row) - 1) * GAP_X)) / 2
        for i, node in enumerate(row):
            where[node.id] = (offset + i * (BOX_W + GAP_X), MARGIN + level * (BOX_H + GAP_Y))
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="lineage" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="10">'
    ]
    for child, parent, role in sorted(edges):
        if child not in where or parent not in where:
            continue
        cx, cy = where[child]
        px, py = where[parent]
        out.append(
            f'<line x1="{cx + BOX_W / 2:.1f}" y1="{cy:.1f}" x2="{px + BOX_W / 2:.1f}" y2="{py + BOX_H:.1f}" '
            f'stroke="#888" stroke-width="1"><title>{escape(role)}</title></line>'
        )
    for node in nodes:
        x, y = where[node.id]
        stroke = "#c00" if node.quarantined else "#e80" if node.stale else "#333"
        dash = ' stroke-dasharray="4 2"' if node.stale and not node.quarantined else ""
        fill = "#dbe9ff" if node.highlight else "#fff"
        flags = " ".join(f for f, on in (("QUARANTINED", node.quarantined), ("STALE", node.stale)) if on)
        out.append(
            f"<g id={quoteattr('node-' + node.id)}><title>{escape(node.id)}</title>"
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{BOX_W}" height="{BOX_H}" rx="4" fill="{fill}" '
            f'stroke="{stroke}" stroke-width="1.5"{dash}/>'
            f'<text x="{x + 6:.1f}" y="{y + 14:.1f}" font-weight="bold">{escape(node.kind)}</text>'
            f'<text x="{x + 6:.1f}" y="{y + 28:.1f}">{escape(_short(node.label))}</text>'
            + (f'<text x="{x + 6:.1f}" y="{y + 41:.1f}" fill="{stroke}">{escape(flags)}</text>' if flags else "")
            + "</g>"
        )
    out.append("</svg>")
    return "".join(out)
