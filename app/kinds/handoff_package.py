"""Handoff packages: the signed archive rendered for an approved deployment (app.packages builds it).

A client never posts this spec: `POST .../handoff-packages` runs the build (app.packages.service), which
registers the record through the same pipeline as every kind, with the deployment as its parent."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from app.core.digests import is_digest
from app.core.errors import DeploymentNotApproved
from app.kinds.base import KindContext, KindDefinition, ParentRole
from app.records.models import RecordEvent


class HandoffPackageSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    archive: str
    size: int = Field(ge=0)
    inputs: str
    manifest: str
    key_id: str = Field(min_length=1)
    records: int = Field(ge=1)
    files: int = Field(ge=1)
    warnings: list[str] = []

    @field_validator("archive", "inputs", "manifest")
    @classmethod
    def _digest(cls, value: str) -> str:
        if not is_digest(value):
            raise ValueError("must be sha256:<64 hex>")
        return value


class HandoffPackageKind(KindDefinition):
    name = "handoff_package"
    collection = "handoff-packages"
    rank = 120
    label = "handoff package"
    waivable = False
    package_fields: ClassVar[tuple[str, ...]] = ()
    traces_to_criteria = False
    is_model = False
    trained = False
    version_scheme = "integer"
    write_roles: ClassVar[frozenset[str]] = frozenset({"approver"})
    parent_roles: ClassVar[tuple[ParentRole, ...]] = (ParentRole("deployment", ("deployment",)),)
    spec_model = HandoffPackageSpec
    # a package for an approved deployment found quarantined later is exactly what must be flagged
    refuses_quarantined_parents = False
    # the collection's POST builds the package (app.packages.routes) instead of registering a body
    built_by_server: ClassVar[bool] = True

    def blob_refs(self, spec: dict[str, Any]) -> list[tuple[str, str]]:
        return [("archive.zip", spec["archive"])]

    def check(self, ctx: KindContext) -> None:
        [deployment] = ctx.parents["deployment"]
        decisions = ctx.session.scalars(
            select(RecordEvent.type)
            .where(RecordEvent.record_id == deployment.id, RecordEvent.type.in_(("approved", "rejected")))
            .order_by(RecordEvent.id)
        ).all()
        if not decisions or decisions[0] != "approved":
            raise DeploymentNotApproved(
                f"deployment {deployment.name} v{deployment.version} is not approved; packages are built only "
                "for approved deployments"
            )

    def derive(self, ctx: KindContext) -> dict[str, Any]:
        [deployment] = ctx.parents["deployment"]
        return {"deployment": {"id": deployment.id, "name": deployment.name, "version": deployment.version}}
