"""Building a handoff package for an approved deployment and registering it as a `handoff_package` record.

gather the closure -> check the required fields -> (same inputs as an existing package: return it) ->
figures, HTML, PDF -> records, provenance, public key -> signed manifest -> reproducible zip -> blob ->
record through the one registration pipeline, with the deployment as its parent.

Idempotency: a package's `spec.inputs` is a digest of everything it is rendered from (records, decisions,
audit events, runs, format version, signing key). Building again with the same inputs returns the
existing record (200) without rendering; anything new upstream (a revocation, a newer series checkpoint,
an evaluation) gives new inputs and the next version of the package."""

from __future__ import annotations

import hashlib
import io
import zipfile
from dataclasses import dataclass
from typing import Any

from app.core.errors import ValidationFailed
from app.core.signing import SigningKey
from app.core.uow import UnitOfWork
from app.kinds.registry import KINDS
from app.packages import repository
from app.packages.archive import MANIFEST, PUBLIC_KEY, json_bytes, record_path, sign_manifest, zip_bytes
from app.packages.document import FORMAT_VERSION, Document, build_document
from app.packages.dsse import SLSA_PROVENANCE_V1, sign_statement, statement
from app.packages.gather import Closure, gather
from app.packages.provenance import provenance_statements
from app.packages.render import render_html, render_pdf
from app.packages.required import check_required
from app.records import service as records_service
from app.records.models import Record
from app.records.schemas import to_read
from app.records.service import Registration
from app.storage.base import BlobStore, put_bytes

BODY_KEYS = frozenset({"deployment", "name"})


@dataclass(frozen=True)
class Archive:
    data: bytes
    files: dict[str, bytes]
    warnings: list[str]


def _parse_body(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a JSON object", errors=[{"loc": ["body"], "msg": "not an object"}])
    unknown = sorted(set(body) - BODY_KEYS)
    if unknown:
        raise ValidationFailed(
            f"unknown field(s) {unknown}; a package build takes {sorted(BODY_KEYS)}",
            errors=[{"loc": ["body", key], "msg": "unknown field"} for key in unknown],
        )
    if "deployment" not in body:
        raise ValidationFailed(
            'name the deployment: {"deployment": {"id"} or {"name", "version"}}',
            errors=[{"loc": ["body", "deployment"], "msg": "required"}],
        )
    if "name" in body and not isinstance(body["name"], str):
        raise ValidationFailed("name must be a string", errors=[{"loc": ["body", "name"], "msg": "not a string"}])
    return body


def manifest_predicate(closure: Closure, document: Document, *, name: str, inputs: str) -> dict[str, Any]:
    """The manifest's predicate: what the package is about, its lineage and the decisions behind it."""
    graph = closure.graph
    return {
        "format": FORMAT_VERSION,
        "project": closure.project,
        "package": name,
        "inputs": inputs,
        "deployment": closure.deployment.pinned(),
        "checkpoint": closure.checkpoint.pinned(),
        "policy_version": closure.policy.version,
        "lineage": {
            "nodes": [
                {
                    **r.pinned(),
                    "status": graph.status(r.id) if r.id in graph.nodes else "registered",
                    "stale": graph.stale(r.id),
                    "quarantined": graph.quarantined(r.id),
                }
                for r in closure.ordered()
            ],
            "edges": [
                {"child": child, "parent": parent, "role": role}
                for child, parent, role in graph.edges
                if child in closure.records and parent in closure.records
            ],
        },
        "decisions": [
            {
                "record": e.record_id,
                "type": e.type,
                "actor": e.actor,
                "data": e.data,
                "at": e.created_at.isoformat().replace("+00:00", "Z"),
            }
            for e in closure.events
        ],
        "audit_events": closure.audit,
        "warnings": document.warnings,
    }


def assemble(closure: Closure, store: BlobStore, *, name: str, inputs: str, key: SigningKey) -> Archive:
    """Render and sign everything; the zip's bytes depend only on the closure and the key."""
    document = build_document(closure, store, package_name=name, inputs=inputs, key_id=key.key_id)
    html = render_html(document.context)
    files: dict[str, bytes] = {
        "handoff.html": html.encode(),
        "handoff.pdf": render_pdf(html),
        PUBLIC_KEY: key.public_key_pem().encode(),
    }
    files |= {f"plots/{plot.name}": plot.png for plot in document.plots}
    files |= {
        record_path(r.id): json_bytes(to_read(r, closure.project).model_dump(mode="json"))
        for r in closure.records.values()
    }
    for path, subjects, predicate in provenance_statements(closure, store):
        files[path] = sign_statement(
            statement(subjects, SLSA_PROVENANCE_V1, predicate), key_id=key.key_id, sign=key.sign
        )
    files[MANIFEST] = sign_manifest(
        files,
        {r.id: r.digest for r in closure.records.values()},
        manifest_predicate(closure, document, name=name, inputs=inputs),
        key_id=key.key_id,
        sign=key.sign,
    )
    return Archive(zip_bytes(files), files, document.warnings)


def build_package(
    uow: UnitOfWork,
    *,
    project_id: str,
    project_name: str,
    actor: str,
    body: Any,
    store: BlobStore,
    key: SigningKey,
) -> Registration:
    session = uow.session
    body = _parse_body(body)
    deployment = records_service.resolve_ref(
        session, project_id, ("deployment",), body["deployment"], ["body", "deployment"]
    )
    closure = gather(session, deployment, project_name)
    check_required(closure)
    name = body.get("name") or f"{deployment.name}-v{deployment.version}"
    inputs = closure.fingerprint(format_version=FORMAT_VERSION, key_id=key.key_id)
    existing = session.execute(repository.package_with_inputs(project_id, name, inputs)).scalar()
    if existing is not None:
        return Registration.of(existing, created=False)
    archive = assemble(closure, store, name=name, inputs=inputs, key=key)
    info = put_bytes(store, archive.data)
    repository.note_blob(session, info.digest, info.size)
    spec = {
        "archive": info.digest,
        "size": info.size,
        "inputs": inputs,
        "manifest": "sha256:" + hashlib.sha256(archive.files[MANIFEST]).hexdigest(),
        "key_id": key.key_id,
        "records": len(closure.records),
        "files": len(archive.files),
        "warnings": archive.warnings,
    }
    registration = records_service.register(
        uow,
        project_id=project_id,
        project_name=project_name,
        actor=actor,
        kind=KINDS["handoff_package"],
        body={"name": name, "deployment": {"id": deployment.id}, "spec": spec},
        store=store,
    )
    if registration.created:
        uow.audit(
            actor=actor,
            action="handoff_package.built",
            target=f"record:{registration.record.id}",
            project=project_name,
            payload={"deployment": deployment.id, "archive": info.digest, "inputs": inputs},
            policy_version=closure.policy.version,
        )
    return registration


def archive_digest(record: Record) -> str:
    if record.kind != "handoff_package":
        raise ValidationFailed(f"record {record.id} is a {record.kind}, not a handoff package")
    return str(record.spec["archive"])


def open_archive(store: BlobStore, record: Record) -> zipfile.ZipFile:
    """The package's zip, opened in memory (packages are small: documents, figures and JSON)."""
    return zipfile.ZipFile(io.BytesIO(b"".join(store.iter_bytes(archive_digest(record)))))
