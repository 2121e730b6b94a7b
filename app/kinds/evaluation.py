"""Evaluations: evidence about a checkpoint (human preference and rating results, reward scores,
adversarial-prompt results, length-reward correlation, KL to the reference)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, field_validator

from app.core.digests import is_digest
from app.kinds.base import KindContext, KindDefinition, ParentRole


class EvaluationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["human_preference", "human_rating", "reward_score", "adversarial", "length_reward_correlation", "kl"]
    summary: dict[str, Any] = {}
    evidence_blob: str | None = None
    evaluators: list[str] = []
    metadata: dict[str, Any] = {}

    @field_validator("evidence_blob")
    @classmethod
    def _digest(cls, value: str | None) -> str | None:
        if value is not None and not is_digest(value):
            raise ValueError("evidence_blob must be sha256:<64 hex>")
        return value


class EvaluationKind(KindDefinition):
    name = "evaluation"
    collection = "evaluations"
    rank = 100
    label = "evaluation"
    waivable = True
    package_fields: ClassVar[tuple[str, ...]] = ("spec.type",)
    traces_to_criteria = False
    is_model = False
    trained = False
    built_by_server = False
    version_scheme = "integer"
    write_roles: ClassVar[frozenset[str]] = frozenset({"trainer"})
    parent_roles: ClassVar[tuple[ParentRole, ...]] = (
        ParentRole("target", ("policy_checkpoint", "reward_checkpoint", "base_model")),
    )
    spec_model = EvaluationSpec
    refuses_quarantined_parents = False  # evidence about a bad checkpoint is still evidence

    def blob_refs(self, spec: dict[str, Any]) -> list[tuple[str, str]]:
        return [("evidence", spec["evidence_blob"])] if spec.get("evidence_blob") else []

    def derive(self, ctx: KindContext) -> dict[str, Any]:
        [target] = ctx.parents["target"]
        return {
            "type": ctx.spec["type"],
            "target": {"kind": target.kind, "name": target.name, "version": target.version},
        }
