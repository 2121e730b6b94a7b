"""What the handoff templates render: the gathered closure arranged by section, its warnings, figures
and lineage drawing. Presentation stays in the templates; this module decides what is said."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from app.packages import campaign, plots
from app.packages.evidence import RewardSamples, reward_samples
from app.packages.gather import Closure
from app.packages.lineage_svg import SvgNode, render_svg
from app.records.models import Record
from app.storage.base import BlobStore

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Document:
    context: dict[str, Any]
    plots: list[plots.Plot]
    warnings: list[str]


def label(record: Record) -> str:
    return f"{record.kind} {record.name} v{record.version}"


def warnings_of(closure: Closure, samples: list[RewardSamples]) -> list[str]:
    """Everything an approver must not miss, in a fixed order: revocations, quarantine, staleness, QC
    gates, prompt-mix and dataset warnings, waived evidence, the deployed checkpoint's reward-hacking
    flags and a deployment of a checkpoint that is not its series' candidate, and gaps in the reward
    evidence."""
    graph = closure.graph
    reasons = {e.record_id: str(e.data.get("reason", "")) for e in closure.events if e.type == "revoked"}
    out: list[str] = []
    for record in closure.ordered():
        if record.id in reasons:
            out.append(f"REVOKED: {label(record)}: {reasons[record.id]}")
        elif graph.quarantined(record.id):
            out.append(f"QUARANTINED: {label(record)} depends on a revoked record")
        if graph.stale(record.id):
            out.append(f"STALE: {label(record)} follows a criteria version superseded by a newer MAJOR version")
    for batch in closure.of_kind("annotation_batch"):
        qc = batch.derived["qc"]
        if qc["gate"] != "pass":
            out.append(f"QC gate {qc['gate']}: {label(batch)}: {'; '.join(qc.get('gate_reasons') or [])}")
    # every warning a record derived at registration, whatever its kind
    for record in closure.ordered():
        out += [f"{label(record)}: {w}" for w in record.derived.get("warnings") or []]
    waived = closure.approval.data.get("missing_waived") or []
    if waived:
        out.append(
            f"approved without evaluation evidence {waived}, under waiver(s) {closure.approval.data.get('waivers')}"
        )
    out += campaign.warnings(closure)
    if not samples:
        out.append(
            "no sample-level reward evidence (a reward_score or length_reward_correlation evaluation with a JSONL "
            "evidence blob of scored samples) is registered: the reward distribution is not drawn"
        )
    return out


def _length_vs_reward(closure: Closure, samples: list[RewardSamples]) -> plots.Plot | plots.NotDrawn:
    """From the scored samples where they carry lengths, else from the means each checkpoint records."""
    with_lengths = [s for s in samples if s.lengths is not None]
    drawn = plots.length_vs_reward_samples(with_lengths) if with_lengths else None
    if isinstance(drawn, plots.Plot):
        return drawn
    points = [
        (r, float(m["mean_completion_length"]), float(m["mean_reward"]))
        for r in closure.series
        if isinstance((m := r.spec.get("metrics") or {}).get("mean_completion_length"), int | float)
        and isinstance(m.get("mean_reward"), int | float)
    ]
    if points:
        return plots.length_vs_reward_series(points, closure.checkpoint)
    return drawn or plots.NotDrawn(
        "length_vs_reward.png",
        "Length against reward",
        "no scored samples with response lengths and no checkpoint recording mean completion length and mean "
        "reward are registered.",
    )


def _plots(closure: Closure, samples: list[RewardSamples]) -> list[plots.Plot | plots.NotDrawn]:
    batches = closure.of_kind("annotation_batch")
    policy = closure.policy.spec
    metrics = plots.series_metrics(closure.series)
    return [
        plots.qc_per_batch(batches),
        plots.agreement_over_time(batches, float(policy["kappa_target"]), float(policy["kappa_floor"])),
        plots.reward_distribution(samples)
        if samples
        else plots.NotDrawn(
            "reward_distribution.png", "Reward distribution", "no sample-level reward evidence is registered."
        ),
        _length_vs_reward(closure, samples),
        plots.checkpoint_series(closure.series, closure.checkpoint, metrics)
        if metrics
        else plots.NotDrawn(
            "checkpoint_series.png",
            "Metrics across the checkpoint series",
            "no checkpoint of the series records a numeric metric.",
        ),
    ]


def _figure(plot: plots.Plot | plots.NotDrawn) -> dict[str, str]:
    if isinstance(plot, plots.NotDrawn):
        return {"title": plot.title, "reason": plot.reason}
    return {
        "title": plot.title,
        "caption": plot.caption,
        "file": f"plots/{plot.name}",
        "uri": "data:image/png;base64," + base64.b64encode(plot.png).decode(),
    }


def _lineage_svg(closure: Closure) -> str:
    graph = closure.graph
    nodes = [
        SvgNode(
            id=r.id,
            kind=r.kind,
            label=f"{r.name} v{r.version}",
            stale=graph.stale(r.id),
            quarantined=graph.quarantined(r.id),
            highlight=r.id in (closure.deployment.id, closure.checkpoint.id),
        )
        for r in closure.ordered()
    ]
    edges = [
        (p_child, p_parent, role)
        for p_child, p_parent, role in graph.edges
        if p_child in closure.records and p_parent in closure.records
    ]
    return render_svg(nodes, edges)


def build_document(closure: Closure, store: BlobStore, *, package_name: str, inputs: str, key_id: str) -> Document:
    samples = reward_samples(closure, store)
    warnings = warnings_of(closure, samples)
    choice, rating_figures = campaign.ratings(closure)
    figures = [*_plots(closure, samples), *rating_figures]
    drawn = [p for p in figures if isinstance(p, plots.Plot)]
    graph = closure.graph
    labels = {f"record:{r.id}": label(r) for r in closure.records.values()} | {
        f"run:{run_id}": f"run {run_id}" for run_id in closure.runs
    }
    context = {
        "project": closure.project,
        "package": {"name": package_name, "inputs": inputs, "key_id": key_id, "format": FORMAT_VERSION},
        "deployment": closure.deployment,
        "checkpoint": closure.checkpoint,
        "approval": {
            "actor": closure.approval.actor,
            "at": closure.approval.created_at,
            "note": closure.approval.data.get("note", ""),
            "data": closure.approval.data,
        },
        "policy": {"version": closure.policy.version, "spec": closure.policy.spec},
        "warnings": warnings,
        "criteria": closure.of_kind("criteria"),
        "prompt_sets": closure.of_kind("prompt_set"),
        "batches": closure.of_kind("annotation_batch"),
        "datasets": closure.of_kind("preference_dataset"),
        "base_models": closure.of_kind("base_model"),
        "reward_checkpoints": closure.of_kind("reward_checkpoint"),
        "series": closure.series,
        "series_metrics": plots.series_metrics(closure.series),
        "deployment_evaluations": closure.parents(closure.deployment, "evaluations"),
        "ratings": choice,
        "flags": campaign.flags(closure),
        "evaluations_of": {r.id: closure.children(r, "evaluation", "target") for r in closure.records.values()},
        "samples": samples,
        "waivers": closure.of_kind("waiver"),
        "parents_of": {
            r.id: [(role, label(p)) for role, p in closure.parents_index[r.id]] for r in closure.records.values()
        },
        "records": [
            {
                "record": r,
                "label": label(r),
                "status": graph.status(r.id) if r.id in graph.nodes else "registered",
                "stale": graph.stale(r.id),
                "quarantined": graph.quarantined(r.id),
                "created_at": r.created_at,
            }
            for r in closure.ordered()
        ],
        "decisions": [
            {
                "record": labels.get(f"record:{e.record_id}", e.record_id),
                "type": e.type,
                "actor": e.actor,
                "at": e.created_at,
                "data": e.data,
            }
            for e in closure.events
        ],
        "audit": [{**e, "target_label": labels.get(e["target"], e["target"])} for e in closure.audit],
        "runs": [closure.runs[k] for k in sorted(closure.runs)],
        "lineage_svg": _lineage_svg(closure),
        "plots": {p.name.removesuffix(".png"): _figure(p) for p in figures},
    }
    return Document(context, drawn, warnings)
