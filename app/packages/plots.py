"""The package's figures, drawn with matplotlib's Agg backend onto `Figure` objects (no pyplot global
state, so concurrent requests do not share figures) and saved as PNG without the `Software` metadata
line, so the same data gives the same bytes.

Each figure is drawn only from registered figures: QC per batch and agreement over time from the
batches' derived QC, the reward distribution and length against reward from sample-level reward
evidence (or, for length against reward, the per-checkpoint means a policy run records), and the
metrics across the checkpoint series from the checkpoints' metrics."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from app.packages.evidence import RewardSamples
from app.records.models import Record

DPI = 100
MAX_SERIES_METRICS = 6
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#17becf")


@dataclass(frozen=True)
class Plot:
    name: str  # file name under plots/
    title: str
    caption: str
    png: bytes


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _figure(width: float = 8.0, height: float = 4.0) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _num(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(float(value)):
        return math.nan
    return float(value)


def _at(value: Any, path: Sequence[str]) -> Any:
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _batch_label(batch: Record) -> str:
    return f"{batch.name} v{batch.version}"


def qc_per_batch(batches: Sequence[Record]) -> Plot:
    """Agreement, gold accuracy and bias figures side by side for every batch."""
    measures = (
        ("kappa (mean)", ("cohen_kappa", "mean")),
        ("alpha", ("krippendorff_alpha",)),
        ("gold accuracy", ("gold_accuracy", "overall")),
        ("shown-first share", ("position_bias", "share_first")),
        ("longer share", ("length_bias", "share_longer")),
        ("tie rate", ("tie_rate",)),
        ("high disagreement", ("high_disagreement_rate",)),
    )
    figure = _figure(9.0, 4.2)
    axes = figure.add_subplot()
    width = 0.8 / len(measures)
    lowest = 0.0
    for m, (label, path) in enumerate(measures):
        xs = [b + (m - (len(measures) - 1) / 2) * width for b in range(len(batches))]
        ys = [_num(_at(batch.derived["qc"], path)) for batch in batches]
        lowest = min([lowest, *(y for y in ys if not math.isnan(y))])
        axes.bar(xs, ys, width=width, label=label, color=COLORS[m % len(COLORS)])
    axes.set_xticks(range(len(batches)), [_batch_label(b) for b in batches], rotation=20, ha="right")
    axes.set_ylim(lowest - 0.05, 1.05)
    axes.axhline(0.0, color="black", linewidth=0.6)
    axes.set_ylabel("share / coefficient")
    axes.legend(fontsize=7, ncols=4, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    return Plot(
        "qc_per_batch.png", "QC per batch", "Agreement, gold accuracy and bias figures of each batch.", _png(figure)
    )


def agreement_over_time(batches: Sequence[Record], kappa_target: float, kappa_floor: float) -> Plot:
    """Mean Cohen's kappa and Krippendorff's alpha by batch, in collection order, against the policy's
    kappa target and floor; early/late session agreement where the batch has timed sessions."""
    ordered = sorted(batches, key=lambda b: (str(b.spec["collected_to"]), str(b.spec["collected_from"]), b.id))
    labels = [f"{b.spec['collected_to']}\n{_batch_label(b)}" for b in ordered]
    figure = _figure(8.0, 4.2)
    axes = figure.add_subplot()
    xs = list(range(len(ordered)))
    qcs = [b.derived["qc"] for b in ordered]
    series = (
        ("kappa (mean)", [_num((qc.get("cohen_kappa") or {}).get("mean")) for qc in qcs]),
        ("alpha", [_num(qc.get("krippendorff_alpha")) for qc in qcs]),
        ("agreement early in sessions", [_num((qc.get("session_agreement") or {}).get("early")) for qc in qcs]),
        ("agreement late in sessions", [_num((qc.get("session_agreement") or {}).get("late")) for qc in qcs]),
    )
    for i, (label, ys) in enumerate(series):
        if any(not math.isnan(y) for y in ys):
            axes.plot(xs, ys, marker="o", label=label, color=COLORS[i], linestyle="-" if i < 2 else ":")
    axes.axhline(kappa_target, color="green", linestyle="--", linewidth=1, label=f"kappa target {kappa_target}")
    axes.axhline(kappa_floor, color="red", linestyle="--", linewidth=1, label=f"kappa floor {kappa_floor}")
    axes.set_xticks(xs, labels, fontsize=7)
    axes.set_ylim(min(0.0, kappa_floor - 0.1), 1.05)
    axes.set_ylabel("agreement")
    axes.legend(fontsize=7, loc="lower left")
    return Plot(
        "agreement_over_time.png",
        "Agreement over time",
        "Inter-annotator agreement of each batch by collection end date, against the policy's kappa target and floor.",
        _png(figure),
    )


def _target_label(samples: RewardSamples) -> str:
    evaluation, target = samples.evaluation, samples.target
    return f"{evaluation.name} v{evaluation.version} on {target.kind} {target.name} v{target.version}"


def reward_distribution(samples: Sequence[RewardSamples]) -> Plot:
    figure = _figure()
    axes = figure.add_subplot()
    for i, sample in enumerate(samples):
        axes.hist(sample.scores, bins=30, alpha=0.55, label=_target_label(sample), color=COLORS[i % len(COLORS)])
    axes.set_xlabel("reward")
    axes.set_ylabel("samples")
    axes.legend(fontsize=7)
    return Plot(
        "reward_distribution.png",
        "Reward distribution",
        "Rewards of the scored samples in each sample-level reward evaluation.",
        _png(figure),
    )


def length_vs_reward_samples(samples: Sequence[RewardSamples]) -> Plot:
    figure = _figure()
    axes = figure.add_subplot()
    for i, sample in enumerate(samples):
        assert sample.lengths is not None
        axes.scatter(
            sample.lengths, sample.scores, s=8, alpha=0.6, label=_target_label(sample), color=COLORS[i % len(COLORS)]
        )
    axes.set_xlabel("response length (characters)")
    axes.set_ylabel("reward")
    axes.legend(fontsize=7)
    return Plot(
        "length_vs_reward.png",
        "Length against reward",
        "Each scored sample's response length against its reward: a rising cloud is the length bias RLHF exploits.",
        _png(figure),
    )


def length_vs_reward_series(points: Sequence[tuple[Record, float, float]], deployed: Record) -> Plot:
    """Per-checkpoint mean completion length against mean reward, as policy runs record them."""
    figure = _figure()
    axes = figure.add_subplot()
    xs, ys = [p[1] for p in points], [p[2] for p in points]
    axes.plot(xs, ys, marker="o", color=COLORS[0])
    for record, x, y in points:
        step = record.spec.get("step")
        axes.annotate(f"step {step}" if step is not None else f"v{record.version}", (x, y), fontsize=7)
        if record.id == deployed.id:
            axes.scatter([x], [y], s=120, facecolors="none", edgecolors="red", label="deployed")
    axes.set_xlabel("mean completion length (characters)")
    axes.set_ylabel("mean reward")
    axes.legend(fontsize=7)
    return Plot(
        "length_vs_reward.png",
        "Length against reward",
        "Mean completion length against mean reward across the checkpoint series: reward bought with length "
        "shows as a rising line.",
        _png(figure),
    )


def checkpoint_series(series: Sequence[Record], deployed: Record, metrics: Sequence[str]) -> Plot:
    """Every numeric metric the series records, one panel each, with the deployed checkpoint marked."""
    shown = list(metrics)[:MAX_SERIES_METRICS]
    columns = 2 if len(shown) > 1 else 1
    rows = math.ceil(len(shown) / columns)
    figure = _figure(9.0, 2.6 * rows)
    xs = [float(r.spec["step"]) if r.spec.get("step") is not None else float(r.version) for r in series]
    deployed_x = next(x for x, r in zip(xs, series, strict=True) if r.id == deployed.id)
    for i, metric in enumerate(shown):
        axes = figure.add_subplot(rows, columns, i + 1)
        ys = [_num((r.spec.get("metrics") or {}).get(metric)) for r in series]
        axes.plot(xs, ys, marker="o", color=COLORS[i % len(COLORS)])
        axes.axvline(deployed_x, color="red", linestyle="--", linewidth=1)
        axes.set_title(metric, fontsize=9)
        axes.set_xlabel("step", fontsize=8)
        axes.tick_params(labelsize=7)
    return Plot(
        "checkpoint_series.png",
        "Metrics across the checkpoint series",
        "Each numeric metric of the policy checkpoints by training step; the dashed line marks the deployed "
        "checkpoint.",
        _png(figure),
    )


def series_metrics(series: Sequence[Record]) -> list[str]:
    """Numeric metrics present in the series, most widely recorded first."""
    counts: dict[str, int] = {}
    for record in series:
        for key, value in (record.spec.get("metrics") or {}).items():
            if not math.isnan(_num(value)):
                counts[key] = counts.get(key, 0) + 1
    return sorted(counts, key=lambda k: (-counts[k], k))
