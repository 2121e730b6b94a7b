"""The server-side drawings: the layered lineage layout and the metric sparklines (pure functions)."""

from __future__ import annotations

import itertools
from typing import Any

from app.web.lineage_layout import NODE_H, NODE_W, layout
from app.web.sparkline import MAX_POINTS, chosen_metrics, series, sparkline


def node(nid: str, kind: str, **flags: Any) -> dict[str, Any]:
    return {
        "id": nid,
        "kind": kind,
        "name": nid,
        "version": "1",
        "status": flags.pop("status", "registered"),
        "stale": flags.pop("stale", False),
        "quarantined": flags.pop("quarantined", False),
        "flags": [],
    }


def graph(nodes: list[dict[str, Any]], edges: list[tuple[str, str, str]], root: str) -> dict[str, Any]:
    return {
        "root": root,
        "direction": "upstream",
        "nodes": nodes,
        "edges": [{"child": c, "parent": p, "role": r} for c, p, r in edges],
    }


CHAIN = graph(
    [
        node("crit", "criteria"),
        node("ps", "prompt_set"),
        node("b1", "annotation_batch", quarantined=True, status="revoked"),
        node("b2", "annotation_batch"),
        node("ds", "preference_dataset", quarantined=True),
        node("base", "base_model"),
        node("rm", "reward_checkpoint", quarantined=True),
        node("pol", "policy_checkpoint", quarantined=True),
        node("dep", "deployment", quarantined=True, status="approved"),
    ],
    [
        ("b1", "crit", "criteria"),
        ("b1", "ps", "prompt_set"),
        ("b2", "crit", "criteria"),
        ("b2", "ps", "prompt_set"),
        ("ds", "b1", "batches"),
        ("ds", "b2", "batches"),
        ("rm", "ds", "datasets"),
        ("rm", "base", "base_model"),
        ("pol", "rm", "reward_checkpoint"),
        ("pol", "base", "reference_model"),
        ("dep", "pol", "policy_checkpoint"),
    ],
    root="dep",
)


def test_parents_sit_above_children_and_sources_just_above_their_nearest_child() -> None:
    drawing = layout(CHAIN)
    y = {n.id: n.y for n in drawing.nodes}
    for edge in CHAIN["edges"]:
        assert y[edge["parent"]] < y[edge["child"]], edge
    assert y["crit"] == y["ps"] < y["b1"] == y["b2"] < y["ds"] < y["rm"] < y["pol"] < y["dep"]
    assert y["base"] == y["ds"]  # pulled down beside the dataset, not up beside the criteria


def test_nodes_never_overlap_and_fit_the_canvas() -> None:
    drawing = layout(CHAIN)
    for a, b in itertools.combinations(drawing.nodes, 2):
        apart_x = a.x + NODE_W <= b.x or b.x + NODE_W <= a.x
        apart_y = a.y + NODE_H <= b.y or b.y + NODE_H <= a.y
        assert apart_x or apart_y, (a.id, b.id)
    assert all(n.x >= 0 and n.x + NODE_W <= drawing.width and n.y + NODE_H <= drawing.height for n in drawing.nodes)


def test_one_path_per_edge_and_a_waypoint_for_a_skipped_layer() -> None:
    drawing = layout(CHAIN)
    assert len(drawing.edges) == len(CHAIN["edges"])
    skipping = next(e for e in drawing.edges if "reference_model" in e.tooltip)
    assert skipping.path.count("C ") == 2 and " L " in skipping.path  # base -> waypoint -> policy
    assert all(e.path.count("C ") == 1 for e in drawing.edges if e is not skipping)


def test_flags_and_the_root_become_classes() -> None:
    classes = {n.id: n.classes.split() for n in layout(CHAIN).nodes}
    assert {"root", "quarantined", "status-approved"} <= set(classes["dep"])
    assert {"status-revoked", "quarantined"} <= set(classes["b1"])
    assert "quarantined" not in classes["b2"] and "root" not in classes["b2"]
    notes = {n.id: n.note for n in layout(CHAIN).nodes}
    assert notes["dep"] == "approved · quarantined" and notes["crit"] == ""


def test_layout_is_deterministic_and_reduces_crossings() -> None:
    # two independent chains given interleaved: each child should end up under its own parent
    g = graph(
        [
            node("a1", "criteria"),
            node("b1", "criteria"),
            node("b2", "annotation_batch"),
            node("a2", "annotation_batch"),
        ],
        [("a2", "a1", "criteria"), ("b2", "b1", "criteria")],
        root="a2",
    )
    first, second = layout(g), layout(g)
    assert [(n.id, n.x, n.y) for n in first.nodes] == [(n.id, n.x, n.y) for n in second.nodes]
    x = {n.id: n.x for n in first.nodes}
    assert (x["a1"] < x["b1"]) == (x["a2"] < x["b2"])


def test_a_single_record_and_long_names() -> None:
    lonely = node("x", "criteria")
    lonely["name"] = "a-very-long-criteria-name-that-does-not-fit-in-a-box"
    drawing = layout(graph([lonely], [], root="x"))
    assert len(drawing.nodes) == 1 and drawing.edges == []
    assert drawing.nodes[0].label.endswith("…") and len(drawing.nodes[0].label) <= 28


def test_sparkline_picks_loss_and_a_reward_series() -> None:
    keys = {"loss", "grad_norm", "rewards/accuracies", "learning_rate"}
    assert chosen_metrics(keys) == ["loss", "rewards/accuracies"]
    assert chosen_metrics({"objective/rlhf_reward", "train_loss"}) == ["train_loss", "objective/rlhf_reward"]
    assert chosen_metrics({"samples_per_second"}) == []


def test_sparkline_scales_points_into_the_box_and_thins_long_series() -> None:
    rows = [{"step": s, "loss": 1.0 / s} for s in range(1, 1001)] + [{"step": 1001, "loss": float("nan")}]
    points = series(rows, "loss")
    assert len(points) == 1000
    chart = sparkline("loss", points)
    assert chart is not None and chart.last_step == 1000 and chart.high == 1.0
    coords = [tuple(map(float, p.split(","))) for p in chart.points.split()]
    assert len(coords) <= MAX_POINTS + 1
    assert all(0 <= x <= chart.width and 0 <= y <= chart.height for x, y in coords)
    assert coords[0][1] < coords[-1][1]  # the loss falls: the line ends lower on the chart (larger y)
    flat = sparkline("reward", [(1, 0.5)])
    assert flat is not None and flat.points == f"{flat.width / 2:.1f},{flat.height / 2:.1f}"
    assert sparkline("loss", []) is None
