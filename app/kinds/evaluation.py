"""Evaluations: evidence about a checkpoint (human preference and rating results, reward scores,
adversarial-prompt results, length-reward correlation, KL to the reference), or the judgments of an
evaluation campaign's blinded tasks, from which the server computes every checkpoint's rating.

An evaluation names either its `target` (one model) or its `campaign` (a checkpoint series and its
reference). A campaign evaluation's figures (`app.evaluations.stats`) are derived from its judgments
file at registration, and it links every model the campaign compared (`compared`, added by the server:
the client cannot claim a comparison the campaign did not make)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, field_validator
from sqlalchemy import bindparam, select

from app.core.digests import is_digest
from app.core.errors import EvaluationEvidenceInsufficient, MissingReference, ValidationFailed
from app.core.names import GRAMMAR, is_name
from app.evaluations import formats
from app.evaluations.tasks import load_tasks
from app.kinds.base import KindContext, KindDefinition, ParentRole
from app.kinds.policy import EvaluationType
from app.records.models import Record, RecordBlob
from app.storage.base import read_bytes

# the types a campaign's pairwise judgments make: by people, or by a `judge` run (never human evidence)
CAMPAIGN_TYPES = ("human_preference", "ai_preference")
# evaluator names of machines, which never count as people
MACHINE_PREFIXES = ("ai:", "run:")
EVIDENCE_PATH = "evidence"

# every evaluation in a project citing one evidence blob: a seek of record_blob's digest index, then of
# record's primary key per citing record (however many evaluations the project holds)
EVALUATIONS_CITING = select(Record.id, Record.name, Record.version, Record.spec).where(
    Record.id.in_(
        select(RecordBlob.record_id).where(RecordBlob.digest == bindparam("digest"), RecordBlob.path == EVIDENCE_PATH)
    ),
    Record.project_id == bindparam("project_id"),
    Record.kind == "evaluation",
)


class EvaluationSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: EvaluationType
    summary: dict[str, Any] = {}
    evidence_blob: str | None = None
    # a campaign evaluation's judgments file format; None reads as jsonl
    evidence_format: Literal["jsonl", "label-studio", "argilla"] | None = None
    evaluators: list[str] = []
    # who each evaluator of a campaign's judgments file is, as a principal of the project: the tools
    # name their users their own way (Label Studio an email or `ls-user-<id>`, Argilla a user id)
    evaluator_names: dict[str, str] | None = None
    # the task ids a judge run sampled for people to review (an ai_preference campaign evaluation)
    review_sample: list[str] | None = None
    metadata: dict[str, Any] = {}

    @field_validator("evidence_blob")
    @classmethod
    def _digest(cls, value: str | None) -> str | None:
        if value is not None and not is_digest(value):
            raise ValueError("evidence_blob must be sha256:<64 hex>")
        return value


def _refuse(loc: list[Any], msg: str, detail: str) -> ValidationFailed:
    return ValidationFailed(detail, errors=[{"loc": loc, "msg": msg}])


def check_shape(ctx: KindContext) -> None:
    """Exactly one of target or campaign; the parents and fields each type takes."""
    spec, parents = ctx.spec, ctx.parents
    if not parents["target"] and not parents["campaign"]:
        raise MissingReference(
            "an evaluation names its target (the model evaluated) or its campaign (the series compared)",
            errors=[{"loc": ["body", "target"], "msg": "required without campaign"}],
        )
    if parents["target"] and parents["campaign"]:
        raise _refuse(["body", "campaign"], "not with target", "an evaluation names a target or a campaign, not both")
    if parents["prompt_set"] and spec["type"] != "adversarial":
        raise _refuse(["body", "prompt_set"], "only for adversarial", "only an adversarial evaluation names prompts")
    if parents["reference"] and spec["type"] != "kl":
        raise _refuse(["body", "reference"], "only for kl", "only a kl evaluation names the model it measured against")
    if parents["campaign"]:
        if spec["type"] not in CAMPAIGN_TYPES:
            raise _refuse(
                ["body", "spec", "type"],
                f"must be one of {list(CAMPAIGN_TYPES)}",
                f"a campaign's judgments make a {' or '.join(CAMPAIGN_TYPES)} evaluation, not {spec['type']}",
            )
        if spec["evidence_blob"] is None:
            raise _refuse(
                ["body", "spec", "evidence_blob"], "required with campaign", "a campaign evaluation cites its judgments"
            )
    else:
        for field in ("evidence_format", "review_sample", "evaluator_names"):
            if spec[field] is not None:
                raise _refuse(["body", "spec", field], "only with campaign", f"{field} belongs to campaign evaluations")
    if spec["review_sample"] is not None and spec["type"] != "ai_preference":
        raise _refuse(
            ["body", "spec", "review_sample"], "only for ai_preference", "only a judge run samples tasks for review"
        )


def check_one_type_per_blob(ctx: KindContext) -> None:
    """One evidence blob proves one kind of thing: the same file cited as two types of evaluation (the
    run's own reward scores as both `adversarial` and `kl` evidence) is refused, naming the other."""
    digest = ctx.spec["evidence_blob"]
    if digest is None:
        return
    rows = ctx.session.execute(EVALUATIONS_CITING, {"digest": digest, "project_id": ctx.project_id}).all()
    other = next((row for row in rows if row.spec["type"] != ctx.spec["type"]), None)
    if other is not None:
        raise EvaluationEvidenceInsufficient(
            f"evidence {digest} already serves evaluation {other.name} v{other.version} as "
            f"{other.spec['type']} evidence; one evidence blob cannot serve two types of evaluation",
            extra={"evaluation": {"id": other.id, "name": other.name, "version": other.version}},
        )


def name_evaluators(judgments: list[dict[str, Any]], names: dict[str, str] | None) -> list[dict[str, Any]]:
    """The judgments with each evaluator named as the spec's `evaluator_names` says. Every name given
    must be an evaluator of the file and a principal's name, and no evaluator judges a task twice under
    its new name."""
    if not names:
        return judgments
    where = ["body", "spec", "evaluator_names"]
    present = {j["evaluator"] for j in judgments}
    errors = [{"loc": [*where, key], "msg": "no judgment by this evaluator"} for key in sorted(set(names) - present)]
    errors += [
        {"loc": [*where, key], "msg": f"{value!r} is not a principal name ({GRAMMAR})"}
        for key, value in sorted(names.items())
        if not is_name(value)
    ]
    if errors:
        raise ValidationFailed("evaluator_names must map evaluators of the judgments to principal names", errors=errors)
    named = [{**j, "evaluator": names.get(j["evaluator"], j["evaluator"])} for j in judgments]
    seen: set[tuple[str, str]] = set()
    for row, judgment in enumerate(named):
        key = (judgment["task_id"], judgment["evaluator"])
        if key in seen:
            raise _refuse(
                [*formats.WHERE, row], f"{key[1]} judged task {key[0]} again", "two evaluators were named as one"
            )
        seen.add(key)
    return named


def check_judgments(ctx: KindContext, judgments: list[dict[str, Any]], task_ids: set[str]) -> None:
    """Each judgment judges a task of the campaign (`formats.parse_judgments` has refused a task judged
    twice by one evaluator); the evaluators are the ones the spec names, when it names any; a human
    evaluation holds no machine's judgment."""
    where = formats.WHERE
    if not judgments:
        raise _refuse(where, "no judgments", "the judgments file holds no judgment")
    if ctx.limits is not None:
        ctx.limits.check_count(len(judgments), where=where)
    errors = [
        {"loc": [*where, row, "task_id"], "msg": f"{judgment['task_id']} is no task of the campaign"}
        for row, judgment in enumerate(judgments)
        if judgment["task_id"] not in task_ids
    ]
    if errors:
        raise ValidationFailed(f"{len(errors)} judgment(s) do not fit the campaign's tasks", errors=errors[:100])
    evaluators = sorted({j["evaluator"] for j in judgments})
    named = ctx.spec["evaluators"]
    if named and sorted(set(named)) != evaluators:
        raise _refuse(
            ["body", "spec", "evaluators"],
            f"the judgments' evaluators are {evaluators}",
            "spec.evaluators must name exactly the evaluators of the judgments (or be left out)",
        )
    machines = [e for e in evaluators if e.startswith(MACHINE_PREFIXES)]
    if ctx.spec["type"] == "human_preference" and machines:
        raise _refuse(
            where,
            f"machine evaluators {machines}",
            "a human_preference evaluation holds people's judgments only; a judge's make an ai_preference one",
        )
    unknown = sorted(set(ctx.spec["review_sample"] or ()) - task_ids)
    if unknown:
        raise _refuse(["body", "spec", "review_sample"], f"not tasks of the campaign: {unknown[:5]}", "unknown tasks")


def add_compared(ctx: KindContext, campaign: Record) -> None:
    """Link every model the campaign compared, in the campaign's order, as a `compared` parent."""
    ids = [model["id"] for model in campaign.derived["models"]]
    records = {r.id: r for r in ctx.session.scalars(select(Record).where(Record.id.in_(ids)))}
    ctx.added_parents.extend((records[i], "compared") for i in ids)


class EvaluationKind(KindDefinition):
    name = "evaluation"
    collection = "evaluations"
    rank = 100
    label = "evaluation"
    waivable = True
    package_fields: ClassVar[tuple[str, ...]] = ("spec.type",)
    traces_to_criteria = False
    is_model = False
    trained = False
    built_by_server = False
    version_scheme = "integer"
    write_roles: ClassVar[frozenset[str]] = frozenset({"trainer"})
    parent_roles: ClassVar[tuple[ParentRole, ...]] = (
        ParentRole("target", ("policy_checkpoint", "reward_checkpoint", "base_model"), required=False),
        ParentRole("campaign", ("evaluation_campaign",), required=False),
        ParentRole("prompt_set", ("prompt_set",), required=False),
        ParentRole("reference", ("base_model", "policy_checkpoint"), required=False),
    )
    spec_model = EvaluationSpec
    refuses_quarantined_parents = False  # evidence about a bad checkpoint is still evidence

    def blob_refs(self, spec: dict[str, Any]) -> list[tuple[str, str]]:
        return [(EVIDENCE_PATH, spec["evidence_blob"])] if spec.get("evidence_blob") else []

    def check(self, ctx: KindContext) -> None:
        check_shape(ctx)
        check_one_type_per_blob(ctx)
        if ctx.parents["campaign"]:
            [campaign] = ctx.parents["campaign"]
            tasks = load_tasks(campaign, ctx.store)
            data = read_bytes(ctx.store, ctx.spec["evidence_blob"])
            judgments = formats.parse_judgments(data, ctx.spec["evidence_format"] or "jsonl")
            judgments = name_evaluators(judgments, ctx.spec["evaluator_names"])
            check_judgments(ctx, judgments, {task["task_id"] for task in tasks})
            ctx.scratch.update(tasks=tasks, judgments=judgments)

    def derive(self, ctx: KindContext) -> dict[str, Any]:
        if not ctx.parents["campaign"]:
            [target] = ctx.parents["target"]
            return {
                "type": ctx.spec["type"],
                "target": {"kind": target.kind, "name": target.name, "version": target.version},
            }
        # imported here: evalica brings pandas and scipy, memory that every process loading the kind
        # registry (a package's `verify`, a worker) would otherwise hold without deriving anything
        from app.evaluations import stats

        [campaign] = ctx.parents["campaign"]
        add_compared(ctx, campaign)
        ai_judged = ctx.spec["type"] == "ai_preference"
        figures = stats.campaign_figures(
            campaign.derived["models"], ctx.scratch["tasks"], ctx.scratch["judgments"], campaign.derived["seed"]
        )
        return {
            "type": ctx.spec["type"],
            "campaign": {"id": campaign.id, "name": campaign.name, "version": campaign.version},
            "series": campaign.derived["series"],
            "ai_judged": ai_judged,
            **figures,
            **({"review_sample": sorted(ctx.spec["review_sample"] or [])} if ai_judged else {}),
        }
