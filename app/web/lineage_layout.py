"""A layered drawing of a lineage trace, computed here so the page needs no Graphviz binary and no script.

The steps of Sugiyama, Tagawa and Toda (1981), "Methods for visual understanding of hierarchical system
structures", kept small: every record gets the layer of its longest path from a source (parents above
children, so criteria sit at the top and deployments at the bottom), and a source moves down to just
above its nearest child; edges that skip layers get one
invisible waypoint per layer they cross, so they take part in the ordering and route around records;
the order inside each layer comes from alternating barycenter sweeps; layers are centred. The result is
geometry only; a template draws it."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from app.kinds.registry import display_order, label_of

NODE_W = 210
NODE_H = 62
WAYPOINT_W = 16
GAP_X = 26
GAP_Y = 64
MARGIN = 16
SWEEPS = 6
NAME_CHARS = 28

KIND_ORDER = display_order()


@dataclass
class PlacedNode:
    id: str
    x: float
    y: float
    kind: str
    title: str
    label: str
    note: str
    classes: str
    tooltip: str


@dataclass
class PlacedEdge:
    path: str
    tooltip: str
    classes: str


@dataclass
class Drawing:
    width: float
    height: float
    nodes: list[PlacedNode] = field(default_factory=list)
    edges: list[PlacedEdge] = field(default_factory=list)
    node_w: int = NODE_W
    node_h: int = NODE_H


def kind_label(kind: str) -> str:
    return label_of(kind)


def _layers(ids: list[str], parents: dict[str, list[str]]) -> dict[str, int]:
    """Longest path from a source, iteratively (a trace can be deeper than Python's recursion limit)."""
    layer: dict[str, int] = {}
    for start in ids:
        stack = [(start, False)]
        while stack:
            node, expanded = stack.pop()
            if node in layer:
                continue
            if expanded:
                layer[node] = 1 + max((layer[p] for p in parents.get(node, ())), default=-1)
                continue
            stack.append((node, True))
            stack.extend((p, False) for p in parents.get(node, ()) if p not in layer)
    return layer


def _sort_key(node: dict[str, Any]) -> tuple[int, str, str]:
    kind = node["kind"]
    rank = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
    return rank, node["name"], node["id"]


def _barycenters(row: list[str], reference: list[str], neighbours: dict[str, list[str]]) -> dict[str, float]:
    """Mean position of each item's neighbours in the reference layer; an item without any keeps its
    own position."""
    where = {item: pos for pos, item in enumerate(reference)}
    out: dict[str, float] = {}
    for pos, item in enumerate(row):
        positions = [where[n] for n in neighbours.get(item, ()) if n in where]
        out[item] = sum(positions) / len(positions) if positions else float(pos)
    return out


def _order(rows: list[list[str]], up: dict[str, list[str]], down: dict[str, list[str]]) -> None:
    """Barycenter sweeps, in place: down the layers by each item's upper neighbours, then up by its
    lower ones. Python's sort is stable, so ties keep the previous order."""
    for sweep in range(SWEEPS):
        if sweep % 2 == 0:
            for i in range(1, len(rows)):
                rows[i].sort(key=_barycenters(rows[i], rows[i - 1], up).__getitem__)
        else:
            for i in range(len(rows) - 2, -1, -1):
                rows[i].sort(key=_barycenters(rows[i], rows[i + 1], down).__getitem__)


def _truncate(text: str, limit: int = NAME_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _note(node: dict[str, Any]) -> str:
    marks = [node["status"]] if node["status"] not in ("registered",) else []
    marks += [flag for flag in ("quarantined", "stale") if node[flag]]
    return " · ".join(marks)


def _classes(node: dict[str, Any], root: str) -> str:
    names = ["node", f"kind-{node['kind'].replace('_', '-')}", f"status-{node['status']}"]
    names += [flag for flag in ("quarantined", "stale") if node[flag]]
    if node["id"] == root:
        names.append("root")
    return " ".join(names)


def _assign_layers(ordered: list[dict[str, Any]], edges: list[dict[str, Any]]) -> dict[str, int]:
    parents: dict[str, list[str]] = {}
    children: dict[str, list[str]] = {}
    for edge in edges:
        parents.setdefault(edge["child"], []).append(edge["parent"])
        children.setdefault(edge["parent"], []).append(edge["child"])
    layer = _layers([n["id"] for n in ordered], parents)
    # a record with no parents sits just above its nearest child, not always in the top layer (a base
    # model is drawn beside the dataset its reward checkpoint also takes, not beside the criteria)
    for node_id in list(layer):
        if node_id not in parents and node_id in children:
            layer[node_id] = min(layer[c] for c in children[node_id]) - 1
    return layer


@dataclass
class _Layered:
    """Records and waypoints by layer, with each item's neighbours one layer up and one layer down."""

    layer_of: dict[str, int]
    up: dict[str, list[str]] = field(default_factory=dict)
    down: dict[str, list[str]] = field(default_factory=dict)
    chains: list[tuple[dict[str, Any], list[str]]] = field(default_factory=list)


def _with_waypoints(edges: list[dict[str, Any]], layer: dict[str, int]) -> _Layered:
    """An edge from layer a to layer b > a + 1 passes through one waypoint per layer in between."""
    layered = _Layered(layer_of=dict(layer))
    for k, edge in enumerate(edges):
        parent, child = edge["parent"], edge["child"]
        chain = [parent]
        for depth in range(layer[parent] + 1, layer[child]):
            waypoint = f"~{k}:{depth}"
            layered.layer_of[waypoint] = depth
            chain.append(waypoint)
        chain.append(child)
        for upper, lower in itertools.pairwise(chain):
            layered.up.setdefault(lower, []).append(upper)
            layered.down.setdefault(upper, []).append(lower)
        layered.chains.append((edge, chain))
    return layered


def _centres(rows: list[list[str]], nodes: dict[str, Any]) -> tuple[dict[str, tuple[float, float]], float]:
    """(centre x, top y) of every item, each layer centred on the widest; and the canvas width."""

    def item_width(item: str) -> int:
        return NODE_W if item in nodes else WAYPOINT_W

    row_widths = [sum(item_width(i) for i in row) + GAP_X * max(len(row) - 1, 0) for row in rows]
    width = max(row_widths, default=NODE_W) + 2 * MARGIN
    centre: dict[str, tuple[float, float]] = {}
    for i, row in enumerate(rows):
        x = (width - row_widths[i]) / 2
        y = MARGIN + i * (NODE_H + GAP_Y)
        for item in row:
            centre[item] = (x + item_width(item) / 2, y)
            x += item_width(item) + GAP_X
    return centre, width


def layout(graph: dict[str, Any]) -> Drawing:
    """Geometry for `graph` as `app.lineage.service.trace` returns it."""
    nodes = {n["id"]: n for n in graph["nodes"]}
    edges = [e for e in graph["edges"] if e["child"] in nodes and e["parent"] in nodes]
    ordered = sorted(nodes.values(), key=_sort_key)
    layer = _assign_layers(ordered, edges)
    layered = _with_waypoints(edges, layer)

    depth = 1 + max(layered.layer_of.values(), default=-1)
    rows: list[list[str]] = [[] for _ in range(depth)]
    for node in ordered:
        rows[layer[node["id"]]].append(node["id"])
    for item in sorted(i for i in layered.layer_of if i not in nodes):
        rows[layered.layer_of[item]].append(item)
    _order(rows, layered.up, layered.down)
    centre, width = _centres(rows, nodes)

    drawing = Drawing(width=width, height=MARGIN * 2 + depth * NODE_H + max(depth - 1, 0) * GAP_Y)
    for node in ordered:
        cx, top = centre[node["id"]]
        drawing.nodes.append(
            PlacedNode(
                id=node["id"],
                x=cx - NODE_W / 2,
                y=top,
                kind=node["kind"],
                title=kind_label(node["kind"]),
                label=_truncate(f"{node['name']} v{node['version']}"),
                note=_note(node),
                classes=_classes(node, graph["root"]),
                tooltip=f"{kind_label(node['kind'])} {node['name']} v{node['version']} ({node['id']})",
            )
        )
    drawing.edges = [_edge(edge, chain, centre, nodes) for edge, chain in layered.chains]
    return drawing


def _edge(
    edge: dict[str, Any], chain: list[str], centre: dict[str, tuple[float, float]], nodes: dict[str, dict[str, Any]]
) -> PlacedEdge:
    """From the bottom of the parent, through each waypoint (straight down its band), into the top of
    the child."""
    x, top = centre[chain[0]]
    y = top + NODE_H
    commands = [f"M {x:.1f} {y:.1f}"]
    for item in chain[1:]:
        nx, ntop = centre[item]
        mid = (y + ntop) / 2
        commands.append(f"C {x:.1f} {mid:.1f}, {nx:.1f} {mid:.1f}, {nx:.1f} {ntop:.1f}")
        x, y = nx, ntop
        if item != chain[-1]:
            y = ntop + NODE_H
            commands.append(f"L {x:.1f} {y:.1f}")
    child, parent = nodes[edge["child"]], nodes[edge["parent"]]
    flagged = [flag for flag in ("quarantined", "stale") if child[flag] and parent[flag]]
    return PlacedEdge(
        path=" ".join(commands),
        tooltip=f"{child['name']} v{child['version']} ← {edge['role']} ← {parent['name']} v{parent['version']}",
        classes=" ".join(["edge", *flagged]),
    )
