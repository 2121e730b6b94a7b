"""The server-side drawings: the layered lineage layout and the run charts (pure functions)."""

from __future__ import annotations

import itertools
from typing import Any

from app.web.lineage_layout import NODE_H, NODE_W, layout
from app.web.run_charts import MAX_POINTS, RunSource, charts, chosen_metrics, log_series, nice_ticks


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


def test_charts_pick_loss_reward_and_kl_whatever_the_trainer_called_them() -> None:
    keys = {"loss", "grad_norm", "rewards/margins", "learning_rate"}
    assert chosen_metrics(keys) == ["loss", "rewards/margins"]
    assert chosen_metrics(keys | {"rewards/accuracies"}) == ["loss", "rewards/margins", "rewards/accuracies"]
    assert chosen_metrics({"objective/rlhf_reward", "train_loss", "objective/kl"}) == [
        "train_loss",
        "objective/rlhf_reward",
        "objective/kl",
    ]
    assert chosen_metrics({"loss/policy_avg", "reward", "reward_std", "kl"}) == ["loss/policy_avg", "reward", "kl"]
    assert chosen_metrics({"samples_per_second"}) == []


def test_ticks_are_round_and_cover_the_range() -> None:
    assert nice_ticks(50, 150) == [50, 100, 150]
    ticks = nice_ticks(0.013, 0.87)
    assert ticks[0] <= 0.013 and ticks[-1] >= 0.87 and len(ticks) >= 3
    assert nice_ticks(-1, 1) == [-1.0, -0.5, 0.0, 0.5, 1.0]


def _coords(path: str) -> list[tuple[float, float]]:
    parts = path.replace("M ", "").split(" L ")
    return [(float(p.split()[0]), float(p.split()[1])) for p in parts]


def test_every_chart_shares_one_step_axis_and_stays_in_its_box() -> None:
    log = [{"step": s, "loss": 1.0 / s, "kl": s / 100, "reward": s / 10} for s in range(1, 1001)]
    log.append({"step": 1001, "loss": float("nan")})
    assert len(log_series(log, "loss")) == 1000
    checkpoints = [(250, {"mean_reward": 0.3, "kl_to_reference": 0.01}), (1000, {"mean_reward": 0.5, "step": 1000})]
    drawn = charts([RunSource("policy · run 1", log, checkpoints)])
    assert [c.title for c in drawn] == [
        "Training loss",
        "Training reward",
        "Training KL",
        "Checkpoint reward (reward model score)",
        "Checkpoint KL to reference (nats per token)",
    ]
    assert len({tuple(c.x_ticks) for c in drawn}) == 1  # the same step axis everywhere
    loss = drawn[0].lines[0]
    coords = _coords(loss.path)
    assert len(coords) <= MAX_POINTS + 1
    chart = drawn[0]
    assert all(chart.left <= x <= chart.right and chart.top <= y <= chart.bottom for x, y in coords)
    assert coords[0][1] < coords[-1][1]  # the loss falls: the line ends lower on the chart (larger y)
    marks = drawn[3].lines[0].marks
    assert [tip for _, _, tip in marks] == ["mean_reward: 0.3 at step 250", "mean_reward: 0.5 at step 1000"]
    # step 250 sits where the shared axis puts it
    (x0, t0), (x1, t1) = [(x, float(label)) for x, label in (chart.x_ticks[0], chart.x_ticks[-1])]
    assert abs(marks[0][0] - (x0 + (250 - t0) / (t1 - t0) * (x1 - x0))) < 0.1


def test_compared_runs_keep_their_colour_and_a_flat_or_single_point_is_drawn_mid_box() -> None:
    a = RunSource("policy · run 1", [{"step": s, "loss": 0.5} for s in (1, 2, 3)])
    b = RunSource("policy · run 2", [{"step": 10, "loss": 0.7}], [(10, {"win_rate": 0.6})])
    drawn = charts([a, b])
    loss, win = drawn
    assert [(line.label, line.colour) for line in loss.lines] == [
        ("policy · run 1 · loss", 0),
        ("policy · run 2 · loss", 1),
    ]
    assert [(line.label, line.colour) for line in win.lines] == [("policy · run 2 · win_rate", 1)]
    assert loss.x_ticks == win.x_ticks and loss.x_ticks[0][1] == "0" and loss.x_ticks[-1][1] == "10"
    ((_, y),) = _coords(win.lines[0].path)
    assert win.top < y < win.bottom
    assert charts([RunSource("empty", [])]) == []
