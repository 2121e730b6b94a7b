"""Runs: validated against every rule before anything is queued (params against the exported TRL fields,
model inputs as loadable folders), recorded, then sent after the commit; the run row is the outbox that
re-sends it (app.runs.outbox)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.access.models import Project
from app.blobs import service as blobs_service
from app.blobs.models import Blob
from app.core import names
from app.core.db import utcnow
from app.core.digests import is_digest
from app.core.errors import (
    BlobMissing,
    CriteriaIncompatible,
    MissingReference,
    NotFound,
    Quarantined,
    RunNotCancellable,
    ValidationFailed,
)
from app.core.settings import Settings
from app.core.uow import UnitOfWork
from app.kinds.checkpoints import criteria_line
from app.kinds.registry import KINDS
from app.lineage.service import quarantined_among
from app.records.models import Record
from app.records.service import resolve_ref
from app.runs import evaluation_inputs, idempotency
from app.runs.dispatch import Dispatcher, first_sends, queue_for, schedule_first_send
from app.runs.model_inputs import check_model_folder
from app.runs.models import Run, RunEvent
from app.runs.trainer_params import validate_params

FINAL = ("succeeded", "failed", "cancelled")


@dataclass(frozen=True)
class InputRule:
    role: str
    kinds: tuple[str, ...]
    required: bool = True


# What each run kind trains on (DESIGN.md, Training runs).
INPUTS: dict[str, tuple[InputRule, ...]] = {
    # a policy checkpoint as the starting model: fine-tuning again, or on from an earlier stage
    "sft": (
        InputRule("demonstrations", ("demonstration_set",)),
        InputRule("base_model", ("base_model", "policy_checkpoint")),
    ),
    "reward_model": (InputRule("dataset", ("preference_dataset",)), InputRule("base_model", ("base_model",))),
    "dpo": (
        InputRule("dataset", ("preference_dataset",)),
        InputRule("base_model", ("base_model", "policy_checkpoint")),
    ),
    "rloo": (
        InputRule("dataset", ("preference_dataset",)),
        InputRule("base_model", ("base_model", "policy_checkpoint")),
        InputRule("reward_checkpoint", ("reward_checkpoint",)),
    ),
    "score": (InputRule("reward_checkpoint", ("reward_checkpoint",)),),
    # and inputs.policy_run, a run id (app.runs.evaluation_inputs)
    "campaign": (InputRule("prompt_set", ("prompt_set",)),),
    # a reward model labels a campaign's pairs or a batch's (exactly one of them)
    "judge": (
        # a reward model judges by its scores; a policy or base model is prompted as a judge
        InputRule("judge", ("reward_checkpoint", "policy_checkpoint", "base_model")),
        InputRule("campaign", ("evaluation_campaign",), required=False),
        InputRule("batch", ("annotation_batch",), required=False),
    ),
}
INPUTS["grpo"] = INPUTS["rloo"]
INPUTS["ppo"] = INPUTS["rloo"]


def _resolve_inputs(session: Session, project_id: str, kind: str, inputs: Any) -> dict[str, Record]:
    if not isinstance(inputs, dict):
        raise ValidationFailed("inputs must be an object", errors=[{"loc": ["body", "inputs"], "msg": "not an object"}])
    rules = INPUTS[kind]
    allowed = {r.role for r in rules} | {"outputs_blob"} | ({"policy_run"} if kind == "campaign" else set())
    unknown = sorted(set(inputs) - allowed)
    if unknown:
        raise ValidationFailed(
            f"a {kind} run takes inputs {sorted(allowed)}; unknown: {unknown}",
            errors=[{"loc": ["body", "inputs", k], "msg": "unknown input"} for k in unknown],
        )
    resolved = {}
    for rule in rules:
        if rule.role not in inputs and not rule.required:
            continue
        if rule.role not in inputs:
            raise MissingReference(
                f"a {kind} run needs inputs.{rule.role} ({' or '.join(rule.kinds)})",
                errors=[{"loc": ["body", "inputs", rule.role], "msg": "required"}],
            )
        resolved[rule.role] = resolve_ref(
            session, project_id, rule.kinds, inputs[rule.role], ["body", "inputs", rule.role]
        )
    return resolved


def _check_rules(session: Session, kind: str, resolved: dict[str, Record], inputs: dict[str, Any]) -> None:
    bad = quarantined_among(session, {r.id for r in resolved.values()})
    if bad:
        raise Quarantined(
            "revoked upstream, so it cannot enter a run: "
            + ", ".join(f"{r.kind} {r.name} v{r.version}" for r in resolved.values() if r.id in bad),
            extra={"records": sorted(bad)},
        )
    dataset, reward = resolved.get("dataset"), resolved.get("reward_checkpoint")
    if dataset is not None and reward is not None:
        lines = {criteria_line(dataset), criteria_line(reward)} - {None}
        if len(lines) > 1:
            raise CriteriaIncompatible(
                f"dataset {dataset.name} v{dataset.version} and reward checkpoint {reward.name} v{reward.version} "
                "follow different criteria MAJOR versions",
                extra={"criteria": sorted(str(x) for x in lines)},
            )
    if kind == "judge":
        evaluation_inputs.check_judged(inputs)
    if kind == "campaign":
        evaluation_inputs.check_evaluation_prompts(resolved["prompt_set"])
    if kind == "score":
        digest = inputs.get("outputs_blob")
        if not isinstance(digest, str) or not is_digest(digest):
            raise ValidationFailed(
                "a score run needs inputs.outputs_blob: the digest of a JSONL of {prompt, response}",
                errors=[{"loc": ["body", "inputs", "outputs_blob"], "msg": "required digest"}],
            )
        if session.get(Blob, digest) is None:
            raise BlobMissing(
                f"{digest} is not uploaded", errors=[{"loc": ["body", "inputs", "outputs_blob"], "msg": "missing"}]
            )


def check_inputs(session: Session, kind: str, resolved: dict[str, Record], inputs: dict[str, Any]) -> None:
    """The rules every run's resolved inputs keep (none revoked upstream, one criteria line), for a kind
    whose inputs are resolved by its own module (`app.runs.external`)."""
    _check_rules(session, kind, resolved, inputs)


def add_event(session: Session, run: Run, type_: str, data: dict[str, Any]) -> RunEvent:
    run.last_seq += 1
    event = RunEvent(run_id=run.id, seq=run.last_seq, type=type_, data=data, at=utcnow())
    session.add(event)
    return event


@dataclass(frozen=True)
class RunRequest:
    """A run's body, validated: its kind, its inputs pinned to record versions, its params and output name."""

    kind: str
    pinned: dict[str, Any]
    params: dict[str, Any]
    output_name: str


def validate_request(session: Session, project_id: str, body: Any, *, ppo_workers: bool) -> RunRequest:
    """Everything the worker would check without loading a model, so a run that cannot execute is refused
    here and never queued (a `ppo` run while no worker of the PPO environment is configured, too)."""
    if not isinstance(body, dict):
        raise ValidationFailed("the body must be a JSON object")
    kind = body.get("kind")
    if not isinstance(kind, str) or kind not in INPUTS:
        raise ValidationFailed(
            f"kind must be one of {sorted(INPUTS)}", errors=[{"loc": ["body", "kind"], "msg": "unknown kind"}]
        )
    if kind == "ppo" and not ppo_workers:
        raise _no_ppo_worker()
    inputs = object_or_empty(body, "inputs")
    params = validate_params(kind, object_or_empty(body, "params"))
    resolved = _resolve_inputs(session, project_id, kind, inputs)
    _check_rules(session, kind, resolved, inputs)
    # the inputs that are models, the worker loads with `from_pretrained`
    for role, record in resolved.items():
        if KINDS[record.kind].is_model:
            check_model_folder(role, record)
    output_name = body.get("output_name")
    if output_name is None:
        output_name = f"{kind.replace('_', '-')}-{utcnow():%Y%m%d%H%M%S}"
    # the record the run registers takes this name: refused now rather than when the run ends
    names.check_record_name(output_name, loc=["body", "output_name"])
    pinned: dict[str, Any] = {role: r.pinned() for role, r in resolved.items()}
    if "outputs_blob" in inputs:
        pinned["outputs_blob"] = inputs["outputs_blob"]
    if kind == "campaign":
        pinned["policy_run"] = evaluation_inputs.pin_policy_run(session, project_id, inputs.get("policy_run"))
    return RunRequest(kind, pinned, params, output_name)


def _no_ppo_worker() -> ValidationFailed:
    return ValidationFailed(
        "kind 'ppo' needs a worker of the PPO environment (workers/ppo, the last TRL that ships PPOTrainer) "
        "consuming the 'ppo' queue, and this registry has none configured: start one and set "
        "RLHF_REGISTRY_PPO_WORKERS=1, or use kind 'rloo' (REINFORCE leave-one-out with a KL penalty against "
        "the reference model, on the same inputs and with the same kl_coefficient).",
        errors=[{"loc": ["body", "kind"], "msg": "no ppo worker configured: set RLHF_REGISTRY_PPO_WORKERS=1"}],
        extra={"setting": "RLHF_REGISTRY_PPO_WORKERS"},
    )


def check_devices(params: dict[str, Any], most: int) -> None:
    """`params.devices` (an integer >= 1, checked with the other params) within this deployment's maximum."""
    devices = params.get("devices", 1)
    if devices > most:
        raise ValidationFailed(
            f"params.devices ({devices}) exceeds this deployment's maximum of {most} (setting "
            "RLHF_REGISTRY_RUN_MAX_DEVICES)",
            errors=[{"loc": ["body", "params", "devices"], "msg": f"must be at most {most}"}],
            extra={"setting": "RLHF_REGISTRY_RUN_MAX_DEVICES"},
        )


def object_or_empty(body: dict[str, Any], field: str) -> dict[str, Any]:
    """`body[field]`, an object; absent or null is an empty one, anything else is refused where it is."""
    value = body.get(field)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationFailed(f"{field} must be an object", errors=[{"loc": ["body", field], "msg": "not an object"}])
    return value


def create_run(
    uow: UnitOfWork,
    *,
    project_id: str,
    project_name: str,
    actor: str,
    body: Any,
    dispatcher: Dispatcher,
    settings: Settings,
    idempotency_key: str | None = None,
) -> tuple[Run, bool]:
    """Record a validated run as queued and send it after the commit (a failed send is left to the outbox).
    Returns the run and whether this call created it: with an `idempotency_key` already used by this
    principal in this project for the same body, the earlier run, unchanged and not sent again."""
    session = uow.session
    key = idempotency.checked_key(idempotency_key)
    digest = None
    if key is not None:
        digest = idempotency.request_digest(body)
        earlier = idempotency.earlier_run(session, project_id, actor, key, digest)
        if earlier is not None:
            return earlier, False
    # before any other check, so that an unreadable blob and a missing one are refused alike
    inputs = body.get("inputs") if isinstance(body, dict) else None
    if isinstance(inputs, dict):
        blobs_service.require_readable(session, actor, inputs.get("outputs_blob"), ["body", "inputs", "outputs_blob"])
    request = validate_request(session, project_id, body, ppo_workers=settings.ppo_workers)
    check_devices(request.params, settings.run_max_devices)
    run = Run(
        project_id=project_id,
        kind=request.kind,
        status="queued",
        inputs=request.pinned,
        params=request.params,
        output_name=request.output_name,
        outputs=[],
        created_by=actor,
        max_attempts=settings.run_max_attempts,
        attempt=0,
        last_seq=0,
        idempotency_key=key,
        request_digest=digest,
    )
    schedule_first_send(run, settings, utcnow())
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except IntegrityError:
        # a concurrent POST with the same key committed its run first: answer with that one
        earlier = (
            None if key is None or digest is None else idempotency.earlier_run(session, project_id, actor, key, digest)
        )
        if earlier is None:
            raise
        return earlier, False
    add_event(session, run, "status", {"status": "queued"})
    uow.audit(
        actor=actor,
        action="run.created",
        target=f"run:{run.id}",
        project=project_name,
        payload={"kind": request.kind, "inputs": request.pinned, "params": request.params},
    )
    uow.after_commit(first_sends.after_commit(dispatcher, run.id, queue_for(run.kind)))
    return run, True


def get_run(session: Session, project_id: str, run_id: str) -> Run:
    run = session.get(Run, run_id)
    if run is None or run.project_id != project_id:
        raise NotFound(f"run {run_id} not found")
    return run


def list_runs(session: Session, project_id: str, *, after_id: str | None, limit: int) -> tuple[list[Run], str | None]:
    stmt = select(Run).where(Run.project_id == project_id).order_by(Run.id).limit(limit + 1)
    if after_id:
        stmt = stmt.where(Run.id > after_id)
    rows = list(session.scalars(stmt))
    return (rows[:limit], rows[limit - 1].id) if len(rows) > limit else (rows, None)


def events_after(session: Session, run_id: str, after: int, limit: int) -> list[RunEvent]:
    stmt = select(RunEvent).where(RunEvent.run_id == run_id, RunEvent.seq > after).order_by(RunEvent.seq).limit(limit)
    return list(session.scalars(stmt))


def cancel(uow: UnitOfWork, run: Run, actor: str, project_name: str) -> Run:
    """A queued run (or an external one) is cancelled at once; a running one is asked to stop at its next
    step."""
    locked = uow.session.execute(select(Run).where(Run.id == run.id).with_for_update()).scalar_one()
    if locked.status in FINAL:
        raise RunNotCancellable(f"run {run.id} already ended ({locked.status})")
    # no worker executes an external run, so none would see a request to stop: it ends now
    if locked.status == "queued" or locked.kind == "external":
        finish(uow.session, locked, "cancelled", None)
    else:
        locked.cancel_requested = True
        add_event(uow.session, locked, "log", {"message": f"cancellation requested by {actor}"})
    uow.audit(
        actor=actor,
        action="run.cancel_requested",
        target=f"run:{run.id}",
        project=project_name,
        payload={"status": locked.status},
    )
    return locked


def project_name_of(session: Session, run: Run) -> str:
    """The run's project name, which its audit events carry (so a project's viewers see them)."""
    return str(session.execute(select(Project.name).where(Project.id == run.project_id)).scalar_one())


def finish(session: Session, run: Run, status: str, error: dict[str, Any] | None) -> None:
    run.status = status
    run.error = error
    run.finished_at = utcnow()
    run.lease_owner = None
    run.lease_expires_at = None
    run.next_dispatch_at = None
    run.token_hash = None  # an external run's token dies with it
    add_event(session, run, "status", {"status": status, **({"error": error} if error else {})})


def without_trace(data: Any) -> Any:
    """A run's error or an event's data as the API shows it: without the `trace` (a Python traceback) that
    runs which failed before errors were kept to words still hold, at the top or in an `error` object."""
    if not isinstance(data, dict):
        return data
    shown = {key: value for key, value in data.items() if key != "trace"}
    if isinstance(shown.get("error"), dict):
        shown["error"] = without_trace(shown["error"])
    return shown


def event_to_dict(event: RunEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "at": event.at.isoformat().replace("+00:00", "Z"),
        "type": event.type,
        "data": without_trace(event.data),
    }


def run_to_dict(run: Run) -> dict[str, Any]:
    def stamp(value: datetime | None) -> str | None:
        return None if value is None else value.isoformat().replace("+00:00", "Z")

    return {
        "id": run.id,
        "kind": run.kind,
        "status": run.status,
        "inputs": run.inputs,
        "params": run.params,
        "output_name": run.output_name,
        "outputs": run.outputs,
        "error": without_trace(run.error),
        "created_by": run.created_by,
        "created_at": stamp(run.created_at),
        "started_at": stamp(run.started_at),
        "finished_at": stamp(run.finished_at),
        "attempt": run.attempt,
        "max_attempts": run.max_attempts,
        "config": run.config,
    }
