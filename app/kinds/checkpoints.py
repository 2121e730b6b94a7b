"""Reward-model and policy checkpoints: model folders with typed, required parents.

A reward checkpoint names the datasets it was trained on and its base model; a policy checkpoint names
its algorithm, reference model, and its reward checkpoint (on-policy: ppo, rloo, grpo), its dataset
(dpo) or its demonstration set (sft). Parents are pinned to exact records at registration."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core.errors import CriteriaIncompatible, MissingReference, ValidationFailed
from app.kinds.base import KindContext, KindDefinition, ParentRole, RequiredFigure
from app.kinds.model_files import ModelFile, check_sizes, check_unique_paths, file_blob_refs, folder_figures
from app.kinds.semver import Semver
from app.kinds.waiver import waivers_covering
from app.records.models import Record

ON_POLICY = ("ppo", "rloo", "grpo")


class RewardMetrics(BaseModel):
    model_config = ConfigDict(extra="allow")

    validation_accuracy: float | None = None
    per_dimension: dict[str, float | None] = {}
    length_decoupled_accuracy: float | None = None
    reward_length_spearman: float | None = None


class CheckpointSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    files: list[ModelFile] = Field(min_length=1)
    hyperparameters: dict[str, Any] = {}
    run_id: str | None = None
    metrics: dict[str, Any] = {}
    metadata: dict[str, Any] = {}

    @model_validator(mode="after")
    def _paths(self) -> CheckpointSpec:
        check_unique_paths(self.files)
        return self


class RewardCheckpointSpec(CheckpointSpec):
    metrics: RewardMetrics = RewardMetrics()  # type: ignore[assignment]


class PolicyCheckpointSpec(CheckpointSpec):
    algorithm: Literal["sft", "ppo", "dpo", "rloo", "grpo"]
    kl_coefficient: float | None = Field(None, ge=0.0)
    step: int | None = Field(None, ge=0)


def criteria_line(record: Record) -> tuple[str, int] | None:
    """(criteria name, MAJOR) a dataset or reward checkpoint recorded at registration."""
    criteria = record.derived.get("criteria") or {}
    if "major" in criteria:
        return str(criteria["name"]), int(criteria["major"])
    majors = {Semver.parse(v).major for v in criteria.get("versions", [])}
    return (str(criteria["name"]), max(majors)) if majors else None


def criteria_lines(records: list[Record]) -> dict[str, tuple[str, int]]:
    return {record.id: criteria_line(record) or ("?", -1) for record in records}


def check_one_criteria_line(ctx: KindContext, datasets: list[Record]) -> dict[str, Any]:
    lines = criteria_lines(datasets)
    distinct = sorted(set(lines.values()))
    if len(distinct) > 1:
        offending = [d for d in datasets if lines[d.id] != distinct[-1]]
        waivers = waivers_covering(ctx.session, ctx.project_id, "criteria_incompatible", [d.id for d in offending])
        unwaived = [d for d in offending if d.id not in waivers]
        if unwaived:
            raise CriteriaIncompatible(
                "the datasets follow different criteria lines: "
                + ", ".join(f"{d.name} v{d.version} ({lines[d.id][0]} {lines[d.id][1]}.x)" for d in datasets)
                + "; an approver may register a waiver for rule criteria_incompatible",
                extra={"datasets": [d.id for d in unwaived]},
            )
        for waiver in {w.id: w for w in waivers.values()}.values():
            ctx.added_parents.append((waiver, "waiver"))
    name, major = distinct[-1]
    return {"name": name, "major": major}


class RewardCheckpointKind(KindDefinition):
    name = "reward_checkpoint"
    collection = "reward-checkpoints"
    rank = 80
    label = "reward checkpoint"
    waivable = True
    # reward-model evaluation. Accuracy by dimension is empty when the batches carry no per-dimension
    # labels (PandaLM's, say): the package then says so, which is a fact, not a gap.
    package_fields: ClassVar[tuple[str, ...]] = ("spec.metrics.validation_accuracy",)
    package_figures: ClassVar[tuple[RequiredFigure, ...]] = (
        RequiredFigure(
            "a length-bias figure", ("spec.metrics.reward_length_spearman", "spec.metrics.length_decoupled_accuracy")
        ),
    )
    traces_to_criteria = True
    is_model = True
    trained = True
    built_by_server = False
    version_scheme = "integer"
    write_roles: ClassVar[frozenset[str]] = frozenset({"trainer"})
    parent_roles: ClassVar[tuple[ParentRole, ...]] = (
        ParentRole("datasets", ("preference_dataset",), many=True),
        ParentRole("base_model", ("base_model",)),
    )
    parents_from_run_inputs: ClassVar[dict[str, str]] = {"base_model": "base_model", "dataset": "datasets"}
    spec_model = RewardCheckpointSpec

    def blob_refs(self, spec: dict[str, Any]) -> list[tuple[str, str]]:
        return file_blob_refs(spec)

    def check(self, ctx: KindContext) -> None:
        check_sizes(ctx)
        ctx.scratch["criteria"] = check_one_criteria_line(ctx, ctx.parents["datasets"])

    def derive(self, ctx: KindContext) -> dict[str, Any]:
        return {
            **folder_figures(ctx.spec),
            "criteria": ctx.scratch["criteria"],
            "metrics": ctx.spec["metrics"],
        }


def check_demonstrations(algorithm: str, ctx: KindContext) -> None:
    """An sft checkpoint names the demonstration set it was fine-tuned on, and nothing else trains on one."""
    if algorithm == "sft" and not ctx.parents["demonstrations"]:
        raise MissingReference(
            "an sft checkpoint names the demonstration set it was fine-tuned on",
            errors=[{"loc": ["body", "demonstrations"], "msg": "required for sft"}],
        )
    if algorithm == "sft" and (ctx.parents["dataset"] or ctx.parents["reward_checkpoint"]):
        role = "dataset" if ctx.parents["dataset"] else "reward_checkpoint"
        raise ValidationFailed(
            "sft trains on demonstrations, not on preferences or against a reward checkpoint",
            errors=[{"loc": ["body", role], "msg": "not used by sft"}],
        )
    if algorithm != "sft" and ctx.parents["demonstrations"]:
        raise ValidationFailed(
            f"a {algorithm} checkpoint is not trained on demonstrations; name the sft checkpoint it started "
            "from as its reference_model",
            errors=[{"loc": ["body", "demonstrations"], "msg": "only for sft"}],
        )


class PolicyCheckpointKind(KindDefinition):
    name = "policy_checkpoint"
    collection = "policy-checkpoints"
    rank = 90
    label = "policy checkpoint"
    waivable = True
    package_fields: ClassVar[tuple[str, ...]] = ("spec.algorithm",)
    traces_to_criteria = True
    is_model = True
    trained = True
    built_by_server = False
    version_scheme = "integer"
    write_roles: ClassVar[frozenset[str]] = frozenset({"trainer"})
    parent_roles: ClassVar[tuple[ParentRole, ...]] = (
        ParentRole("reward_checkpoint", ("reward_checkpoint",), required=False),
        ParentRole("dataset", ("preference_dataset",), required=False),
        ParentRole("demonstrations", ("demonstration_set",), required=False),
        ParentRole("reference_model", ("base_model", "policy_checkpoint")),
    )
    parents_from_run_inputs: ClassVar[dict[str, str]] = {
        "base_model": "reference_model",
        "dataset": "dataset",
        "reward_checkpoint": "reward_checkpoint",
        "demonstrations": "demonstrations",
    }
    spec_model = PolicyCheckpointSpec
    top_level_fields: ClassVar[tuple[str, ...]] = ("algorithm",)

    def blob_refs(self, spec: dict[str, Any]) -> list[tuple[str, str]]:
        return file_blob_refs(spec)

    def check(self, ctx: KindContext) -> None:
        check_sizes(ctx)
        algorithm = ctx.spec["algorithm"]
        if algorithm in ON_POLICY and not ctx.parents["reward_checkpoint"]:
            raise MissingReference(
                f"a {algorithm} checkpoint names the reward checkpoint it was optimised against",
                errors=[{"loc": ["body", "reward_checkpoint"], "msg": "required for on-policy algorithms"}],
            )
        if algorithm == "dpo" and not ctx.parents["dataset"]:
            raise MissingReference(
                "a dpo checkpoint names the preference dataset it was trained on",
                errors=[{"loc": ["body", "dataset"], "msg": "required for dpo"}],
            )
        if algorithm == "dpo" and ctx.parents["reward_checkpoint"]:
            raise ValidationFailed(
                "dpo trains on a dataset, not against a reward checkpoint",
                errors=[{"loc": ["body", "reward_checkpoint"], "msg": "not used by dpo"}],
            )
        check_demonstrations(algorithm, ctx)

    def derive(self, ctx: KindContext) -> dict[str, Any]:
        beta = ctx.spec["hyperparameters"].get("beta")
        kl = ctx.spec["kl_coefficient"] if ctx.spec["kl_coefficient"] is not None else beta
        return {
            **folder_figures(ctx.spec),
            "algorithm": ctx.spec["algorithm"],
            "kl_coefficient": kl,
            "step": ctx.spec["step"],
            "metrics": ctx.spec["metrics"],
        }
