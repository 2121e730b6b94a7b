"""Deployments: a policy checkpoint proposed as a deployment candidate with its evaluations. Approval
and rejection are append-only events (app.decisions), never edits of this record."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from app.core.errors import ValidationFailed
from app.kinds.base import KindContext, KindDefinition, ParentRole


class DeploymentSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    justification: str = Field(min_length=1)
    environment: str | None = None
    metadata: dict[str, Any] = {}


class DeploymentKind(KindDefinition):
    name = "deployment"
    collection = "deployments"
    rank = 110
    label = "deployment"
    waivable = True
    package_fields: ClassVar[tuple[str, ...]] = ("spec.justification",)
    traces_to_criteria = True
    is_model = False
    trained = False
    built_by_server = False
    version_scheme = "integer"
    write_roles: ClassVar[frozenset[str]] = frozenset({"trainer", "approver"})
    parent_roles: ClassVar[tuple[ParentRole, ...]] = (
        ParentRole("policy_checkpoint", ("policy_checkpoint",)),
        ParentRole("evaluations", ("evaluation",), required=False, many=True),
    )
    spec_model = DeploymentSpec

    def check(self, ctx: KindContext) -> None:
        [checkpoint] = ctx.parents["policy_checkpoint"]
        stray = [e for e in ctx.parents["evaluations"] if not any(p["id"] == checkpoint.id for p in e.parents)]
        if stray:
            raise ValidationFailed(
                "every evaluation of a deployment must evaluate its policy checkpoint",
                errors=[
                    {"loc": ["body", "evaluations"], "msg": f"{e.name} v{e.version} evaluates another record"}
                    for e in stray
                ],
            )

    def derive(self, ctx: KindContext) -> dict[str, Any]:
        [checkpoint] = ctx.parents["policy_checkpoint"]
        return {
            "policy_checkpoint": {"name": checkpoint.name, "version": checkpoint.version},
            "evidence_types": sorted({e.spec["type"] for e in ctx.parents["evaluations"]}),
        }
