"""Prompt sets: the prompt distribution annotation draws from, with its sampling procedure.

Derived figures compare the mix by source with the policy's target (60-70% usage, 20-25% synthetic,
5-15% expert/adversarial edge cases, per the seed essay) and report coverage by length, topic and
complexity, because a reward model only generalises over the prompts its data covers."""

from __future__ import annotations

from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.core.digests import is_digest
from app.kinds.base import KindContext, KindDefinition
from app.kinds.tables import RowErrors, TableLimits, read_blob_table, rows_table
from app.records.models import Record
from app.storage.base import BlobStore

SOURCES = ("usage", "synthetic", "expert", "adversarial")
COMPLEXITIES = ("low", "medium", "high")
LENGTH_BUCKETS = ((0, 200, "short"), (200, 1000, "medium"), (1000, None, "long"))

PROMPT_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("text", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("topic", pa.string()),
        pa.field("complexity", pa.string()),
        pa.field("turns", pa.int64()),
        pa.field("privacy_reviewed", pa.bool_()),
        pa.field("production_validation", pa.bool_()),
    ]
)


class PromptSetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sampling_procedure: str = Field(min_length=1)
    prompts: list[dict[str, Any]] | None = None
    prompts_blob: str | None = None
    metadata: dict[str, Any] = {}

    @model_validator(mode="after")
    def _one_source(self) -> PromptSetSpec:
        if (self.prompts is None) == (self.prompts_blob is None):
            raise ValueError("give exactly one of prompts (inline) or prompts_blob (a JSONL blob digest)")
        if self.prompts_blob is not None and not is_digest(self.prompts_blob):
            raise ValueError("prompts_blob must be a digest sha256:<64 hex>")
        return self


def load_prompts(spec: dict[str, Any], store: BlobStore, limits: TableLimits | None = None) -> pa.Table:
    where: list[Any] = ["spec", "prompts"]
    if spec.get("prompts_blob"):
        return read_blob_table(store, spec["prompts_blob"], PROMPT_SCHEMA, where=where, limits=limits)
    return rows_table(spec["prompts"], PROMPT_SCHEMA, where=where, limits=limits)


def prompts_of(record: Record, store: BlobStore) -> pa.Table:
    return load_prompts(record.spec, store)


def validate_prompts(table: pa.Table) -> None:
    errors = RowErrors(["spec", "prompts"])
    unknown = [c for c in table.column_names if c not in PROMPT_SCHEMA.names]
    for column in unknown:
        errors.add(["spec", "prompts", column], "unknown field")
    for name in ("id", "text", "source"):
        errors.add_mask(pc.is_null(table[name]), name, "required")
    errors.add_mask(pc.equal(pc.utf8_length(table["text"]), 0), "text", "empty prompt text")
    errors.add_mask(pc.invert(pc.is_in(table["source"], pa.array(SOURCES))), "source", f"must be one of {SOURCES}")
    complexity = table["complexity"]
    errors.add_mask(
        pc.and_(pc.is_valid(complexity), pc.invert(pc.is_in(complexity, pa.array(COMPLEXITIES)))),
        "complexity",
        f"must be one of {COMPLEXITIES}",
    )
    errors.add_mask(pc.less(table["turns"], 1), "turns", "must be at least 1")
    unreviewed = pc.and_(pc.equal(table["source"], "usage"), pc.invert(pc.fill_null(table["privacy_reviewed"], False)))
    indices = pc.indices_nonzero(pc.fill_null(unreviewed, False))
    ids = table["id"].take(indices).to_pylist()
    for index, prompt_id in zip(indices.to_pylist(), ids, strict=True):
        errors.add(
            ["spec", "prompts", index, "privacy_reviewed"],
            f"usage-derived prompt {prompt_id!r} must be privacy-reviewed before annotation",
        )
    counts = table.group_by("id").aggregate([([], "count_all")])
    duplicated = counts.filter(pc.greater(counts["count_all"], 1))["id"].to_pylist()
    for prompt_id in duplicated:
        errors.add(["spec", "prompts", "id"], f"prompt id {prompt_id!r} appears more than once")
    errors.raise_if_any("the prompts are not valid")


def _shares(values: pa.ChunkedArray, keys: tuple[str, ...], total: int) -> dict[str, float]:
    counts = dict(zip(*_value_counts(values), strict=True))
    return {key: (counts.get(key, 0) / total if total else 0.0) for key in keys}


def _value_counts(values: pa.ChunkedArray) -> tuple[list[Any], list[int]]:
    counted = pc.value_counts(values)
    return counted.field("values").to_pylist(), counted.field("counts").to_pylist()


def derive_prompt_figures(table: pa.Table, policy: dict[str, Any]) -> dict[str, Any]:
    total = table.num_rows
    shares = _shares(table["source"], SOURCES, total)
    mix = {
        "usage": shares["usage"],
        "synthetic": shares["synthetic"],
        "edge": shares["expert"] + shares["adversarial"],
        **{f"source_{key}": value for key, value in shares.items()},
    }
    warnings: list[str] = []
    for key in ("usage", "synthetic", "edge"):
        low, high = policy["prompt_mix"][key]
        if not low <= mix[key] <= high:
            warnings.append(f"{key} share {mix[key]:.3f} is outside the policy target [{low}, {high}]")
    lengths = pc.utf8_length(table["text"])
    buckets: dict[str, int] = {}
    for low, high, label in LENGTH_BUCKETS:
        mask = pc.greater_equal(lengths, low)
        if high is not None:
            mask = pc.and_(mask, pc.less(lengths, high))
        buckets[label] = int(pc.sum(mask).as_py() or 0)
    if total and max(buckets.values()) / total > 0.7:
        warnings.append("more than 70% of the prompts fall in one length bucket")
    topics, topic_counts = _value_counts(pc.fill_null(table["topic"], "unspecified"))
    complexity, complexity_counts = _value_counts(pc.fill_null(table["complexity"], "unspecified"))
    complexity_coverage = dict(zip(complexity, complexity_counts, strict=True))
    if total and not complexity_coverage.get("high"):
        warnings.append("no prompt is marked high complexity")
    multi_turn = int(pc.sum(pc.greater(pc.fill_null(table["turns"], 1), 1)).as_py() or 0)
    return {
        "count": total,
        "mix": mix,
        "target_mix": policy["prompt_mix"],
        "coverage": {
            "length": buckets,
            "topic": dict(sorted(zip(topics, topic_counts, strict=True))),
            "complexity": dict(sorted(complexity_coverage.items())),
            "multi_turn": multi_turn,
        },
        "production_validation": int(pc.sum(pc.fill_null(table["production_validation"], False)).as_py() or 0),
        "warnings": warnings,
    }


class PromptSetKind(KindDefinition):
    name = "prompt_set"
    collection = "prompt-sets"
    rank = 30
    label = "prompt set"
    waivable = True
    # the prompt sampling procedure and statistics
    package_fields: ClassVar[tuple[str, ...]] = (
        "spec.sampling_procedure", "derived.count", "derived.mix", "derived.coverage",
    )  # fmt: skip
    traces_to_criteria = False
    is_model = False
    trained = False
    built_by_server = False
    version_scheme = "semver"
    write_roles: ClassVar[frozenset[str]] = frozenset({"annotator"})
    spec_model = PromptSetSpec

    def blob_refs(self, spec: dict[str, Any]) -> list[tuple[str, str]]:
        return [("prompts", spec["prompts_blob"])] if spec.get("prompts_blob") else []

    def check(self, ctx: KindContext) -> None:
        table = load_prompts(ctx.spec, ctx.store, ctx.limits)
        validate_prompts(table)
        ctx.scratch["prompts"] = table

    def derive(self, ctx: KindContext) -> dict[str, Any]:
        return derive_prompt_figures(ctx.scratch["prompts"], ctx.policy.spec)
