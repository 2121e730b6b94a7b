"""Small line charts of a run's step metrics (loss, reward), as point lists a template draws in SVG."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

WIDTH = 240
HEIGHT = 48
PAD = 3
MAX_POINTS = 300
PREFERRED = ("loss", "train_loss", "reward", "objective/rlhf_reward", "rewards/chosen", "rewards/margins")


@dataclass(frozen=True)
class Sparkline:
    metric: str
    points: str  # "x,y x,y ..." for an SVG polyline
    first_step: int
    last_step: int
    last: float
    low: float
    high: float
    width: int = WIDTH
    height: int = HEIGHT


def chosen_metrics(keys: set[str]) -> list[str]:
    """The loss and one reward series, when the run logged them (TRL names differ by trainer)."""
    loss = next((k for k in PREFERRED if "loss" in k and k in keys), None)
    reward = next((k for k in PREFERRED if "reward" in k and k in keys), None)
    if reward is None:
        reward = next((k for k in sorted(keys) if "reward" in k), None)
    return [k for k in (loss, reward) if k is not None]


def series(rows: list[dict[str, Any]], metric: str) -> list[tuple[int, float]]:
    out: list[tuple[int, float]] = []
    for row in rows:
        value = row.get(metric)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            out.append((int(row.get("step", len(out))), float(value)))
    return out


def sparkline(metric: str, points: list[tuple[int, float]]) -> Sparkline | None:
    if not points:
        return None
    if len(points) > MAX_POINTS:
        stride = math.ceil(len(points) / MAX_POINTS)
        points = points[::stride] + ([points[-1]] if (len(points) - 1) % stride else [])
    steps = [s for s, _ in points]
    values = [v for _, v in points]
    low, high = min(values), max(values)
    span_x = (steps[-1] - steps[0]) or 1
    span_y = (high - low) or 1.0
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    coords = [
        (
            PAD + (s - steps[0]) / span_x * inner_w if len(points) > 1 else WIDTH / 2,
            PAD + (high - v) / span_y * inner_h if high > low else HEIGHT / 2,
        )
        for s, v in points
    ]
    return Sparkline(
        metric=metric,
        points=" ".join(f"{x:.1f},{y:.1f}" for x, y in coords),
        first_step=steps[0],
        last_step=steps[-1],
        last=values[-1],
        low=low,
        high=high,
    )
