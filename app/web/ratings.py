"""The ratings of a checkpoint evaluation campaign as the pages show them: a chart of each checkpoint's
Bradley-Terry rating with its 95% interval by training step, the reference model as the line at 0, the
candidate marked, and the table and sentences beside it.

The chart is drawn on the server as SVG geometry (as `app.web.run_charts` draws the run charts), from
the evaluation's derived figures only: the pages never recompute a rating. A campaign judged by an AI
judge (`ai_judged`) says so in its title, its legend and its candidate sentence, so that nobody reads it
as human evidence."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.records.models import Record
from app.web.run_charts import nice_ticks, numeric, tick_label

WIDTH, HEIGHT = 540, 230
COMPACT_WIDTH, COMPACT_HEIGHT = 400, 180
LEFT, RIGHT, TOP, BOTTOM = 56, 16, 16, 40
CAP = 5  # half the width of an interval bar's caps
PAD = 18  # pixels between the plot box's sides and the first and last checkpoint, for their bars and labels


@dataclass(frozen=True)
class RatedPoint:
    """One checkpoint: its rating at (x, y), its interval from y_low to y_high (SVG y grows downwards)."""

    x: float
    y: float
    y_low: float
    y_high: float
    label: str
    tip: str
    candidate: bool
    record: str


@dataclass(frozen=True)
class RatingsChart:
    title: str
    judge: str
    ai_judged: bool
    points: list[RatedPoint]
    path: str
    reference_y: float
    reference_label: str
    x_label: str
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    width: int
    height: int
    left: int = LEFT
    top: int = TOP

    @property
    def right(self) -> int:
        return self.width - RIGHT

    @property
    def bottom(self) -> int:
        return self.height - BOTTOM

    @property
    def cap(self) -> int:
        return CAP


def judge_of(derived: dict[str, Any]) -> str:
    """Who judged: "AI judge ai:rm@1" for an ai_preference evaluation, else the human evaluators."""
    evaluators = derived.get("evaluators") or []
    if derived.get("ai_judged"):
        return "AI judge " + ", ".join(evaluators) if evaluators else "AI judge"
    return f"{len(evaluators)} human evaluator{'s' if len(evaluators) != 1 else ''}"


def checkpoint_label(row: dict[str, Any]) -> str:
    step = row.get("step")
    return f"{row.get('name')} v{row.get('version')}" + (f" (step {step})" if step is not None else "")


def interval(row: dict[str, Any] | None) -> str:
    """`0.41 (95% interval 0.12 to 0.70)`, or "not measured" where the figures are missing."""
    if not row or numeric(row.get("rating")) is None:
        return "not measured"
    low, high = numeric(row.get("low")), numeric(row.get("high"))
    said = f"{row['rating']:.3g}"
    if low is not None and high is not None:
        said += f" (95% interval {low:.3g} to {high:.3g})"
    return said


def rated_checkpoints(derived: dict[str, Any]) -> list[dict[str, Any]]:
    """The checkpoints (never the reference) with a finite rating, in the campaign's order (by step)."""
    return [
        row
        for row in derived.get("ratings") or []
        if row.get("role") == "checkpoint" and numeric(row.get("rating")) is not None
    ]


def _x_positions(rows: list[dict[str, Any]]) -> tuple[list[float], str, list[tuple[float, str]]]:
    """Training steps when every checkpoint declares one, else their order labelled by version."""
    steps = [numeric(row.get("step")) for row in rows]
    if all(s is not None for s in steps) and len({s for s in steps}) == len(steps):
        xs = [float(s) for s in steps if s is not None]
        ticks = nice_ticks(min(xs), max(xs)) if max(xs) > min(xs) else [xs[0] - 1, xs[0], xs[0] + 1]
        return xs, "training step", [(t, tick_label(t)) for t in ticks]
    xs = [float(i) for i in range(len(rows))]
    return xs, "checkpoint", [(x, f"v{r.get('version')}") for x, r in zip(xs, rows, strict=True)]


def ratings_chart(derived: dict[str, Any], *, compact: bool = False) -> RatingsChart | None:
    """The chart of a campaign evaluation's ratings; None when no checkpoint has a rating."""
    rows = rated_checkpoints(derived)
    if not rows:
        return None
    width, height = (COMPACT_WIDTH, COMPACT_HEIGHT) if compact else (WIDTH, HEIGHT)
    xs, x_label, x_ticks = _x_positions(rows)
    values = [0.0]
    for row in rows:
        values += [v for key in ("rating", "low", "high") if (v := numeric(row.get(key))) is not None]
    low, high = min(values), max(values)
    if high == low:
        low, high = low - 1.0, high + 1.0
    y_ticks = nice_ticks(low, high)
    y_low, y_high = min(y_ticks[0], low), max(y_ticks[-1], high)
    x_low, x_high = x_ticks[0][0], x_ticks[-1][0]
    if x_high == x_low:  # one checkpoint, drawn mid-box
        x_low, x_high = x_low - 1, x_high + 1
    box_w, box_h = width - LEFT - RIGHT - 2 * PAD, height - TOP - BOTTOM

    def x_of(value: float) -> float:
        return LEFT + PAD + (value - x_low) / (x_high - x_low) * box_w

    def y_of(value: float) -> float:
        return TOP + (y_high - value) / (y_high - y_low) * box_h

    candidate = (derived.get("candidate") or {}).get("model")
    judge = judge_of(derived)
    points = []
    for x, row in zip(xs, rows, strict=True):
        rating = float(row["rating"])
        row_low, row_high = numeric(row.get("low")), numeric(row.get("high"))
        points.append(
            RatedPoint(
                x=x_of(x),
                y=y_of(rating),
                y_low=y_of(row_low if row_low is not None else rating),
                y_high=y_of(row_high if row_high is not None else rating),
                label=f"v{row.get('version')}" if x_label == "training step" else "",
                tip=f"{checkpoint_label(row)}: rating {interval(row)}, {judge}",
                candidate=row.get("model") == candidate,
                record=str(row.get("model")),
            )
        )
    reference: dict[str, Any] = next((r for r in derived.get("ratings") or [] if r.get("role") == "reference"), {})
    ai = bool(derived.get("ai_judged"))
    return RatingsChart(
        title=("AI judge: " if ai else "Human ") + "ratings across checkpoints",
        judge=judge,
        ai_judged=ai,
        points=points,
        path="M " + " L ".join(f"{p.x:.1f} {p.y:.1f}" for p in points),
        reference_y=y_of(0.0),
        reference_label=f"reference {checkpoint_label(reference)} = 0" if reference else "reference = 0",
        x_label=x_label,
        x_ticks=[(x_of(t), label) for t, label in x_ticks],
        y_ticks=[(y_of(t), tick_label(t)) for t in y_ticks if y_low <= t <= y_high],
        width=width,
        height=height,
    )


def candidate_sentence(derived: dict[str, Any]) -> str:
    """What the registry says about the series' candidate, in one or two sentences."""
    candidate = derived.get("candidate")
    by = "the AI judge" if derived.get("ai_judged") else "human evaluators"
    if not candidate:
        return f"No candidate: no checkpoint of the series has a rating from {by}."
    said = f"Candidate: {checkpoint_label(candidate)}, rated highest by {by}: {interval(candidate)}."
    # the registry's own advice says whether the interval overlaps the next one's, and what to do then
    advice = str(candidate.get("advice") or "").rstrip(".")
    if advice:
        return f"{said} {advice}."  # it opens with a record name, written as registered
    return said + (
        " Its interval overlaps that of the next-rated checkpoint." if candidate.get("overlaps_next") else ""
    )


def campaign_view(evaluation: Record, *, compact: bool = False) -> dict[str, Any]:
    """Everything a page prints about one campaign evaluation: who judged, the ratings table, the
    candidate and the chart."""
    derived = evaluation.derived
    candidate = (derived.get("candidate") or {}).get("model")
    rows = [
        {
            **row,
            "label": checkpoint_label(row),
            "interval": interval(row),
            "candidate": row.get("model") == candidate,
            "vs_reference": row.get("vs_reference"),
        }
        for row in derived.get("ratings") or []
    ]
    return {
        "evaluation": {"id": evaluation.id, "name": evaluation.name, "version": evaluation.version},
        "campaign": derived.get("campaign"),
        "series": derived.get("series"),
        "type": derived.get("type") or evaluation.spec.get("type"),
        "ai_judged": bool(derived.get("ai_judged")),
        "judge": judge_of(derived),
        "judgments": derived.get("judgments"),
        "rows": rows,
        "candidate": derived.get("candidate"),
        "candidate_sentence": candidate_sentence(derived),
        "chart": ratings_chart(derived, compact=compact),
        "compact": compact,
    }


def rating_of(derived: dict[str, Any], record_id: str) -> dict[str, Any] | None:
    """One model's row of a campaign evaluation's ratings (None when the campaign did not compare it)."""
    return next((row for row in derived.get("ratings") or [] if row.get("model") == record_id), None)
