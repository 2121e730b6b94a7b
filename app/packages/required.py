"""The fields a handoff package cannot do without (DESIGN.md: "a required field that is missing fails
the render: an audited package never prints a placeholder").

Checked over the gathered closure before anything is rendered, so that the error names every missing
field at once, by record and path; the templates render with `StrictUndefined` as a second line."""

from __future__ import annotations

from typing import Any

from app.core.errors import ValidationFailed
from app.packages.gather import Closure
from app.records.models import Record

# per kind: dotted paths into the record envelope (`spec.…`, `derived.…`) that must hold a value
REQUIRED: dict[str, tuple[str, ...]] = {
    # the criteria document and the annotator training materials
    "criteria": ("spec.dimensions", "spec.playbook", "spec.gold_examples"),
    # the prompt sampling procedure and statistics
    "prompt_set": ("spec.sampling_procedure", "derived.count", "derived.mix", "derived.coverage"),
    # each batch with its metadata and QC
    "annotation_batch": (
        "spec.annotator_pool", "spec.tool", "spec.collected_from", "spec.collected_to", "derived.items",
        "derived.qc", "derived.qc.gate", "derived.qc.cohen_kappa",
    ),
    # the dataset construction rules and counts
    "preference_dataset": ("derived.rules", "derived.counts"),
    # reward-model evaluation. Accuracy by dimension is empty when the batches carry no per-dimension
    # labels (PandaLM's, say): the package then says so, which is a fact, not a gap.
    "reward_checkpoint": ("spec.metrics.validation_accuracy",),
    "policy_checkpoint": ("spec.algorithm",),
    "evaluation": ("spec.type",),
    "deployment": ("spec.justification",),
    "waiver": ("spec.rule", "spec.reason"),
}  # fmt: skip
LENGTH_BIAS = ("spec.metrics.reward_length_spearman", "spec.metrics.length_decoupled_accuracy")


def value_at(record: Record, path: str) -> Any:
    value: Any = {"spec": record.spec, "derived": record.derived}
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, list | dict) and not value


def _label(record: Record) -> str:
    return f"{record.kind} {record.name} v{record.version}"


def missing_fields(closure: Closure) -> list[tuple[Record, str, str]]:
    """(record, path, why) for every required field that holds nothing."""
    missing: list[tuple[Record, str, str]] = []
    for record in closure.ordered():
        for path in REQUIRED.get(record.kind, ()):
            if is_missing(value_at(record, path)):
                missing.append((record, path, "required for the handoff package"))
        if record.kind == "reward_checkpoint" and all(
            not isinstance(value_at(record, p), int | float) for p in LENGTH_BIAS
        ):
            missing.append((record, LENGTH_BIAS[0], f"a length-bias figure ({' or '.join(LENGTH_BIAS)}) is required"))
    for evaluation in closure.parents(closure.deployment, "evaluations"):
        if is_missing(evaluation.spec.get("summary")) and not evaluation.spec.get("evidence_blob"):
            missing.append((evaluation, "spec.summary", "deployment evidence needs a summary or an evidence_blob"))
    return missing


def check_required(closure: Closure) -> None:
    """Raise `validation_failed` naming every missing field (record, then path)."""
    missing = missing_fields(closure)
    if not missing:
        return
    raise ValidationFailed(
        "the handoff package cannot be rendered; missing required field(s): "
        + "; ".join(f"{_label(r)}: {path}" for r, path, _ in missing),
        errors=[
            {"loc": [record.kind, record.name, record.version, *path.split(".")], "msg": why}
            for record, path, why in missing
        ],
        extra={"missing": [{"record": r.id, "field": path} for r, path, _ in missing]},
    )
