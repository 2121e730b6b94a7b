"""Preference datasets: the server consolidates registered batches into TRL-format Parquet.

Batches must share the criteria name and MAJOR version (`criteria_incompatible`), pass their QC gate
(`qc_gate_blocked`) and, when AI-labelled, have a human review that agrees with them at least as much
as the policy asks (`ai_review_insufficient`), each unless an approver registered a waiver covering the
batch; the waivers used become parents of the dataset."""

from __future__ import annotations

from collections import Counter
from typing import Any, ClassVar, Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select

from app.core.errors import AiReviewInsufficient, CriteriaIncompatible, QcGateBlocked, ValidationFailed
from app.kinds.ai_review import best_reviews, review_agreement
from app.kinds.annotation_batch import items_of
from app.kinds.base import KindContext, KindDefinition, ParentRole
from app.kinds.dataset_build import BuildRules, build, to_parquet_bytes
from app.kinds.policy import DEFAULT_POLICY
from app.kinds.prompt_set import prompts_of
from app.kinds.semver import Semver
from app.kinds.waiver import waivers_covering
from app.records.models import Record
from app.storage.base import put_bytes

ITEM_COLUMNS = ["prompt_id", "response_a", "response_b", "choice"]


class PreferenceDatasetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    validation_share: float | None = Field(None, gt=0.0, lt=1.0)
    drop_ties: bool = True
    tie_break: Literal["shorter", "longer"] | None = None
    exclude_high_disagreement: bool = True
    seed: int = 0
    metadata: dict[str, Any] = {}

    @model_validator(mode="after")
    def _ties(self) -> PreferenceDatasetSpec:
        if not self.drop_ties and self.tie_break is None:
            raise ValueError(
                "keeping ties needs tie_break ('shorter' or 'longer'): the machine-applicable form of the "
                "criteria's tie-breaking rule"
            )
        return self


def _parent_id(record: Record, role: str) -> str:
    return str(next(p["id"] for p in record.parents if p["role"] == role))


def _reasons(batch: Record) -> str:
    return "; ".join(batch.derived["qc"].get("gate_reasons", []))


def _below(agreement: float | None, floor: float) -> bool:
    """Whether a review agreement (None: no review) falls short of the policy floor."""
    return agreement is None or agreement < floor


def _review_line(batch: Record, agreement: float | None) -> str:
    found = "no review" if agreement is None else f"best review agreement {agreement:.3f}"
    return f"{batch.name} v{batch.version} ({found})"


def _flat_items(batch: Record, ctx: KindContext) -> pa.Table:
    table = items_of(batch, ctx.store)
    columns = {name: table[name] for name in ITEM_COLUMNS}
    columns["ai_labelled"] = pa.repeat(pa.scalar(bool(batch.spec.get("ai_labelled"))), table.num_rows)
    if "dimensions" in table.column_names and pa.types.is_struct(table["dimensions"].type):
        struct = table["dimensions"]
        for index in range(struct.type.num_fields):
            child = struct.type.field(index).name
            columns[f"dim__{child}"] = pc.cast(pc.struct_field(struct, child), pa.string())
    return pa.table(columns)


class PreferenceDatasetKind(KindDefinition):
    name = "preference_dataset"
    collection = "preference-datasets"
    rank = 60
    label = "preference dataset"
    waivable = True
    # the dataset construction rules and counts
    package_fields: ClassVar[tuple[str, ...]] = ("derived.rules", "derived.counts")
    traces_to_criteria = True
    is_model = False
    trained = False
    # the client registers the construction rules and the batches; the server derives the Parquet file
    # in the pipeline, like any derived figure, so the registration route is the common one
    built_by_server = False
    version_scheme = "integer"
    write_roles: ClassVar[frozenset[str]] = frozenset({"annotator", "trainer"})
    parent_roles: ClassVar[tuple[ParentRole, ...]] = (ParentRole("batches", ("annotation_batch",), many=True),)
    spec_model = PreferenceDatasetSpec

    def check(self, ctx: KindContext) -> None:
        batches = ctx.parents["batches"]
        if len({b.id for b in batches}) != len(batches):
            raise ValidationFailed("a batch is listed twice", errors=[{"loc": ["body", "batches"], "msg": "duplicate"}])
        low, high = ctx.policy.spec["validation_share"]
        share = ctx.spec["validation_share"]
        if share is None:
            ctx.spec["validation_share"] = share = round((low + high) / 2, 6)
        if not low <= share <= high:
            raise ValidationFailed(
                f"validation_share {share} is outside the policy's hold-out range [{low}, {high}]",
                errors=[{"loc": ["body", "spec", "validation_share"], "msg": "outside policy range"}],
            )
        criteria = self._criteria_of(ctx, batches)
        ctx.scratch["criteria"] = criteria
        self._check_criteria(ctx, batches, criteria)
        self._check_gates(ctx, batches)
        self._check_ai_reviews(ctx, batches)

    def _criteria_of(self, ctx: KindContext, batches: list[Record]) -> dict[str, Record]:
        ids = {_parent_id(b, "criteria") for b in batches}
        records = ctx.session.scalars(select(Record).where(Record.id.in_(ids))).all()
        by_id = {r.id: r for r in records}
        return {b.id: by_id[_parent_id(b, "criteria")] for b in batches}

    def _waive(self, ctx: KindContext, rule: str, offending: list[Record]) -> list[Record]:
        """The offending records no waiver covers; the waivers that do become parents."""
        waivers = waivers_covering(ctx.session, ctx.project_id, rule, [r.id for r in offending])
        for waiver in {w.id: w for w in waivers.values()}.values():
            if all(waiver.id != added.id for added, _ in ctx.added_parents):
                ctx.added_parents.append((waiver, "waiver"))
        return [r for r in offending if r.id not in waivers]

    def _check_criteria(self, ctx: KindContext, batches: list[Record], criteria: dict[str, Record]) -> None:
        def line(batch: Record) -> tuple[str, int]:
            record = criteria[batch.id]
            return record.name, Semver.parse(record.version).major

        votes = Counter(line(b) for b in batches)
        majority = max(votes, key=lambda key: (votes[key], key[1]))
        offending = [b for b in batches if line(b) != majority]
        unwaived = self._waive(ctx, "criteria_incompatible", offending)
        if unwaived:
            raise CriteriaIncompatible(
                f"batches follow different criteria lines; most follow {majority[0]} {majority[1]}.x, "
                "these do not: "
                + ", ".join(f"{b.name} v{b.version} ({criteria[b.id].version})" for b in unwaived)
                + ". Annotations are comparable only within one criteria MAJOR version; an approver may "
                "register a waiver for rule criteria_incompatible covering them",
                extra={"batches": [b.id for b in unwaived]},
            )

    def _check_gates(self, ctx: KindContext, batches: list[Record]) -> None:
        blocked = [b for b in batches if b.derived.get("qc", {}).get("gate") == "block"]
        unwaived = self._waive(ctx, "qc_gate_blocked", blocked)
        if unwaived:
            raise QcGateBlocked(
                "QC gate blocks: "
                + ", ".join(
                    f"{b.name} v{b.version} ({'; '.join(b.derived['qc'].get('gate_reasons', []))})" for b in unwaived
                )
                + ". Re-annotate, or an approver may register a waiver for rule qc_gate_blocked",
                extra={"batches": [b.id for b in unwaived]},
            )

    def _check_ai_reviews(self, ctx: KindContext, batches: list[Record]) -> None:
        """AI labels enter only behind a human review of their sample that agrees with them at least
        `ai_review_agreement_min` (the best of the batch's reviews counts)."""
        labelled = [b for b in batches if b.spec.get("ai_labelled")]
        # a policy registered before the floor existed holds no value for it
        floor = float(ctx.policy.spec.get("ai_review_agreement_min", DEFAULT_POLICY["ai_review_agreement_min"]))
        reviews = best_reviews(ctx.session, ctx.project_id, [b.id for b in labelled])
        agreements = {b.id: review_agreement(reviews.get(b.id)) for b in labelled}
        short = [b for b in labelled if _below(agreements[b.id], floor)]
        unwaived = self._waive(ctx, "ai_review_insufficient", short)
        if unwaived:
            raise AiReviewInsufficient(
                f"AI-labelled batches whose human review does not reach the agreement floor {floor:g}: "
                + ", ".join(_review_line(b, agreements[b.id]) for b in unwaived)
                + ". Have humans label their review_sample in a batch that reviews them, or an approver may "
                "register a waiver for rule ai_review_insufficient",
                extra={
                    "batches": [b.id for b in unwaived],
                    "agreements": [agreements[b.id] for b in unwaived],
                    "floor": floor,
                },
            )
        waived = {b.id for b in short}
        ctx.scratch["ai_reviews"] = [
            {
                "batch": b.id,
                "review": reviews[b.id].id if b.id in reviews else None,
                "agreement": agreements[b.id],
                "floor": floor,
                "waived": b.id in waived,
            }
            for b in labelled
        ]

    def derive(self, ctx: KindContext) -> dict[str, Any]:
        batches = ctx.parents["batches"]
        criteria: dict[str, Record] = ctx.scratch["criteria"]
        dimensions = sorted({d["name"] for c in criteria.values() for d in c.spec["dimensions"]})
        items = pa.concat_tables([_flat_items(b, ctx) for b in batches], promote_options="default")
        prompt_set_ids = list(dict.fromkeys(_parent_id(b, "prompt_set") for b in batches))
        prompt_sets = ctx.session.scalars(select(Record).where(Record.id.in_(prompt_set_ids))).all()
        prompts = pa.concat_tables(
            [prompts_of(p, ctx.store).select(["id", "text", "production_validation"]) for p in prompt_sets]
        )
        rules = BuildRules(
            validation_share=ctx.spec["validation_share"],
            drop_ties=ctx.spec["drop_ties"],
            tie_break=ctx.spec["tie_break"],
            exclude_high_disagreement=ctx.spec["exclude_high_disagreement"],
            band=tuple(ctx.policy.spec["high_disagreement_band"]),
            seed=ctx.spec["seed"],
        )
        table, counts = build(items, prompts, dimensions, rules)
        info = put_bytes(ctx.store, to_parquet_bytes(table))
        ctx.derived_blobs.append(("dataset.parquet", info.digest, info.size))
        first = criteria[batches[0].id]
        return {
            "format": "trl-preference",
            "columns": table.column_names,
            "counts": counts,
            "validation_share_realized": counts["validation"] / counts["pairs_out"] if counts["pairs_out"] else None,
            "rules": {
                "vote": "majority over first/second/tie in canonical orientation; equal top counts are a tie",
                "drop_ties": rules.drop_ties,
                "tie_break": rules.tie_break,
                "criteria_tie_breaking": first.spec.get("tie_breaking", []),
                "exclude_high_disagreement": rules.exclude_high_disagreement,
                "high_disagreement_band": list(rules.band),
                "validation_share": rules.validation_share,
                "split": "by prompt: sha256(seed:prompt_id) order",
                "seed": rules.seed,
                "policy_version": ctx.policy.version,
            },
            "criteria": {"name": first.name, "versions": sorted({c.version for c in criteria.values()})},
            "warnings": [
                f"batch {b.name} v{b.version} entered with QC gate warn: {_reasons(b)}"
                for b in batches
                if b.derived.get("qc", {}).get("gate") == "warn"
            ],
            "waivers": [w.id for w, _ in ctx.added_parents],
            "ai_reviews": ctx.scratch["ai_reviews"],
            "files": [{"path": "dataset.parquet", "digest": info.digest, "size": info.size}],
        }
