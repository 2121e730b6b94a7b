"""The package's figures, drawn with matplotlib's Agg backend onto `Figure` objects (no pyplot global
state, so concurrent requests do not share figures) and saved as PNG without the `Software` metadata
line, so the same data gives the same bytes.

Each figure is drawn only from registered figures: QC per batch and agreement over time from the
batches' derived QC, the reward distribution and length against reward from sample-level reward
evidence (or, for length against reward, the per-checkpoint means a policy run records), and the
metrics across the checkpoint series from the checkpoints' metrics.

A figure that could say nothing about its data (no data, a single point, every point the same) is not
drawn: the document prints, in its place, a sentence saying why (`NotDrawn`). Every drawn figure labels
both axes with their units and has a legend naming exactly what is drawn."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from app.packages.evidence import RewardSamples
from app.packages.render import fmt
from app.records.models import Record

DPI = 100
MAX_SERIES_METRICS = 6
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#17becf")
# units of the figures the registry's own policy evaluation records (workers/trainers/policy_evaluation.py)
METRIC_UNITS = {
    "mean_reward": "reward-model score",
    "adversarial_mean_reward": "reward-model score",
    "mean_completion_length": "characters",
    "kl_to_reference": "nats per token",
    "length_reward_correlation": "Spearman's rho",
    "evaluation_prompts": "prompts",
    "adversarial_prompts": "prompts",
}


@dataclass(frozen=True)
class Plot:
    name: str  # file name under plots/
    title: str
    caption: str
    png: bytes


@dataclass(frozen=True)
class NotDrawn:
    """A figure left out, and why: printed where the figure would stand."""

    name: str
    title: str
    reason: str


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _figure(width: float = 8.0, height: float = 4.0) -> Figure:
    return Figure(figsize=(width, height), layout="constrained")


def _legend_below(axes: Any) -> None:
    """The legend under the axes, where it cannot hide a bar or a point."""
    axes.legend(fontsize=9, loc="upper center", bbox_to_anchor=(0.5, -0.14))


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


def _distinct(values: Sequence[Any]) -> int:
    return len({v for v in values if not (isinstance(v, float) and math.isnan(v))})


QC_MEASURES = (
    ("kappa (mean)", ("cohen_kappa", "mean")),
    ("alpha", ("krippendorff_alpha",)),
    ("gold accuracy", ("gold_accuracy", "overall")),
    ("shown-first share", ("position_bias", "share_first")),
    ("longer share", ("length_bias", "share_longer")),
    ("tie rate", ("tie_rate",)),
    ("high disagreement", ("high_disagreement_rate",)),
)


def qc_per_batch(batches: Sequence[Record]) -> Plot | NotDrawn:
    """Agreement, gold accuracy and bias figures side by side for every batch, each bar labelled with
    its value so that a zero shows; a measure no batch has is named in the caption, not in the legend."""
    title = "QC per batch"
    values = {label: [_num(_at(b.derived["qc"], path)) for b in batches] for label, path in QC_MEASURES}
    drawn = {label: ys for label, ys in values.items() if any(not math.isnan(y) for y in ys)}
    if not drawn:
        return NotDrawn("qc_per_batch.png", title, "no batch in the package has a measured QC figure.")
    figure = _figure(9.0, 4.4)
    axes = figure.add_subplot()
    width = 0.8 / len(drawn)
    lowest = 0.0
    for m, (label, ys) in enumerate(drawn.items()):
        xs = [b + (m - (len(drawn) - 1) / 2) * width for b in range(len(batches))]
        lowest = min([lowest, *(y for y in ys if not math.isnan(y))])
        color = COLORS[m % len(COLORS)]
        # the edge in the bar's colour keeps a zero visible as a line at the axis
        bars = axes.bar(xs, ys, width=width, label=label, color=color, edgecolor=color, linewidth=1.5)
        axes.bar_label(bars, labels=[fmt(y, none="") if not math.isnan(y) else "" for y in ys], fontsize=8)
    axes.set_xticks(range(len(batches)), [_batch_label(b) for b in batches])
    axes.set_xlabel("annotation batch")
    axes.set_ylim(lowest - 0.05, 1.12)
    axes.axhline(0.0, color="black", linewidth=0.6, zorder=0)
    axes.set_ylabel("coefficient or share (0 to 1)")
    axes.legend(fontsize=9, ncols=min(len(drawn), 4), loc="upper center", bbox_to_anchor=(0.5, -0.16))
    missing = [label for label in values if label not in drawn]
    caption = "Agreement coefficients, gold accuracy and bias shares of each batch."
    if missing:
        caption += f" Not measured in any batch, so not drawn: {', '.join(missing)}."
    return Plot("qc_per_batch.png", title, caption, _png(figure))


def agreement_over_time(batches: Sequence[Record], kappa_target: float, kappa_floor: float) -> Plot | NotDrawn:
    """Mean Cohen's kappa and Krippendorff's alpha by batch, in collection order, against the policy's
    kappa target and floor; early/late session agreement where the batch has timed sessions."""
    title = "Agreement over time"
    ordered = sorted(batches, key=lambda b: (str(b.spec["collected_to"]), str(b.spec["collected_from"]), b.id))
    qcs = [b.derived["qc"] for b in ordered]
    series = (
        ("kappa (mean)", [_num((qc.get("cohen_kappa") or {}).get("mean")) for qc in qcs]),
        ("alpha", [_num(qc.get("krippendorff_alpha")) for qc in qcs]),
        ("agreement early in sessions", [_num((qc.get("session_agreement") or {}).get("early")) for qc in qcs]),
        ("agreement late in sessions", [_num((qc.get("session_agreement") or {}).get("late")) for qc in qcs]),
    )
    measured = [i for i, qc in enumerate(qcs) if any(not math.isnan(ys[i]) for _, ys in series)]
    if len(measured) < 2:
        return NotDrawn(
            "agreement_over_time.png",
            title,
            f"{len(measured)} batch(es) with a measured agreement figure: a trend over time needs two or more; "
            "the figures are in the batch tables above.",
        )
    figure = _figure(8.0, 4.2)
    axes = figure.add_subplot()
    xs = list(range(len(ordered)))
    for i, (label, ys) in enumerate(series):
        if any(not math.isnan(y) for y in ys):
            axes.plot(xs, ys, marker="o", label=label, color=COLORS[i], linestyle="-" if i < 2 else ":")
    axes.axhline(kappa_target, color="green", linestyle="--", linewidth=1, label=f"kappa target {fmt(kappa_target)}")
    axes.axhline(kappa_floor, color="red", linestyle="--", linewidth=1, label=f"kappa floor {fmt(kappa_floor)}")
    axes.set_xticks(xs, [f"{b.spec['collected_to']}\n{_batch_label(b)}" for b in ordered], fontsize=9)
    axes.set_xlabel("collection end date and batch")
    axes.set_ylim(min(0.0, kappa_floor - 0.1), 1.05)
    axes.set_ylabel("agreement (coefficient or share)")
    axes.legend(fontsize=9, loc="lower left")
    return Plot(
        "agreement_over_time.png",
        title,
        "Inter-annotator agreement of each batch by collection end date, against the policy's kappa target and floor.",
        _png(figure),
    )


def _target_label(samples: RewardSamples) -> str:
    evaluation, target = samples.evaluation, samples.target
    return f"{evaluation.name} v{evaluation.version} on {target.kind} {target.name} v{target.version}"


def reward_distribution(samples: Sequence[RewardSamples]) -> Plot | NotDrawn:
    title = "Reward distribution"
    spread = [s for s in samples if _distinct(s.scores) > 1]
    if not spread:
        said = "; ".join(
            f"{_target_label(s)}: {len(s.scores)} score(s), all {fmt(s.scores[0])}" for s in samples if s.scores
        )
        return NotDrawn(
            "reward_distribution.png",
            title,
            "no sample-level reward evidence has two different scores, so there is no distribution to draw"
            + (f" ({said})." if said else "."),
        )
    figure = _figure()
    axes = figure.add_subplot()
    for i, sample in enumerate(spread):
        axes.hist(sample.scores, bins=30, alpha=0.55, label=_target_label(sample), color=COLORS[i % len(COLORS)])
    axes.set_xlabel("reward (reward-model score)")
    axes.set_ylabel("samples per bin (count)")
    axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    _legend_below(axes)
    caption = "Rewards of the scored samples in each sample-level reward evaluation."
    left = [_target_label(s) for s in samples if s not in spread]
    if left:
        caption += f" Not drawn, every score the same: {', '.join(left)}."
    return Plot("reward_distribution.png", title, caption, _png(figure))


def length_vs_reward_samples(samples: Sequence[RewardSamples]) -> Plot | NotDrawn:
    title = "Length against reward"
    spread = [s for s in samples if s.lengths is not None and _distinct(s.lengths) > 1 and _distinct(s.scores) > 1]
    if not spread:
        return NotDrawn(
            "length_vs_reward.png",
            title,
            "the scored samples do not vary in both length and reward, so no relation between them can be shown.",
        )
    figure = _figure()
    axes = figure.add_subplot()
    for i, sample in enumerate(spread):
        lengths = sample.lengths or []
        axes.scatter(lengths, sample.scores, s=8, alpha=0.6, label=_target_label(sample), color=COLORS[i % len(COLORS)])
    axes.set_xlabel("response length (characters)")
    axes.set_ylabel("reward (reward-model score)")
    _legend_below(axes)
    return Plot(
        "length_vs_reward.png",
        title,
        "Each scored sample's response length against its reward: a rising cloud is the length bias RLHF exploits.",
        _png(figure),
    )


def length_vs_reward_series(points: Sequence[tuple[Record, float, float]], deployed: Record) -> Plot | NotDrawn:
    """Per-checkpoint mean completion length against mean reward, as policy runs record them."""
    title = "Length against reward"
    if len({(x, y) for _, x, y in points}) < 2:
        return NotDrawn(
            "length_vs_reward.png",
            title,
            f"{len(points)} checkpoint(s) record a mean completion length and mean reward, all at one point: "
            "no relation between them can be shown.",
        )
    figure = _figure()
    axes = figure.add_subplot()
    axes.plot([p[1] for p in points], [p[2] for p in points], marker="o", color=COLORS[0], label="policy checkpoint")
    for record, x, y in points:
        step = record.spec.get("step")
        axes.annotate(f"step {step}" if step is not None else f"v{record.version}", (x, y), fontsize=9)
        if record.id == deployed.id:
            axes.scatter([x], [y], s=120, facecolors="none", edgecolors="red", label="deployed checkpoint")
    axes.set_xlabel("mean completion length (characters)")
    axes.set_ylabel("mean reward (reward-model score)")
    axes.legend(fontsize=9)
    return Plot(
        "length_vs_reward.png",
        title,
        "Mean completion length against mean reward across the checkpoint series: reward bought with length "
        "shows as a rising line.",
        _png(figure),
    )


def _step(record: Record) -> float:
    return float(record.spec["step"]) if record.spec.get("step") is not None else float(record.version)


def checkpoint_series(series: Sequence[Record], deployed: Record, metrics: Sequence[str]) -> Plot | NotDrawn:
    """Every numeric metric that changes along the series, one panel each, with the deployed checkpoint
    marked; a metric with one value throughout is named in the caption instead of drawn flat."""
    title = "Metrics across the checkpoint series"
    xs = [_step(r) for r in series]
    values = {m: [_num((r.spec.get("metrics") or {}).get(m)) for r in series] for m in metrics}
    if _distinct(xs) < 2:
        return NotDrawn(
            "checkpoint_series.png",
            title,
            f"the series has {len(series)} checkpoint(s) at {_distinct(xs)} step(s): a trend needs two or more.",
        )
    changing = [m for m in metrics if _distinct(values[m]) > 1]
    constant = [f"{m} = {fmt(next(v for v in values[m] if not math.isnan(v)))}" for m in metrics if m not in changing]
    if not changing:
        return NotDrawn(
            "checkpoint_series.png", title, f"every metric has one value throughout the series: {'; '.join(constant)}."
        )
    shown = changing[:MAX_SERIES_METRICS]
    columns = 2 if len(shown) > 1 else 1
    rows = math.ceil(len(shown) / columns)
    figure = _figure(9.0, 0.6 + 3.0 * rows)
    deployed_x = next(x for x, r in zip(xs, series, strict=True) if r.id == deployed.id)
    for i, metric in enumerate(shown):
        axes = figure.add_subplot(rows, columns, i + 1)
        axes.plot(xs, values[metric], marker="o", color=COLORS[i % len(COLORS)], label="checkpoint")
        axes.axvline(deployed_x, color="red", linestyle="--", linewidth=1, label=f"deployed (step {fmt(deployed_x)})")
        axes.set_title(metric, fontsize=11)
        axes.set_xlabel("training step", fontsize=10)
        axes.set_ylabel(METRIC_UNITS.get(metric, "value as recorded"), fontsize=10)
        axes.tick_params(labelsize=9)
        axes.legend(fontsize=8)
    caption = (
        "Each numeric metric of the policy checkpoints by training step; the dashed line marks the deployed checkpoint."
    )
    if len(changing) > len(shown):
        caption += f" Not drawn (see the table): {', '.join(changing[len(shown) :])}."
    if constant:
        caption += f" Constant throughout, so not drawn: {'; '.join(constant)}."
    return Plot("checkpoint_series.png", title, caption, _png(figure))


def series_metrics(series: Sequence[Record]) -> list[str]:
    """Numeric metrics present in the series, most widely recorded first (not `step`: the x axis)."""
    counts: dict[str, int] = {}
    for record in series:
        for key, value in (record.spec.get("metrics") or {}).items():
            if key != "step" and not math.isnan(_num(value)):
                counts[key] = counts.get(key, 0) + 1
    return sorted(counts, key=lambda k: (-counts[k], k))


def _spread(rating: float, bound: Any) -> float:
    """The length of one arm of an interval bar; 0 where the bound was not measured."""
    value = _num(bound)
    return 0.0 if math.isnan(value) else abs(rating - value)


def ratings_across_checkpoints(name: str, title: str, derived: dict[str, Any], deployed: str) -> Plot | NotDrawn:
    """Each checkpoint's Bradley-Terry rating (Bradley and Terry 1952) with its 95% bootstrap interval,
    by training step, from a campaign evaluation's derived figures: the reference model is the line at 0,
    the candidate (highest rating) is ringed and the deployed checkpoint marked. `title` says who judged,
    so that an AI judge's figure is never read as human evidence."""
    ai = bool(derived.get("ai_judged"))
    ratings: list[dict[str, Any]] = derived.get("ratings") or []
    rows = [r for r in ratings if r.get("role") == "checkpoint" and not math.isnan(_num(r.get("rating")))]
    if len(rows) < 2:
        return NotDrawn(
            name, title, f"the campaign rates {len(rows)} checkpoint(s): a shape across the series needs two or more."
        )
    steps = [_num(row.get("step")) for row in rows]
    by_step = not any(math.isnan(s) for s in steps) and len(set(steps)) == len(steps)
    xs = steps if by_step else [float(i) for i in range(len(rows))]
    ys = [_num(row["rating"]) for row in rows]
    arms = [
        [_spread(y, row.get("low")) for y, row in zip(ys, rows, strict=True)],
        [_spread(y, row.get("high")) for y, row in zip(ys, rows, strict=True)],
    ]
    figure = _figure(8.0, 4.4)
    axes = figure.add_subplot()
    reference = next((r for r in ratings if r.get("role") == "reference"), {})
    who = "AI judge" if ai else "human"
    axes.axhline(0.0, color="#555555", linestyle="--", linewidth=1, label=f"reference v{reference.get('version')} (0)")
    axes.errorbar(xs, ys, yerr=arms, marker="o", capsize=4, color=COLORS[1 if ai else 0], label=f"{who} rating, 95% CI")
    candidate = (derived.get("candidate") or {}).get("model")
    for x, y, row in zip(xs, ys, rows, strict=True):
        axes.annotate(f"v{row.get('version')}", (x, y), textcoords="offset points", xytext=(10, 6), fontsize=8)
        if row.get("model") == candidate:
            axes.scatter([x], [y], s=220, facecolors="none", edgecolors="green", linewidths=2, label="candidate")
        if row.get("model") == deployed:
            axes.axvline(x, color="red", linestyle=":", linewidth=1.2, label="deployed checkpoint")
    if not by_step:
        axes.set_xticks(xs, [f"v{row.get('version')}" for row in rows])
    axes.set_xlabel("training step" if by_step else "checkpoint (no training step declared)")
    axes.set_ylabel("Bradley-Terry rating (log-odds)")
    axes.legend(fontsize=9, ncols=2, loc="upper center", bbox_to_anchor=(0.5, -0.16))
    caption = (
        "Each checkpoint's rating against the reference model (0) with its 95% bootstrap interval: a rise then "
        "a fall is quality peaking before the end of training."
    )
    return Plot(name, title, caption + (" Judged by an AI judge: not human evidence." if ai else ""), _png(figure))
