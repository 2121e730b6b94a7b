"""Evaluation campaigns: a policy checkpoint series and its reference model answering the prompts of a
registered prompt set, turned into blinded pairwise tasks for human (or AI) evaluators.

Quality can peak early in policy optimisation and then degrade, so the series is judged checkpoint by
checkpoint against the model it started from. The registry, not the client, builds the tasks: their
ids and left/right order follow from a recorded seed (app.evaluations.tasks), and the identities stay in
the campaign's own `tasks.jsonl`, never in what evaluators are shown."""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar, Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, field_validator

from app.core.digests import is_digest
from app.core.errors import ValidationFailed
from app.evaluations.tasks import BLINDING, TASKS_FILE, Prompt, build_tasks, comparisons, tasks_jsonl
from app.kinds.base import KindContext, KindDefinition, ParentRole
from app.kinds.prompt_set import prompts_of
from app.kinds.tables import RowErrors, read_blob_table
from app.records.models import Record
from app.storage.base import put_bytes

RESPONSES = ["spec", "responses_blob"]
RESPONSE_SCHEMA = pa.schema(
    [
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("response", pa.string(), nullable=False),
    ]
)


class EvaluationCampaignSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    responses_blob: str
    pairing: Literal["reference", "all"] = "reference"
    seed: int = 0
    generation: dict[str, Any] = {}
    metadata: dict[str, Any] = {}

    @field_validator("responses_blob")
    @classmethod
    def _digest(cls, value: str) -> str:
        if not is_digest(value):
            raise ValueError("responses_blob must be sha256:<64 hex>")
        return value


def _step(record: Record) -> int | None:
    step = record.spec.get("step")
    return step if isinstance(step, int) else None


def _model_entry(record: Record, role: str) -> dict[str, Any]:
    return {
        "id": record.id,
        "kind": record.kind,
        "name": record.name,
        "version": record.version,
        "step": _step(record),
        "role": role,
    }


def _reference_model_id(checkpoint: Record) -> str:
    return str(next(p["id"] for p in checkpoint.parents if p["role"] == "reference_model"))


def check_series(checkpoints: list[Record], reference: Record) -> None:
    """One series, each checkpoint once, all trained against `reference`; errors located by position."""
    errors: list[dict[str, Any]] = []
    series = checkpoints[0].name
    seen: dict[str, int] = {}
    for index, checkpoint in enumerate(checkpoints):
        loc = ["body", "checkpoints", index]
        if checkpoint.id in seen:
            errors.append({"loc": loc, "msg": f"duplicate: already listed at {seen[checkpoint.id]}"})
            continue
        seen[checkpoint.id] = index
        if checkpoint.name != series:
            errors.append({"loc": loc, "msg": f"of series {checkpoint.name!r}, not {series!r}: a campaign judges one"})
        if _reference_model_id(checkpoint) != reference.id:
            errors.append(
                {
                    "loc": loc,
                    "msg": f"its reference_model is {_reference_model_id(checkpoint)}, not the campaign's reference "
                    f"{reference.kind} {reference.name} v{reference.version}",
                }
            )
    if errors:
        raise ValidationFailed(
            "the checkpoints must be distinct checkpoints of one policy_checkpoint series, and the reference their "
            f"reference_model: {len(errors)} problem(s)",
            errors=errors,
        )


def _responses(ctx: KindContext, prompt_ids: pa.Array, models: list[str]) -> dict[tuple[str, str], str]:
    """The responses blob checked row by row: known prompts and models, each pair once."""
    table = read_blob_table(ctx.store, ctx.spec["responses_blob"], RESPONSE_SCHEMA, where=RESPONSES, limits=ctx.limits)
    errors = RowErrors(RESPONSES)
    for column in table.column_names:
        if column not in RESPONSE_SCHEMA.names:
            errors.add([*RESPONSES, column], "unknown field")
    for name in RESPONSE_SCHEMA.names:
        errors.add_mask(pc.is_null(table[name]), name, "required")
    prompt_set = ctx.parents["prompt_set"][0]
    errors.add_mask(
        pc.invert(pc.is_in(table["prompt_id"], prompt_ids)),
        "prompt_id",
        f"not a prompt of prompt set {prompt_set.name} {prompt_set.version}",
    )
    errors.add_mask(
        pc.invert(pc.is_in(table["model"], pa.array(models))),
        "model",
        "not the record id of one of the campaign's checkpoints or of its reference",
    )
    responses: dict[tuple[str, str], str] = {}
    first_row: dict[tuple[str, str], int] = {}
    rows = zip(table["prompt_id"].to_pylist(), table["model"].to_pylist(), table["response"].to_pylist(), strict=True)
    for index, (prompt_id, model, response) in enumerate(rows):
        key = (prompt_id, model)
        if key in first_row:
            errors.add(
                [*RESPONSES, index], f"a second response of {model} to prompt {prompt_id!r} (row {first_row[key]})"
            )
            continue
        first_row[key] = index
        responses[key] = response
    errors.raise_if_any("the responses are not valid")
    return responses


class EvaluationCampaignKind(KindDefinition):
    name = "evaluation_campaign"
    collection = "evaluation-campaigns"
    rank = 95
    label = "evaluation campaign"
    # evaluations built on it are the evidence a waiver would cover, not the campaign
    waivable = False
    # which models were compared on how many prompts, and how the tasks were drawn
    package_fields: ClassVar[tuple[str, ...]] = ("derived.models", "derived.counts", "derived.seed")
    traces_to_criteria = False
    is_model = False
    trained = False
    built_by_server = False
    version_scheme = "integer"
    write_roles: ClassVar[frozenset[str]] = frozenset({"trainer"})
    parent_roles: ClassVar[tuple[ParentRole, ...]] = (
        ParentRole("checkpoints", ("policy_checkpoint",), many=True),
        ParentRole("reference", ("base_model", "policy_checkpoint")),
        ParentRole("prompt_set", ("prompt_set",)),
    )
    spec_model = EvaluationCampaignSpec

    def blob_refs(self, spec: dict[str, Any]) -> list[tuple[str, str]]:
        return [("responses", spec["responses_blob"])]

    def check(self, ctx: KindContext) -> None:
        checkpoints = ctx.parents["checkpoints"]
        [reference] = ctx.parents["reference"]
        check_series(checkpoints, reference)
        ordered = sorted(checkpoints, key=lambda c: (_step(c) is None, _step(c) or 0, int(c.version)))
        prompts = prompts_of(ctx.parents["prompt_set"][0], ctx.store).select(["id", "text", "source"])
        models = [reference.id, *(c.id for c in ordered)]
        responses = _responses(ctx, prompts["id"].combine_chunks(), models)
        answered = Counter(prompt_id for prompt_id, _ in responses)
        complete = [
            Prompt(str(row["id"]), str(row["text"]), str(row["source"]))
            for row in prompts.to_pylist()
            if answered[row["id"]] == len(models)
        ]
        if not complete:
            raise ValidationFailed(
                "no prompt has a response from every model of the campaign: nothing can be compared",
                errors=[{"loc": RESPONSES, "msg": "no prompt answered by every model"}],
            )
        ctx.scratch.update(
            ordered=ordered, responses=responses, prompts=complete, incomplete=len(answered) - len(complete)
        )

    def derive(self, ctx: KindContext) -> dict[str, Any]:
        [reference] = ctx.parents["reference"]
        ordered: list[Record] = ctx.scratch["ordered"]
        prompts: list[Prompt] = ctx.scratch["prompts"]
        pairs = comparisons(reference.id, [c.id for c in ordered], ctx.spec["pairing"])
        tasks = build_tasks(prompts, ctx.scratch["responses"], pairs, ctx.spec["seed"])
        info = put_bytes(ctx.store, tasks_jsonl(tasks))
        ctx.derived_blobs.append((TASKS_FILE, info.digest, info.size))
        return {
            "models": [_model_entry(reference, "reference"), *(_model_entry(c, "checkpoint") for c in ordered)],
            "series": ordered[0].name,
            "pairing": ctx.spec["pairing"],
            "seed": ctx.spec["seed"],
            "blinding": BLINDING,
            "counts": {
                "prompts": len(prompts),
                "tasks": len(tasks),
                "by_source": dict(sorted(Counter(p.source for p in prompts).items())),
                "incomplete_prompts": ctx.scratch["incomplete"],
            },
            "files": [{"path": TASKS_FILE, "digest": info.digest, "size": info.size}],
        }
