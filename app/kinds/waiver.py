"""Waivers: a deliberate, recorded override of one named rule for named records.

A waiver becomes a parent (role `waiver`) of every record it allowed, so it shows in that record's
lineage and in every handoff package downstream of it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.errors import ValidationFailed
from app.kinds.base import KindContext, KindDefinition, ParentRole
from app.records.models import Record, RecordEdge

# Rules a team may deliberately override. Separation of duties and the immutability of records are
# never waivable.
WAIVABLE_RULES = (
    "criteria_incompatible",
    "qc_gate_blocked",
    "evaluation_evidence_missing",
    "evaluation_evidence_insufficient",
    "not_deployment_candidate",
    "reward_hacking_flagged",
    "ai_review_insufficient",
    "quarantined",
)


class WaiverSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rule: str
    reason: str = Field(min_length=10)
    metadata: dict[str, Any] = {}


class WaiverKind(KindDefinition):
    name = "waiver"
    collection = "waivers"
    # after the batches it usually covers, before the dataset or checkpoint it allowed (its child)
    rank = 50
    label = "waiver"
    waivable = False
    package_fields: ClassVar[tuple[str, ...]] = ("spec.rule", "spec.reason")
    traces_to_criteria = False
    is_model = False
    trained = False
    built_by_server = False
    version_scheme = "integer"
    write_roles: ClassVar[frozenset[str]] = frozenset({"approver"})
    # a waiver covers records of every kind that declares itself waivable
    parent_roles: ClassVar[tuple[ParentRole, ...]] = (ParentRole("covers", kinds_flagged="waivable", many=True),)
    spec_model = WaiverSpec
    refuses_quarantined_parents = False  # a waiver may cover exactly such records
    top_level_fields: ClassVar[tuple[str, ...]] = ("rule",)

    def check(self, ctx: KindContext) -> None:
        if ctx.spec["rule"] not in WAIVABLE_RULES:
            raise ValidationFailed(
                f"rule {ctx.spec['rule']!r} cannot be waived; waivable rules: {list(WAIVABLE_RULES)}",
                errors=[{"loc": ["body", "rule"], "msg": "not waivable"}],
            )

    def derive(self, ctx: KindContext) -> dict[str, Any]:
        return {"approver": ctx.actor, "covers": [r.id for r in ctx.parents["covers"]]}


def waivers_covering(session: Session, project_id: str, rule: str, record_ids: Iterable[str]) -> dict[str, Record]:
    """For each record id covered by a waiver of `rule` in the project: the latest such waiver."""
    ids = list(record_ids)
    if not ids:
        return {}
    stmt = (
        select(RecordEdge.parent_id, Record)
        .join(Record, Record.id == RecordEdge.child_id)
        .where(
            RecordEdge.parent_id.in_(ids),
            RecordEdge.role == "covers",
            Record.kind == "waiver",
            Record.project_id == project_id,
            Record.spec["rule"].as_string() == rule,
        )
        .order_by(Record.id)
    )
    return {covered: waiver for covered, waiver in session.execute(stmt)}
