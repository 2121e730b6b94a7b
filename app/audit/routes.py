from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query
from fastapi.responses import PlainTextResponse

from app.access import service as access_service
from app.access.service import Actor
from app.api.deps import PrincipalDep, StateDep, UowDep
from app.audit import sequencer, service, tree
from app.audit.checkpoint import note_verifier_key, signed_note
from app.audit.schemas import (
    AuditPage,
    AuditVerifyRead,
    CheckpointRead,
    ConsistencyProofRead,
    InclusionProofRead,
    SigningKeyRead,
)
from app.core.errors import Forbidden, ValidationFailed
from app.core.uow import UnitOfWork

router = APIRouter(prefix="/v1", tags=["audit"])
VIEW = frozenset({"viewer"})
NOTE_EXAMPLE = (
    "registry.example.com/audit\n42\nqD4Pc4SwPWk2ZMdJ0ZL4fc+eRyH4tTXLGFtbpGTiRXQ=\n\n"
    "\u2014 registry.example.com/audit Ab2lJ...\n"
)


def integrated(state: StateDep) -> None:
    """Integrate the events committed so far before the request reads the log, queueing behind a
    running sequencer: a client reads its own writes in the tree, whatever the merge delay. Declared
    before the unit of work, so that it runs before the unit's transaction (on SQLite, its snapshot)
    begins."""
    sequencer.integrate_pending(state.sessions, wait=True)


IntegratedDep = Annotated[None, Depends(integrated)]


@router.get("/audit", response_model=AuditPage, response_model_exclude_unset=True)
def list_audit(
    _: IntegratedDep,
    uow: UowDep,
    principal: PrincipalDep,
    project: str | None = None,
    record: str | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    if project is not None:
        access_service.project_access(uow.session, principal, project, VIEW)
    visible = None if principal.is_global_admin else list(access_service.roles_by_project(uow.session, principal))
    if cursor is not None and not cursor.isdigit():
        raise ValidationFailed("cursor must be an event index", errors=[{"loc": ["query", "cursor"], "msg": "bad"}])
    events = service.page(
        uow.session,
        projects=visible,
        project=project,
        record=record,
        after=None if cursor is None else int(cursor),
        limit=limit,
    )
    items = [service.event_to_dict(e) for e in events]
    next_cursor = str(items[-1]["index"]) if len(items) == limit else None
    return {"items": items, "next_cursor": next_cursor}


@router.get("/audit/verify")
def verify(_: IntegratedDep, uow: UowDep, principal: PrincipalDep) -> AuditVerifyRead:
    if (
        not principal.is_global_admin
        and "admin" not in access_service.roles_by_project(uow.session, principal).values()
    ):
        raise Forbidden("verifying the audit log needs the admin role")
    result = service.verify_log(uow.session)
    return AuditVerifyRead(
        ok=result.ok,
        tree_size=result.tree_size,
        root_hash=result.root_hash,
        chain_hash=result.chain_hash,
        first_bad_index=result.first_bad_index,
        problem=result.problem,
    )


def _require_viewer(uow: UnitOfWork, principal: Actor) -> None:
    """Checkpoints and proofs carry hashes only: any role in any project may read them, as /v1/audit."""
    if not principal.is_global_admin and not access_service.roles_by_project(uow.session, principal):
        raise Forbidden("the audit log's checkpoints and proofs need a role in a project")


def wants_note(accept: str | None) -> bool:
    """The signed note is asked for with `Accept: text/plain` (and no `application/json` beside it)."""
    types = {part.split(";")[0].strip().lower() for part in (accept or "").split(",")}
    return "text/plain" in types and "application/json" not in types


@router.get(
    "/audit/checkpoint",
    response_model=CheckpointRead,
    responses={
        200: {
            "description": "JSON by default; with `Accept: text/plain` the C2SP signed note (see SigningKeyRead)",
            "content": {"text/plain": {"schema": {"type": "string"}, "example": NOTE_EXAMPLE}},
        }
    },
)
def audit_checkpoint(
    _: IntegratedDep,
    uow: UowDep,
    principal: PrincipalDep,
    state: StateDep,
    accept: Annotated[str | None, Header()] = None,
) -> dict[str, Any] | PlainTextResponse:
    """The latest signed checkpoint of the whole log. `origin` is the RLHF_REGISTRY_AUDIT_ORIGIN setting
    (default `<RLHF_REGISTRY_PUBLIC_HOST>/audit`, a URL without its scheme; give each deployment its own).

    With `Accept: text/plain` the same checkpoint is a C2SP signed note (https://c2sp.org/signed-note):
    origin, tree size and base64 root hash, a blank line, then `\u2014 <origin> <base64(key id ||
    signature)>`; `GET /v1/signing-key` gives its verifier key (`note_key`)."""
    _require_viewer(uow, principal)
    checkpoint = tree.checkpoint(uow.session, state.signing_key, state.settings.audit_origin)
    if wants_note(accept):
        root = bytes.fromhex(checkpoint["root_hash"])
        note = signed_note(state.signing_key, checkpoint["origin"], checkpoint["tree_size"], root)
        return PlainTextResponse(note)
    return checkpoint


@router.get("/audit/proofs/inclusion", response_model=InclusionProofRead)
def inclusion_proof(
    _: IntegratedDep,
    uow: UowDep,
    principal: PrincipalDep,
    index: Annotated[int, Query(ge=0, description="the event's index")],
    tree_size: Annotated[int | None, Query(ge=1, description="a past tree size; the whole log if omitted")] = None,
) -> dict[str, Any]:
    """RFC 9162 inclusion proof of event `index` in the tree of the first `tree_size` events."""
    _require_viewer(uow, principal)
    return tree.inclusion(uow.session, index, tree_size)


@router.get("/audit/proofs/consistency", response_model=ConsistencyProofRead)
def consistency_proof(
    _: IntegratedDep,
    uow: UowDep,
    principal: PrincipalDep,
    first: Annotated[int, Query(alias="from", ge=1, description="the older tree size")],
    second: Annotated[
        int | None, Query(alias="to", ge=1, description="the newer tree size; the log if omitted")
    ] = None,
) -> dict[str, Any]:
    """RFC 9162 consistency proof that the tree of `to` events extends the tree of `from` events."""
    _require_viewer(uow, principal)
    return tree.consistency(uow.session, first, second)


@router.get("/signing-key")
def signing_key(state: StateDep, principal: PrincipalDep) -> SigningKeyRead:
    key = state.signing_key
    return SigningKeyRead(
        key_id=key.key_id,
        algorithm="ed25519",
        public_key_pem=key.public_key_pem(),
        note_key=note_verifier_key(state.settings.audit_origin, key.public),
    )
