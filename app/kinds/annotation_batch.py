"""Annotation batches: preference judgements, tagged with the criteria and prompt-set versions they
followed, with quality-control figures derived at registration and gated at use.

A batch is human-labelled, or `ai_labelled`: every label an AI judge's (annotator `ai:<judge>`), with
a `review_sample` of its pairs for humans to label again. A batch that `reviews` an AI-labelled one
holds those humans' labels, each beside the AI's label of the pair, so its QC measures how far the AI
can be trusted; a dataset takes AI labels only once such a review agrees enough (preference_dataset)."""

from __future__ import annotations

from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator
from sqlalchemy import select

from app.core.digests import is_digest
from app.kinds.ai_review import PAIR_COLUMNS, check_labellers, check_review, check_reviewable, reviewed_sample
from app.kinds.base import KindContext, KindDefinition, ParentRole
from app.kinds.prompt_set import prompts_of
from app.kinds.tables import RowErrors, TableLimits, iter_blob_tables, read_blob_table, rows_table
from app.qc import compute_qc
from app.qc.canonical import text_features
from app.records.models import Record
from app.storage.base import BlobStore

CHOICES = ("a", "b", "tie")
HISTORY_BATCHES = 50

ITEM_SCHEMA = pa.schema(
    [
        pa.field("pair_id", pa.string(), nullable=False),
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("response_a", pa.string(), nullable=False),
        pa.field("response_b", pa.string(), nullable=False),
        pa.field("model_a", pa.string()),
        pa.field("model_b", pa.string()),
        pa.field("shown_first", pa.string()),
        pa.field("annotator", pa.string(), nullable=False),
        pa.field("choice", pa.string(), nullable=False),
        pa.field("justification", pa.string()),
        pa.field("session_id", pa.string()),
        pa.field("started_at", pa.timestamp("us", tz="UTC")),
        pa.field("submitted_at", pa.timestamp("us", tz="UTC")),
        pa.field("gold", pa.string()),
        pa.field("ai_choice", pa.string()),
    ]
)
REQUIRED = [f.name for f in ITEM_SCHEMA if not f.nullable]
# Texts are reduced to what validation and QC need (nullness, order, length) slice by slice, so a
# batch of a million items never holds its responses in memory all at once.
TEXT_COLUMNS = ("response_a", "response_b", "justification")
FEATURE_COLUMNS = ("swapped", "len_a", "len_b", "response_a_missing", "response_b_missing")
KNOWN_COLUMNS = {*ITEM_SCHEMA.names, "dimensions", *FEATURE_COLUMNS}


class AnnotationBatchSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    annotator_pool: str = Field(min_length=1)
    tool: str = Field(min_length=1)
    collected_from: str = Field(min_length=1)
    collected_to: str = Field(min_length=1)
    ai_assisted: bool = False
    ai_model: str | None = None
    # every label is an AI judge's; such a batch is AI-assisted by the judge it names as ai_model
    ai_labelled: bool = False
    # pair ids of an AI-labelled batch drawn for human review (a `judge` run draws them by prompt source)
    review_sample: list[str] | None = None
    items: list[dict[str, Any]] | None = None
    items_blob: str | None = None
    metadata: dict[str, Any] = {}

    @field_validator("ai_labelled")
    @classmethod
    def _judge_named(cls, value: bool, info: ValidationInfo) -> bool:
        if value and not (info.data.get("ai_assisted") and info.data.get("ai_model")):
            raise ValueError("an AI-labelled batch is AI-assisted: set ai_assisted and name the judge as ai_model")
        return value

    @field_validator("review_sample")
    @classmethod
    def _sample_of_ai_labels(cls, value: list[str] | None, info: ValidationInfo) -> list[str] | None:
        if value is None:
            return None
        if not info.data.get("ai_labelled"):
            raise ValueError("only an ai_labelled batch has a review sample")
        if len(set(value)) != len(value):
            raise ValueError("a pair id is listed twice")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> AnnotationBatchSpec:
        if (self.items is None) == (self.items_blob is None):
            raise ValueError("give exactly one of items (inline) or items_blob (a JSONL or Parquet blob digest)")
        if self.items_blob is not None and not is_digest(self.items_blob):
            raise ValueError("items_blob must be a digest sha256:<64 hex>")
        if self.items is not None and not self.items:
            raise ValueError("a batch needs at least one item")
        if self.ai_assisted and not self.ai_model:
            raise ValueError("an AI-assisted batch must name its ai_model")
        if self.collected_to < self.collected_from:
            raise ValueError("collected_to is before collected_from")
        return self


def load_items(spec: dict[str, Any], store: BlobStore) -> pa.Table:
    where: list[Any] = ["spec", "items"]
    if spec.get("items_blob"):
        return read_blob_table(store, spec["items_blob"], ITEM_SCHEMA, where=where)
    return rows_table(spec["items"], ITEM_SCHEMA, where=where)


def items_of(record: Record, store: BlobStore) -> pa.Table:
    return load_items(record.spec, store)


def items_on_pairs(record: Record, store: BlobStore, pair_ids: pa.ChunkedArray) -> pa.Table:
    """A batch's items on `pair_ids` (PAIR_COLUMNS), read slice by slice: a review samples a few pairs
    of a batch whose texts need not all sit in memory at once."""
    where: list[Any] = ["body", "reviews"]
    spec = record.spec
    slices = (
        iter_blob_tables(store, spec["items_blob"], ITEM_SCHEMA, where=where)
        if spec.get("items_blob")
        else [rows_table(spec["items"], ITEM_SCHEMA, where=where)]
    )
    wanted = pc.unique(pair_ids)
    parts = [part.filter(pc.is_in(part["pair_id"], wanted)).select(PAIR_COLUMNS) for part in slices]
    return pa.concat_tables(parts) if parts else ITEM_SCHEMA.empty_table().select(PAIR_COLUMNS)


def _thin(table: pa.Table) -> pa.Table:
    features = text_features(table["response_a"], table["response_b"])
    features["response_a_missing"] = pc.is_null(table["response_a"])
    features["response_b_missing"] = pc.is_null(table["response_b"])
    thin = table.drop_columns([c for c in TEXT_COLUMNS if c in table.column_names])
    for name, column in features.items():
        thin = thin.append_column(name, column)
    return thin


def load_items_for_qc(spec: dict[str, Any], store: BlobStore, limits: TableLimits | None = None) -> pa.Table:
    """Items without their texts, plus the text features (see TEXT_COLUMNS)."""
    where: list[Any] = ["spec", "items"]
    if spec.get("items_blob"):
        blob = spec["items_blob"]
        slices = [_thin(t) for t in iter_blob_tables(store, blob, ITEM_SCHEMA, where=where, limits=limits)]
        return (
            pa.concat_tables(slices, promote_options="default")
            if slices
            else _thin(rows_table([], ITEM_SCHEMA, where=where))
        )
    return _thin(rows_table(spec["items"], ITEM_SCHEMA, where=where, limits=limits))


def _check_values(errors: RowErrors, table: pa.Table, field: str, allowed: tuple[str, ...]) -> None:
    column = table[field]
    bad = pc.and_(pc.is_valid(column), pc.invert(pc.is_in(column, pa.array(allowed))))
    errors.add_mask(bad, field, f"must be one of {list(allowed)}")


def _check_dimensions(errors: RowErrors, table: pa.Table, dimensions: set[str]) -> None:
    if "dimensions" not in table.column_names:
        return
    column = table["dimensions"]
    if pa.types.is_null(column.type):
        return
    if not pa.types.is_struct(column.type):
        errors.add(["spec", "items", "dimensions"], "dimensions must be an object of dimension -> a|b|tie")
        return
    for index in range(column.type.num_fields):
        child = column.type.field(index)
        if child.name not in dimensions:
            errors.add(
                ["spec", "items", "dimensions", child.name],
                f"{child.name!r} is not a dimension of the named criteria version ({sorted(dimensions)})",
            )
            continue
        values = pc.struct_field(column, child.name)
        if not pa.types.is_string(values.type) and not pa.types.is_null(values.type):
            errors.add(["spec", "items", "dimensions", child.name], "values must be a, b or tie")
            continue
        bad = pc.and_(pc.is_valid(values), pc.invert(pc.is_in(values, pa.array(CHOICES))))
        errors.add_mask(bad, f"dimensions.{child.name}", "must be one of ['a', 'b', 'tie']")


def validate_items(table: pa.Table, *, prompt_ids: pa.Array, dimensions: set[str]) -> None:
    """Every offending item located by index; duplicates located by (pair, annotator)."""
    errors = RowErrors(["spec", "items"])
    for column in sorted(set(table.column_names) - KNOWN_COLUMNS):
        errors.add(["spec", "items", column], "unknown field")
    for name in REQUIRED:
        missing = table[f"{name}_missing"] if f"{name}_missing" in table.column_names else pc.is_null(table[name])
        errors.add_mask(missing, name, "required")
    _check_values(errors, table, "choice", CHOICES)
    _check_values(errors, table, "shown_first", ("a", "b"))
    _check_values(errors, table, "gold", CHOICES)
    _check_values(errors, table, "ai_choice", CHOICES)
    errors.add_mask(
        pc.invert(pc.is_in(table["prompt_id"], prompt_ids)),
        "prompt_id",
        "not a prompt of the named prompt-set version",
    )
    errors.add_mask(pc.greater(table["started_at"], table["submitted_at"]), "submitted_at", "before started_at")
    _check_dimensions(errors, table, dimensions)
    counts = table.group_by(["pair_id", "annotator"]).aggregate([([], "count_all")])
    repeated = counts.filter(pc.greater(counts["count_all"], 1))
    for pair_id, annotator in zip(repeated["pair_id"].to_pylist(), repeated["annotator"].to_pylist(), strict=True):
        errors.add(["spec", "items", "pair_id"], f"pair {pair_id!r} is annotated twice by {annotator!r}")
    errors.raise_if_any("the annotation items are not valid")


def earlier_qc(ctx: KindContext) -> list[dict[str, Any]]:
    """QC of the project's earlier batches (oldest first), for drift: AI-labelled batches are compared
    with AI-labelled ones and human batches with human ones, since a judge's tie rate or position bias
    says nothing about a vendor's."""
    stmt = (
        select(Record.derived)
        .where(Record.project_id == ctx.project_id, Record.kind == "annotation_batch")
        .order_by(Record.id.desc())
        .limit(HISTORY_BATCHES)
    )
    ai_labelled = ctx.spec["ai_labelled"]
    return [
        derived["qc"]
        for derived in reversed(ctx.session.scalars(stmt).all())
        if "qc" in derived and bool(derived["qc"].get("ai_labelled")) == ai_labelled
    ]


class AnnotationBatchKind(KindDefinition):
    name = "annotation_batch"
    collection = "annotation-batches"
    rank = 40
    label = "annotation batch"
    waivable = True
    # each batch with its metadata and QC
    package_fields: ClassVar[tuple[str, ...]] = (
        "spec.annotator_pool", "spec.tool", "spec.collected_from", "spec.collected_to", "derived.items",
        "derived.qc", "derived.qc.gate", "derived.qc.cohen_kappa",
    )  # fmt: skip
    traces_to_criteria = True
    is_model = False
    trained = False
    built_by_server = False
    version_scheme = "integer"
    write_roles: ClassVar[frozenset[str]] = frozenset({"annotator"})
    parent_roles: ClassVar[tuple[ParentRole, ...]] = (
        ParentRole("criteria", ("criteria",)),
        ParentRole("prompt_set", ("prompt_set",)),
        # the AI-labelled batch whose sample this batch's humans labelled again
        ParentRole("reviews", ("annotation_batch",), required=False),
    )
    spec_model = AnnotationBatchSpec

    def blob_refs(self, spec: dict[str, Any]) -> list[tuple[str, str]]:
        return [("items", spec["items_blob"])] if spec.get("items_blob") else []

    def check(self, ctx: KindContext) -> None:
        [criteria] = ctx.parents["criteria"]
        [prompt_set] = ctx.parents["prompt_set"]
        table = load_items_for_qc(ctx.spec, ctx.store, ctx.limits)
        prompt_ids = prompts_of(prompt_set, ctx.store)["id"].combine_chunks()
        dimensions = {d["name"] for d in criteria.spec["dimensions"]}
        validate_items(table, prompt_ids=prompt_ids, dimensions=dimensions)
        check_labellers(table, ctx.spec)
        if ctx.parents["reviews"]:
            [reviewed] = ctx.parents["reviews"]
            check_reviewable(ctx.spec, reviewed)
            review = load_items(ctx.spec, ctx.store).select(PAIR_COLUMNS)
            check_review(review, reviewed, items_on_pairs(reviewed, ctx.store, review["pair_id"]))
        ctx.scratch["items"] = table

    def derive(self, ctx: KindContext) -> dict[str, Any]:
        table: pa.Table = ctx.scratch["items"]
        [criteria] = ctx.parents["criteria"]
        [prompt_set] = ctx.parents["prompt_set"]
        reviewed = ctx.parents["reviews"][0] if ctx.parents["reviews"] else None
        qc = compute_qc(
            table,
            ctx.policy.spec,
            history=earlier_qc(ctx),
            policy_version=ctx.policy.version,
            ai_labelled=ctx.spec["ai_labelled"],
            reviewed=None if reviewed is None else reviewed_sample(reviewed),
        )
        derived: dict[str, Any] = {
            "criteria": {"name": criteria.name, "version": criteria.version},
            "prompt_set": {"name": prompt_set.name, "version": prompt_set.version},
            "items": table.num_rows,
            "prompts_covered": pc.count_distinct(table["prompt_id"]).as_py(),
            "qc": qc,
        }
        if reviewed is not None:
            derived["reviews"] = {"id": reviewed.id, "name": reviewed.name, "version": reviewed.version}
        return derived
