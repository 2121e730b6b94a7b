"""External runs: training that a team runs on its own machines (its own TRL script, OpenRLHF, a cluster
job), reported into the registry so that its checkpoints keep their lineage and provenance.

An external run pins registered inputs like any run (a `base_model`, and any of a `dataset`, a
`reward_checkpoint` and `demonstrations`), is never queued to a worker (it is `running` from its
creation) and comes with a token, returned once, that is good for that run only: reading the run and
its inputs' blobs, posting its events, uploading blobs, registering checkpoints whose parents are the
run's inputs, and finishing it. The token expires (`RLHF_REGISTRY_EXTERNAL_RUN_TOKEN_DAYS`) and dies when
the run ends, however it ends. It is not an API token: every other route answers it 403
(`app.access.service.authenticate`)."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.access.models import Principal
from app.access.service import Actor
from app.core import names
from app.core.db import utcnow
from app.core.errors import NotFound, RunTokenScope, Unauthenticated, ValidationFailed
from app.core.security import RUN_TOKEN_PREFIX, bearer_secret, hash_token
from app.core.settings import Settings
from app.core.uow import UnitOfWork
from app.kinds.registry import KINDS, kinds_where
from app.records import service as records_service
from app.records.models import Record
from app.runs import service
from app.runs.model_inputs import check_model_folder
from app.runs.models import Run
from app.runs.service import InputRule
from app.storage.base import BlobStore

KIND = "external"
INPUTS: tuple[InputRule, ...] = (
    InputRule("base_model", ("base_model", "policy_checkpoint")),
    InputRule("dataset", ("preference_dataset",)),
    InputRule("reward_checkpoint", ("reward_checkpoint",)),
    InputRule("demonstrations", ("demonstration_set",)),
)
REQUIRED = frozenset({"base_model"})
ENDINGS = ("succeeded", "failed")
# the parent roles of each kind an external run registers, filled from the run's input of that role
PARENTS: dict[str, dict[str, str]] = {kind: KINDS[kind].parents_from_run_inputs for kind in kinds_where(trained=True)}


def _builder(body: dict[str, Any]) -> dict[str, Any]:
    builder = body.get("builder")
    if not isinstance(builder, dict) or not isinstance(builder.get("id"), str) or not builder["id"].strip():
        raise ValidationFailed(
            'an external run names the builder that trains it: builder: {"id": "<URI of the job or workflow>"}',
            errors=[{"loc": ["body", "builder", "id"], "msg": "required string"}],
        )
    return builder


def _resolve(session: Session, project_id: str, inputs: dict[str, Any]) -> dict[str, Record]:
    allowed = {rule.role for rule in INPUTS}
    unknown = sorted(set(inputs) - allowed)
    if unknown:
        raise ValidationFailed(
            f"an external run takes inputs {sorted(allowed)}; unknown: {unknown}",
            errors=[{"loc": ["body", "inputs", role], "msg": "unknown input"} for role in unknown],
        )
    missing = sorted(REQUIRED - set(inputs))
    if missing:
        raise ValidationFailed(
            "an external run needs inputs.base_model (base_model or policy_checkpoint)",
            errors=[{"loc": ["body", "inputs", role], "msg": "required"} for role in missing],
        )
    resolved = {
        rule.role: records_service.resolve_ref(
            session, project_id, rule.kinds, inputs[rule.role], ["body", "inputs", rule.role]
        )
        for rule in INPUTS
        if rule.role in inputs
    }
    service.check_inputs(session, KIND, resolved, inputs)
    for role, record in resolved.items():
        if KINDS[record.kind].is_model:
            check_model_folder(role, record)
    return resolved


def create_run(
    uow: UnitOfWork, *, project_id: str, project_name: str, actor: str, body: dict[str, Any], settings: Settings
) -> tuple[Run, str]:
    """Record an external run as running, with its inputs pinned; returns the run and its token's secret
    (only its hash is stored). `params` are what the team declares of its training, kept as sent, with
    the `builder`."""
    session = uow.session
    builder = _builder(body)
    resolved = _resolve(session, project_id, service.object_or_empty(body, "inputs"))
    output_name = body.get("output_name")
    if output_name is None:
        output_name = f"external-{utcnow():%Y%m%d%H%M%S}"
    names.check_record_name(output_name, loc=["body", "output_name"])
    pinned = {role: r.pinned() for role, r in resolved.items()}
    secret = RUN_TOKEN_PREFIX + secrets.token_urlsafe(32)
    now = utcnow()
    run = Run(
        project_id=project_id,
        kind=KIND,
        status="running",
        inputs=pinned,
        params={**service.object_or_empty(body, "params"), "builder": builder},
        output_name=output_name,
        outputs=[],
        created_by=actor,
        started_at=now,
        max_attempts=1,
        attempt=1,
        last_seq=0,
        token_hash=hash_token(secret),
        token_expires_at=now + timedelta(days=settings.external_run_token_days),
    )
    session.add(run)
    session.flush()
    service.add_event(session, run, "status", {"status": "running", "builder": builder})
    uow.audit(
        actor=actor,
        action="run.created",
        target=f"run:{run.id}",
        project=project_name,
        payload={"kind": KIND, "inputs": pinned, "params": run.params},
    )
    return run, secret


def created_to_dict(run: Run, secret: str) -> dict[str, Any]:
    """The run as the POST that created it answers: with its token, this once."""
    expires = run.token_expires_at
    return {
        **service.run_to_dict(run),
        "token": secret,
        "token_expires_at": None if expires is None else expires.isoformat().replace("+00:00", "Z"),
    }


def run_of_token(session: Session, authorization: str | None, project: str, run_id: str) -> Run:
    """The run whose token the request carries, if that run is the one the path names (else 403
    `run_token_scope`); a token that is unknown, expired or of an ended run is 401. The run is locked:
    whatever the request does to it, it does alone."""
    secret = bearer_secret(authorization)
    if secret is None or not secret.startswith(RUN_TOKEN_PREFIX):
        raise Unauthenticated("send the external run's token: Authorization: Bearer rlrun_...")
    run = session.scalar(select(Run).where(Run.token_hash == hash_token(secret)).with_for_update())
    if run is None:
        raise Unauthenticated("the run token is unknown, or its run has ended")
    if run.token_expires_at is not None and run.token_expires_at <= utcnow():
        raise Unauthenticated("the run token has expired")
    if run.id != run_id or service.project_name_of(session, run) != project:
        raise RunTokenScope(
            f"this token is good for run {run.id} only", extra={"run": run.id, "requested": f"{project}/{run_id}"}
        )
    return run


def creator_of(session: Session, run: Run) -> Actor:
    """The principal that created the run: uploads and registrations are in its name."""
    row = session.execute(
        select(Principal.id, Principal.name, Principal.is_global_admin).where(Principal.name == run.created_by)
    ).one()
    return Actor(id=row[0], name=row[1], is_global_admin=bool(row[2]))


def inputs_of(session: Session, run: Run) -> dict[str, Record]:
    ids = {role: str(pinned["id"]) for role, pinned in run.inputs.items() if isinstance(pinned, dict)}
    records = {r.id: r for r in session.scalars(select(Record).where(Record.id.in_(ids.values())))}
    return {role: records[record_id] for role, record_id in ids.items()}


def _files_of(record: Record) -> list[dict[str, Any]]:
    """A record's files as a trainer reads them: a model's folder (`spec.files`), or the files the server
    derived from the record (a preference dataset's `dataset.parquet`, in `derived.files`)."""
    return list(record.spec.get("files") or record.derived.get("files") or [])


def input_to_dict(record: Record) -> dict[str, Any]:
    """An input as the trainer downloads it: its files, and every blob the record cites."""
    return {
        **record.pinned(),
        "files": _files_of(record),
        "blobs": list(record.blobs),
    }


def require_input_blob(session: Session, run: Run, digest: str) -> None:
    """404 for a blob that no input of the run holds (as a file or as a blob it cites)."""
    for record in inputs_of(session, run).values():
        if any(entry["digest"] == digest for entry in [*_files_of(record), *record.blobs]):
            return
    raise NotFound(f"blob {digest} is not among the run's inputs")


def post_event(session: Session, run: Run, type_: str, data: dict[str, Any]) -> int:
    return service.add_event(session, run, type_, data).seq


def register_checkpoint(
    uow: UnitOfWork, run: Run, *, project_name: str, body: dict[str, Any], store: BlobStore
) -> Record:
    """Register a checkpoint the run trained, with the run's inputs as its parents (a body that names
    parents itself is refused) and `spec.run_id`, which ties it to the run in lineage and provenance."""
    kind = body.get("kind")
    if kind not in PARENTS:
        raise ValidationFailed(
            f"an external run registers a {' or a '.join(sorted(PARENTS))}",
            errors=[{"loc": ["body", "kind"], "msg": "not a checkpoint kind"}],
        )
    roles = set(PARENTS[kind].values())
    named = sorted(roles & set(body))
    if named:
        raise ValidationFailed(
            "an external run's checkpoints take the run's inputs as their parents; do not name them",
            errors=[{"loc": ["body", role], "msg": "set from the run's inputs"} for role in named],
        )
    registered: dict[str, Any] = {key: value for key, value in body.items() if key != "kind"}
    registered.setdefault("name", run.output_name)
    spec = registered.get("spec")
    registered["spec"] = {**(spec if isinstance(spec, dict) else {}), "run_id": run.id}
    for role, record in inputs_of(uow.session, run).items():
        parent = PARENTS[kind].get(role)
        if parent is not None:
            registered[parent] = [{"id": record.id}] if parent == "datasets" else {"id": record.id}
    registration = records_service.register(
        uow,
        project_id=run.project_id,
        project_name=project_name,
        actor=run.created_by,
        kind=KINDS[kind],
        body=registered,
        store=store,
    )
    record = registration.record
    if record.id not in run.outputs:
        run.outputs = [*run.outputs, record.id]
        service.add_event(uow.session, run, "log", {"registered": record.id, "kind": kind})
    return record


def finish_run(uow: UnitOfWork, run: Run, *, project_name: str, status: Any, error: Any) -> Run:
    """End the run as the trainer reports it (`succeeded` or `failed`); its token dies with it."""
    if status not in ENDINGS:
        raise ValidationFailed(
            f"status must be one of {list(ENDINGS)}", errors=[{"loc": ["body", "status"], "msg": "not an ending"}]
        )
    if error is not None and not isinstance(error, dict):
        raise ValidationFailed("error must be an object", errors=[{"loc": ["body", "error"], "msg": "not an object"}])
    service.finish(uow.session, run, status, error)
    uow.audit(
        actor=run.created_by,
        action="run.finished",
        target=f"run:{run.id}",
        project=project_name,
        payload={"status": status, "outputs": run.outputs, "reported_by": "run token"},
    )
    return run
