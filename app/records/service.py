"""The one record pipeline every kind goes through:

validate spec -> lock the series -> idempotency and version -> resolve and check parents -> blobs ->
kind rules -> derived figures -> digest -> insert record, edges and audit event (committed by the caller).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from app.access.service import Actor, Identity
from app.audit import service as audit_service
from app.blobs import service as blobs_service
from app.blobs.models import Blob
from app.core import names
from app.core.db import utcnow
from app.core.digests import digest_of, is_digest
from app.core.errors import (
    BlobMissing,
    CrossProjectReference,
    MissingReference,
    NotFound,
    Quarantined,
    ValidationFailed,
    VersionConflict,
)
from app.core.ids import uuid7
from app.core.uow import UnitOfWork
from app.kinds.base import EffectivePolicy, KindContext, KindDefinition, ParentRole
from app.kinds.policy import DEFAULT_POLICY
from app.kinds.tables import TableLimits
from app.kinds.waiver import waivers_covering
from app.lineage.service import quarantined_among
from app.records import repository
from app.records.models import Record, RecordBlob, RecordEdge
from app.records.versioning import normalise, parse_integer
from app.storage.base import BlobStore

# reads every blob: the identity under which the server cites blobs it wrote itself
SERVER = Actor(id="", name="rlhf-registry", is_global_admin=True)
ENVELOPE_KEYS = {"name", "version", "spec"}


@dataclass(frozen=True)
class Registration:
    """The registered (or already stored) record's columns. A new record is written with a Core insert
    and never tracked by the session (it never changes), so `record` is a transient entity of them."""

    fields: dict[str, Any]
    created: bool
    # the leaf hash of the `record.registered` event of a new record: the client can ask for its
    # inclusion proof once the sequencer has integrated it (None when the record existed already)
    audit_leaf_hash: str | None = None

    @classmethod
    def of(cls, record: Record, *, created: bool) -> Registration:
        return cls({key: getattr(record, key) for key in COLUMNS}, created)

    @property
    def record(self) -> Record:
        return Record(**self.fields)


COLUMNS = tuple(column.key for column in Record.__table__.columns)


def effective_policy(conn: Connection, project_id: str) -> EffectivePolicy:
    params = repository.series(project_id, "policy", "default")
    row = conn.execute(repository.LATEST_VERSION_AND_SPEC, params).first()
    if row is None:
        return EffectivePolicy(version=0, spec=DEFAULT_POLICY)
    return EffectivePolicy(version=int(row[0]), spec=row[1])


def _body_name(kind: KindDefinition, body: dict[str, Any]) -> str:
    return names.check_record_name(body.get("name", kind.default_name), loc=["body", "name"])


def _check_keys(kind: KindDefinition, body: dict[str, Any]) -> None:
    allowed = ENVELOPE_KEYS | {role.role for role in kind.parent_roles} | set(kind.top_level_fields)
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise ValidationFailed(
            f"unknown top-level field(s) {unknown} for kind {kind.name}; allowed: {sorted(allowed)}",
            errors=[{"loc": ["body", key], "msg": "unknown field"} for key in unknown],
        )


def resolve_ref(session: Session, project_id: str, kinds: tuple[str, ...], ref: Any, loc: list[Any]) -> Record:
    """A reference is {"id"} or {"name", "version"}; `latest` is resolved now and pinned."""
    if not isinstance(ref, dict):
        raise ValidationFailed(
            'a reference is {"id"} or {"name", "version"}', errors=[{"loc": loc, "msg": "not an object"}]
        )
    record: Record | None = None
    if "id" in ref:
        record = session.execute(repository.BY_ID, {"id": str(ref["id"])}).scalar()
        if record is not None and record.project_id != project_id:
            raise CrossProjectReference(
                f"record {ref['id']} belongs to another project; references stay inside one project",
                errors=[{"loc": loc, "msg": "record of another project"}],
            )
        if record is not None and record.kind not in kinds:
            raise MissingReference(
                f"record {ref['id']} is a {record.kind}, expected {' or '.join(kinds)}",
                errors=[{"loc": loc, "msg": f"wrong kind {record.kind}"}],
            )
    elif "name" in ref and "version" in ref:
        for kind in kinds:
            record = _series_version(session, project_id, kind, str(ref["name"]), str(ref["version"]))
            if record is not None:
                break
    else:
        raise ValidationFailed(
            'a reference is {"id"} or {"name", "version"}', errors=[{"loc": loc, "msg": "bad reference"}]
        )
    if record is None:
        raise MissingReference(
            f"no {' or '.join(kinds)} record matches {ref}; register it first",
            errors=[{"loc": loc, "msg": "not found"}],
        )
    return record


def _resolve_parents(
    session: Session, project_id: str, kind: KindDefinition, body: dict[str, Any]
) -> dict[str, list[Record]]:
    parents: dict[str, list[Record]] = {}
    for role in kind.parent_roles:
        parents[role.role] = _resolve_role(session, project_id, role, body.get(role.role))
    return parents


def _resolve_role(session: Session, project_id: str, role: ParentRole, value: Any) -> list[Record]:
    if value is None:
        if role.required:
            raise MissingReference(
                f"a {role.role} reference is required ({' or '.join(role.kinds)})",
                errors=[{"loc": ["body", role.role], "msg": "required"}],
            )
        return []
    refs = value if role.many else [value]
    if role.many and (not isinstance(value, list) or (role.required and not value)):
        raise ValidationFailed(
            f"{role.role} must be a non-empty list of references",
            errors=[{"loc": ["body", role.role], "msg": "expected a list"}],
        )
    return [
        resolve_ref(session, project_id, role.kinds, ref, ["body", role.role, *([i] if role.many else [])])
        for i, ref in enumerate(refs)
    ]


def _check_quarantine(
    session: Session, project_id: str, kind: KindDefinition, parents: dict[str, list[Record]]
) -> list[Record]:
    """Refuse quarantined parents unless waived; returns the waivers that allowed some."""
    if not kind.refuses_quarantined_parents:
        return []
    ids = {r.id for records in parents.values() for r in records}
    bad = quarantined_among(session, ids)
    if not bad:
        return []
    waivers = waivers_covering(session, project_id, "quarantined", bad)
    unwaived = sorted(bad - set(waivers))
    if unwaived:
        records = {r.id: r for rs in parents.values() for r in rs}
        raise Quarantined(
            "revoked upstream, so it cannot be used: "
            + ", ".join(f"{records[i].kind} {records[i].name} v{records[i].version}" for i in unwaived)
            + "; an approver may register a waiver for rule quarantined covering it",
            extra={"records": unwaived},
        )
    return list({w.id: w for w in waivers.values()}.values())


def _resolve_blobs(session: Session, reader: Identity, refs: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """The cited blobs with their sizes. Citing a blob needs the right to read it (`readable_sizes`):
    a record that lists a digest opens that blob to every viewer of its project. A blob the reader may
    not read is refused exactly like one never uploaded, without its size."""
    digests = {digest for _, digest in refs}
    bad = sorted(d for d in digests if not is_digest(d))
    if bad:
        raise ValidationFailed(f"not digests of the form sha256:<hex>: {bad}")
    sizes = blobs_service.readable_sizes(session, reader, digests)
    missing = [(path, digest) for path, digest in refs if digest not in sizes]
    if missing:
        raise BlobMissing(
            f"{len(missing)} blob(s) are not uploaded; POST them to /v1/blobs first",
            errors=[{"loc": ["spec", path], "msg": f"{digest} not uploaded"} for path, digest in missing],
        )
    return [{"path": path, "digest": digest, "size": sizes[digest]} for path, digest in refs]


def _citing(session: Session, kind: KindDefinition, actor: str) -> Identity:
    """Whose right to read the cited blobs counts: the registering principal (every caller names it by
    `actor`; an unknown name reads nothing), or the server for a kind only it builds (a handoff
    package's archive, which it has just written: no client chose the digest)."""
    if kind.built_by_server:
        return SERVER
    return blobs_service.reader_named(session, actor)


def register(
    uow: UnitOfWork,
    *,
    project_id: str,
    project_name: str,
    actor: str,
    kind: KindDefinition,
    body: Any,
    store: BlobStore,
    limits: TableLimits | None = None,
) -> Registration:
    """Register `body` as a record of `kind`; `limits` bound the rows and folder files of a client's
    registration."""
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a JSON object", errors=[{"loc": ["body"], "msg": "not an object"}])
    _check_keys(kind, body)
    name = _body_name(kind, body)
    raw_spec = body.get("spec", {})
    if kind.top_level_fields and isinstance(raw_spec, dict):
        raw_spec = {**raw_spec, **{key: body[key] for key in kind.top_level_fields if key in body}}
    if limits is not None:
        limits.check_folder(raw_spec)
    spec = kind.parse_spec(raw_spec)
    parents = _resolve_parents(uow.session, project_id, kind, body) if kind.parent_roles else {}
    waived = _check_quarantine(uow.session, project_id, kind, parents) if any(parents.values()) else []
    parent_refs = [
        {"id": record.id, "kind": record.kind, "role": role} for role, records in parents.items() for record in records
    ]
    blob_refs = kind.blob_refs(spec)
    blobs = _resolve_blobs(uow.session, _citing(uow.session, kind, actor), blob_refs) if blob_refs else []
    content = {"kind": kind.name, "name": name, "parents": parent_refs, "spec": spec, "blobs": blobs}
    content_digest = digest_of(content)

    conn = uow.connection
    last_version = repository.lock_series(conn, project_id, kind.name, name)
    declared = body.get("version")
    if declared is None:
        if kind.version_scheme == "semver":
            raise ValidationFailed(
                f"{kind.name} versions are semver (MAJOR.MINOR.PATCH) and must be declared",
                errors=[{"loc": ["body", "version"], "msg": "required"}],
            )
        params = repository.series(project_id, kind.name, name, content_digest=content_digest)
        same = conn.execute(repository.ID_BY_CONTENT, params).scalar()
        if same is not None:
            return Registration.of(uow.session.get_one(Record, same), created=False)
        version, version_key = normalise("integer", last_version + 1)
    else:
        version, version_key = normalise(kind.version_scheme, declared)
        existing = _series_version(uow.session, project_id, kind.name, name, version)
        if existing is not None:
            if existing.content_digest == content_digest:
                return Registration.of(existing, created=False)
            raise VersionConflict(
                f"{kind.name} {name} {version} already exists with different content; records never change, "
                "register a new version",
                extra={"existing": {"id": existing.id, "digest": existing.digest}},
            )
        if kind.version_scheme == "integer" and parse_integer(version) != last_version + 1:
            raise VersionConflict(
                f"the next version of {kind.name} {name} is {last_version + 1}; omit version to get it",
                extra={"next_version": last_version + 1},
            )

    policy = effective_policy(conn, project_id)
    previous = _series_version(uow.session, project_id, kind.name, name, "latest") if kind.reads_previous else None
    ctx = KindContext(
        uow=uow,
        project_id=project_id,
        project_name=project_name,
        actor=actor,
        name=name,
        version=version,
        spec=spec,
        parents=parents,
        previous=previous,
        policy=policy,
        store=store,
        blobs_resolved=blobs,
        limits=limits,
    )
    kind.check(ctx)
    derived = kind.derive(ctx)
    added = {record.id for record, _ in ctx.added_parents}
    ctx.added_parents += [(w, "waiver") for w in waived if w.id not in added]
    parent_refs = parent_refs + [
        {"id": record.id, "kind": record.kind, "role": role} for record, role in ctx.added_parents
    ]
    derived_blobs = _register_derived_blobs(uow.session, ctx.derived_blobs) if ctx.derived_blobs else []

    # the record digest covers what the server derived too (deterministic from the content), so a
    # handoff package can prove the figures it prints
    digest = digest_of(
        {**content, "parents": parent_refs, "project": project_name, "version": version, "derived": derived}
    )
    row = {
        "id": uuid7(),
        "kind": kind.name,
        "project_id": project_id,
        "name": name,
        "version": version,
        "version_key": version_key,
        "digest": digest,
        "content_digest": content_digest,
        "created_at": utcnow(),
        "created_by": actor,
        "parents": parent_refs,
        "spec": spec,
        "blobs": blobs,
        "derived": derived,
    }
    # a Core insert: the record never changes after this, so the session need not track it
    conn.execute(repository.INSERT_RECORD, row)
    if kind.version_scheme == "integer":
        repository.set_last_version(conn, project_id, kind.name, name, int(version))
    edges = {(p["id"], p["role"]): p for p in parent_refs}.values()
    stored_blobs = [*blobs, *derived_blobs]
    if edges or stored_blobs:
        uow.session.add_all(RecordEdge(child_id=row["id"], parent_id=p["id"], role=p["role"]) for p in edges)
        uow.session.add_all(RecordBlob(record_id=row["id"], path=b["path"], digest=b["digest"]) for b in stored_blobs)
    event = uow.audit(
        actor=actor,
        action="record.registered",
        target=f"record:{row['id']}",
        project=project_name,
        payload={"kind": kind.name, "name": name, "version": version, "digest": digest},
        policy_version=policy.version,
    )
    return Registration(row, created=True, audit_leaf_hash=audit_service.leaf_hash_of(uow.request_id, event))


def _register_derived_blobs(session: Session, produced: list[tuple[str, str, int]]) -> list[dict[str, Any]]:
    """Blob rows for files the server wrote while deriving; their paths live under `derived/`."""
    if not produced:
        return []
    known = set(session.scalars(select(Blob.digest).where(Blob.digest.in_([d for _, d, _ in produced]))))
    fresh = {digest: size for _, digest, size in produced if digest not in known}
    session.add_all(Blob(digest=digest, size=size) for digest, size in fresh.items())
    session.flush()
    return [{"path": f"derived/{path}", "digest": d, "size": size} for path, d, size in produced]


def get_in_project(session: Session, project_id: str, kind: str, name: str, version: str) -> Record:
    record = _series_version(session, project_id, kind, name, version)
    if record is None:
        raise NotFound(f"no {kind} {name} version {version}")
    return record


def _series_version(session: Session, project_id: str, kind: str, name: str, version: str) -> Record | None:
    """A version of a series, or its latest for `latest`."""
    if version == "latest":
        return session.execute(repository.LATEST, repository.series(project_id, kind, name)).scalar()
    return session.execute(repository.AT_VERSION, repository.series(project_id, kind, name, version=version)).scalar()


def get_visible(session: Session, record_id: str) -> tuple[Record, str]:
    """A record by id with its project's name; visibility is checked by the caller."""
    row = session.execute(repository.RECORD_WITH_PROJECT_NAME, {"id": record_id}).first()
    if row is None:
        raise NotFound(f"record {record_id} not found")
    return row[0], row[1]
