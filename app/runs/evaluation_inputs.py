"""The inputs of the runs that evaluate rather than train.

A `campaign` run names a policy run: the checkpoint series that run registered, with the series'
reference model, is pinned when the campaign is queued (a run still training adds checkpoints later;
the campaign compares the ones it was started on). A `judge` run names its judge (a reward checkpoint,
or a policy checkpoint or base model to prompt) and exactly one thing to judge: a campaign's pairs or an
annotation batch's.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.core.errors import MissingReference, Quarantined, ValidationFailed
from app.lineage.service import quarantined_among
from app.records.models import Record
from app.runs.model_inputs import check_model_folder
from app.runs.models import Run

JUDGED = ("campaign", "batch")  # the inputs a judge run labels: one of them
POLICY_RUN_LOC = ["body", "inputs", "policy_run"]


def pin_policy_run(session: Session, project_id: str, value: Any) -> dict[str, Any]:
    """`inputs.policy_run` (a run id) pinned as the run, its policy checkpoints in step order and their
    reference model; refused unless the run is this project's and registered at least one checkpoint."""
    if not isinstance(value, str) or not value:
        raise ValidationFailed(
            "a campaign run needs inputs.policy_run: the id of a run of this project that registered "
            "policy checkpoints",
            errors=[{"loc": POLICY_RUN_LOC, "msg": "required run id"}],
        )
    run = session.get(Run, value)
    if run is None or run.project_id != project_id:
        raise MissingReference(f"no run {value} in this project", errors=[{"loc": POLICY_RUN_LOC, "msg": "not found"}])
    checkpoints = _checkpoints_of(session, run)
    if not checkpoints:
        raise MissingReference(
            f"run {run.id} ({run.kind}, {run.status}) registered no policy checkpoint: a campaign compares the "
            "checkpoints a policy run registered with their reference model",
            errors=[{"loc": POLICY_RUN_LOC, "msg": "no policy checkpoint registered"}],
        )
    reference_id = next(p["id"] for p in checkpoints[0].parents if p["role"] == "reference_model")
    reference = session.get(Record, reference_id)
    assert reference is not None  # a parent is never deleted
    models = [reference, *checkpoints]
    revoked = quarantined_among(session, {m.id for m in models})
    if revoked:
        raise Quarantined(
            "revoked upstream, so it cannot enter a campaign: "
            + ", ".join(f"{m.kind} {m.name} v{m.version}" for m in models if m.id in revoked),
            extra={"records": sorted(revoked)},
        )
    for model in models:
        check_model_folder("policy_run", model)
    return {
        "id": run.id,
        "kind": run.kind,
        "checkpoints": [c.pinned() for c in checkpoints],
        "reference": reference.pinned(),
    }


def _checkpoints_of(session: Session, run: Run) -> list[Record]:
    stmt = select(Record).where(Record.id.in_(run.outputs), Record.kind == "policy_checkpoint")
    found = session.scalars(stmt).all()
    return sorted(found, key=lambda r: (int(r.spec.get("step") or 0), int(r.version)))


def check_evaluation_prompts(prompt_set: Record) -> None:
    """Refuse a prompt set without a prompt a campaign generates on (those reserved for production
    validation, every usage prompt where none is, and the adversarial ones), before a model is loaded."""
    derived = prompt_set.derived
    mix = derived.get("mix", {})
    if not (derived.get("production_validation") or mix.get("source_usage") or mix.get("source_adversarial")):
        raise ValidationFailed(
            f"prompt set {prompt_set.name} v{prompt_set.version} has no prompt a campaign evaluates on: none "
            "reserved for production validation, no usage prompt and no adversarial prompt",
            errors=[{"loc": ["body", "inputs", "prompt_set"], "msg": "no evaluation prompt"}],
        )


def check_judged(inputs: dict[str, Any]) -> None:
    """A judge run labels one campaign or one batch: refused with neither or both."""
    given = [role for role in JUDGED if role in inputs]
    if len(given) != 1:
        raise MissingReference(
            "a judge run needs exactly one of inputs.campaign (an evaluation campaign) or inputs.batch (an "
            f"annotation batch); got {given or 'neither'}",
            errors=[{"loc": ["body", "inputs", role], "msg": "exactly one of campaign, batch"} for role in JUDGED],
        )
