"""Charts of one or more runs on one step axis, drawn on the server as SVG geometry a template prints.

Two sources share the axis: the training log (one metrics event per logged step; TRL's names differ by
trainer, so each chart takes the first name a run logged from its list) and the evaluations of each
checkpoint the run registered (the checkpoint's own figures, and the summaries of evaluation records
registered against it), drawn as marked points at the checkpoint's step. Every chart of a page spans the
same steps, so a reading at step 150 lines up across charts and across compared runs."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

WIDTH = 540
HEIGHT = 200
LEFT, RIGHT, TOP, BOTTOM = 62, 14, 12, 38
MAX_POINTS = 300
COLOURS = 6  # series colours in web.css: .series-0 .. .series-5

LOSS = ("loss", "train_loss")
REWARD = ("objective/rlhf_reward", "reward", "objective/scores", "rewards/margins", "rewards/chosen")
KL = ("objective/kl", "kl")
ACCURACY = ("rewards/accuracies", "accuracy")
LOG_CHARTS = (
    ("loss", "Training loss", LOSS),
    ("reward", "Training reward", REWARD),
    ("kl", "Training KL", KL),
    ("accuracy", "Training preference accuracy", ACCURACY),
)
# checkpoint figures drawn together because they share a scale; any other figure gets a chart of its own
CHECKPOINT_GROUPS = (
    ("Checkpoint reward (reward model score)", ("mean_reward", "adversarial_mean_reward")),
    ("Checkpoint KL to reference (nats per token)", ("kl_to_reference",)),
)
NOT_FIGURES = {"step", "evaluation_prompts", "adversarial_prompts"}

Point = tuple[float, float]


@dataclass(frozen=True)
class RunSource:
    """What one run contributes: its label, log rows ({"step": n, metric: value}) and, per checkpoint,
    (step, {figure: value})."""

    label: str
    log: list[dict[str, Any]]
    checkpoints: list[tuple[int, dict[str, Any]]] = field(default_factory=list)


@dataclass(frozen=True)
class Line:
    label: str
    colour: int
    points: list[Point]
    marked: bool  # checkpoint figures: a dashed line through marked points
    metric: str
    variant: int = 0  # a second figure of one run in one chart: hollow marks


@dataclass(frozen=True)
class DrawnLine:
    label: str
    colour: int
    path: str
    marks: list[tuple[float, float, str]]
    dashed: bool
    last: str
    variant: int = 0


@dataclass(frozen=True)
class Chart:
    title: str
    slug: str
    lines: list[DrawnLine]
    x_ticks: list[tuple[float, str]]
    y_ticks: list[tuple[float, str]]
    note: str = ""
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = WIDTH - RIGHT
    top: int = TOP
    bottom: int = HEIGHT - BOTTOM


def numeric(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return None


def log_series(rows: list[dict[str, Any]], metric: str) -> list[Point]:
    out: list[Point] = []
    for row in rows:
        value, step = numeric(row.get(metric)), numeric(row.get("step"))
        if value is not None and step is not None:
            out.append((step, value))
    return out


def pick(keys: set[str], names: tuple[str, ...], word: str) -> str | None:
    """The first of `names` a run logged, else the first logged key holding `word` (not a spread)."""
    found = next((name for name in names if name in keys), None)
    if found is None:
        found = next((k for k in sorted(keys) if word in k and "std" not in k), None)
    return found


def chosen_metrics(keys: set[str]) -> list[str]:
    """The log metrics the charts draw (loss, a reward, a KL, a preference accuracy), in that order, where
    logged."""
    return [m for _, _, names in LOG_CHARTS if (m := pick(keys, names, names[0].split("/")[-1])) is not None]


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high]: steps of 1, 2 or 5 times a power of ten."""
    if high <= low:
        return [low]
    raw = (high - low) / max(count - 1, 1)
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value <= high + step * 1e-9:
        ticks.append(round(value, 12))
        value += step
    if ticks[-1] < high:
        ticks.append(round(value, 12))
    return ticks


def tick_label(value: float) -> str:
    return f"{value:.4g}"


def _thin(points: list[Point]) -> list[Point]:
    if len(points) <= MAX_POINTS:
        return points
    stride = math.ceil(len(points) / MAX_POINTS)
    return points[::stride] + ([points[-1]] if (len(points) - 1) % stride else [])


def draw(title: str, slug: str, lines: list[Line], steps: tuple[float, float]) -> Chart:
    """Scale `lines` into the plot box: x over `steps` (shared by every chart of the page), y over the
    values drawn here, padded so that a flat line sits in the middle."""
    values = [v for line in lines for _, v in line.points]
    low, high = min(values), max(values)
    if high == low:
        pad = abs(high) * 0.1 or 1.0
        low, high = low - pad, high + pad
    y_ticks = nice_ticks(low, high)
    y_low, y_high = min(y_ticks[0], low), max(y_ticks[-1], high)
    x_ticks = nice_ticks(steps[0], steps[1]) if steps[1] > steps[0] else [steps[0] - 1, steps[0], steps[0] + 1]
    x_low, x_high = x_ticks[0], x_ticks[-1]
    box_w, box_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x_of(step: float) -> float:
        return LEFT + (step - x_low) / (x_high - x_low) * box_w

    def y_of(value: float) -> float:
        return TOP + (y_high - value) / (y_high - y_low) * box_h

    drawn = []
    for line in lines:
        coords = [(x_of(s), y_of(v)) for s, v in _thin(line.points)]
        path = "M " + " L ".join(f"{x:.1f} {y:.1f}" for x, y in coords)
        marks = (
            [(x, y, f"{line.label}: {v:.4g} at step {s:g}") for (x, y), (s, v) in zip(coords, line.points, strict=True)]
            if line.marked
            else []
        )
        last_step, last_value = line.points[-1]
        drawn.append(
            DrawnLine(
                line.label,
                line.colour,
                path,
                marks,
                line.marked,
                f"{last_value:.4g} at step {last_step:g}",
                line.variant,
            )
        )
    return Chart(
        title=title,
        slug=slug,
        lines=drawn,
        x_ticks=[(x_of(t), tick_label(t)) for t in x_ticks],
        y_ticks=[(y_of(t), tick_label(t)) for t in y_ticks if y_low <= t <= y_high],
    )


def _checkpoint_lines(runs: list[RunSource], figures: tuple[str, ...], many: bool) -> list[Line]:
    lines = []
    for colour, run in enumerate(runs):
        for variant, figure in enumerate(figures):
            points = [(float(step), v) for step, fig in run.checkpoints if (v := numeric(fig.get(figure))) is not None]
            if points:
                label = f"{run.label} · {figure}" if many else figure
                lines.append(Line(label, colour % COLOURS, sorted(points), True, figure, variant))
    return lines


def charts(runs: list[RunSource]) -> list[Chart]:
    """Training loss, reward and KL from the log, then the checkpoint evaluations, for every run given;
    a chart nobody has data for is left out."""
    many = len(runs) > 1
    planned: list[tuple[str, str, list[Line]]] = []
    for slug, title, names in LOG_CHARTS:
        lines = []
        for colour, run in enumerate(runs):
            keys = {k for row in run.log for k in row if k != "step"}
            metric = pick(keys, names, names[0].split("/")[-1])
            if metric is not None and (points := log_series(run.log, metric)):
                lines.append(
                    Line(f"{run.label} · {metric}" if many else metric, colour % COLOURS, points, False, metric)
                )
        if lines:
            planned.append((title, slug, lines))
    grouped = {figure for _, figures in CHECKPOINT_GROUPS for figure in figures}
    others = sorted(
        {k for run in runs for _, fig in run.checkpoints for k, v in fig.items() if numeric(v) is not None}
        - grouped
        - NOT_FIGURES
    )
    for title, figures in [*CHECKPOINT_GROUPS, *((f"Checkpoint {name}", (name,)) for name in others)]:
        lines = _checkpoint_lines(runs, figures, many)
        if lines:
            planned.append((title, "checkpoint-" + re.sub(r"[^A-Za-z0-9]+", "-", figures[0]).strip("-"), lines))
    steps = [s for _, _, lines in planned for line in lines for s, _ in line.points]
    if not steps:
        return []
    span = (min(steps), max(steps))
    return [draw(title, slug, lines, span) for title, slug, lines in planned]
