"""What a record kind declares: its collection, version scheme, writers, typed parents, spec schema,
rules and derived figures, and what the rest of the registry needs to know about it (its rank and label
in displays, whether it can be waived, what a handoff package requires of it, whether it is a model or
trained). The record pipeline (app.records.service) runs every kind the same way, and every other
module asks app.kinds.registry instead of keeping a list of kinds, so adding a kind is adding one module
here and one line in app.kinds.registry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from app.core.errors import ValidationFailed
from app.core.uow import UnitOfWork
from app.kinds.tables import TableLimits
from app.records.models import Record
from app.storage.base import BlobStore

VersionScheme = Literal["integer", "semver"]


@dataclass(frozen=True)
class ParentRole:
    """A parent reference a kind takes at the top level of the request body, under `role`."""

    role: str
    kinds: tuple[str, ...] = ()
    required: bool = True
    many: bool = False
    # instead of naming `kinds`: every registered kind whose declaration sets this flag (a waiver covers
    # whatever is waivable), filled in by app.kinds.registry once every kind is known
    kinds_flagged: str | None = None


@dataclass(frozen=True)
class RequiredFigure:
    """A number a handoff package cannot do without, which a record may give under any of `paths`."""

    what: str
    paths: tuple[str, ...]


@dataclass(frozen=True)
class EffectivePolicy:
    version: int
    spec: dict[str, Any]


@dataclass
class KindContext:
    """Everything a kind's rules may look at while one record is being registered."""

    uow: UnitOfWork
    project_id: str
    project_name: str
    actor: str
    name: str
    version: str
    spec: dict[str, Any]
    parents: dict[str, list[Record]]
    previous: Record | None  # None also when the kind does not declare `reads_previous`
    policy: EffectivePolicy
    store: BlobStore
    blobs_resolved: list[dict[str, Any]] = field(default_factory=list)
    # parents a rule adds by itself (a waiver that allowed this record), recorded with their role
    added_parents: list[tuple[Record, str]] = field(default_factory=list)
    # blobs the server produced while deriving (a dataset's Parquet file): (path, digest, size)
    derived_blobs: list[tuple[str, str, int]] = field(default_factory=list)
    # anything a kind computed in check() and wants again in derive() (a parsed table)
    scratch: dict[str, Any] = field(default_factory=dict)
    # what the rows a client sends may hold; None for what the server registers itself
    limits: TableLimits | None = None

    @property
    def session(self) -> Session:
        """The unit of work's ORM session (built on first use)."""
        return self.uow.session


class KindDefinition:
    name: ClassVar[str]
    collection: ClassVar[str]
    # Declared by every kind (tests/kinds/test_registry.py checks that each sets them in its own class):
    # where it sorts in listings, lineage drawings and packages, upstream first (spaced, so that a kind
    # fits in between without renumbering), and the words a page shows for it
    rank: ClassVar[int]
    label: ClassVar[str]
    # whether a waiver may cover a record of this kind
    waivable: ClassVar[bool]
    # dotted paths into the envelope (`spec.…`, `derived.…`) that must hold a value for a handoff package
    # to be rendered with this record in it; empty: the package requires nothing of it
    package_fields: ClassVar[tuple[str, ...]]
    # whether a package's verification requires a criteria record upstream of every record of this kind
    # (the lineage the rules require: deployment, checkpoints, datasets, batches)
    traces_to_criteria: ClassVar[bool]
    # whether a record is a model folder (`config.json`, tokenizer, weights) a worker can load
    is_model: ClassVar[bool]
    # whether a record is produced by a training run (a checkpoint), so a package carries its provenance
    trained: ClassVar[bool]
    # whether only the server registers it: the collection's POST builds it in its domain package
    # (app.packages.routes) instead of registering a body, and the blobs it cites are the server's own
    built_by_server: ClassVar[bool]
    # for a trained kind: which of its parent roles each input role of a run fills (a run's `base_model`
    # is a policy checkpoint's `reference_model`), used where a run registers it
    parents_from_run_inputs: ClassVar[dict[str, str]] = {}
    # numbers a handoff package requires that a record may give under one of several paths
    package_figures: ClassVar[tuple[RequiredFigure, ...]] = ()
    version_scheme: ClassVar[VersionScheme] = "integer"
    write_roles: ClassVar[frozenset[str]] = frozenset({"admin"})
    # whether check() or derive() reads `KindContext.previous` (the series' latest record); the pipeline
    # loads it only then
    reads_previous: ClassVar[bool] = False
    parent_roles: ClassVar[tuple[ParentRole, ...]] = ()
    spec_model: ClassVar[type[BaseModel]]
    default_name: ClassVar[str | None] = None
    # a revoked record, or anything downstream of one, cannot become a parent of this kind (DESIGN.md,
    # Revocation) unless a waiver for rule `quarantined` covers it
    refuses_quarantined_parents: ClassVar[bool] = True
    # top-level body fields that are content, not parent references (a waiver's `rule`): moved into spec
    top_level_fields: ClassVar[tuple[str, ...]] = ()

    def parse_spec(self, raw: Any) -> dict[str, Any]:
        if not isinstance(raw, dict):
            raise ValidationFailed(
                "spec must be a JSON object", errors=[{"loc": ["body", "spec"], "msg": "not an object"}]
            )
        try:
            model = self.spec_model.model_validate(raw)
        except ValidationError as exc:
            raise ValidationFailed(
                f"the {self.name} spec is not valid: {exc.error_count()} problem(s)",
                errors=[{"loc": ["body", "spec", *err["loc"]], "msg": err["msg"]} for err in exc.errors()],
            ) from None
        return model.model_dump(mode="json")

    def blob_refs(self, spec: dict[str, Any]) -> list[tuple[str, str]]:
        """(path, digest) of every blob the spec names; they become the envelope's `blobs`."""
        return []

    def check(self, ctx: KindContext) -> None:
        """Refuse the registration (raise an AppError) when a rule of this kind does not hold."""

    def derive(self, ctx: KindContext) -> dict[str, Any]:
        """Figures the server computes at registration, deterministic from the content."""
        return {}
