"""Demonstration sets: prompt and response pairs a policy is fine-tuned on (supervised fine-tuning, the
first stage of the method), written under a criteria version for the prompts of a prompt set.

Each demonstration names its prompt by id in the cited prompt set, which stays the one place a prompt's
text, source and topic live; a prompt reserved for production validation is refused, as it is kept out
of preference datasets. At registration the server joins the demonstrations with their prompts and
writes the training file a `sft` run reads (`demonstrations.parquet`: prompt, completion), and derives
counts, lengths, coverage by source and topic, and how many of the prompts (by text) also feed one of
the project's latest preference datasets (the prompts the reward model or DPO will see again)."""

from __future__ import annotations

from typing import Any, ClassVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select

from app.core.digests import is_digest
from app.kinds.base import KindContext, KindDefinition, ParentRole
from app.kinds.dataset_build import to_parquet_bytes
from app.kinds.prompt_set import SOURCES, prompts_of
from app.kinds.tables import RowErrors, TableLimits, local_blob, read_blob_table, rows_table
from app.records.models import Record
from app.storage.base import BlobStore, put_bytes

DEMONSTRATION_SCHEMA = pa.schema(
    [
        pa.field("id", pa.string(), nullable=False),
        pa.field("prompt_id", pa.string(), nullable=False),
        pa.field("response", pa.string(), nullable=False),
        pa.field("author", pa.string()),
    ]
)
TRAINING_FILE = "demonstrations.parquet"
# the preference datasets compared for shared prompts: the project's latest ones built from this prompt set
OVERLAP_DATASETS = 10


class DemonstrationSetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # how the responses were written or chosen (who, under which instructions, edited from what)
    procedure: str = Field(min_length=1)
    demonstrations: list[dict[str, Any]] | None = None
    demonstrations_blob: str | None = None
    metadata: dict[str, Any] = {}

    @model_validator(mode="after")
    def _one_source(self) -> DemonstrationSetSpec:
        if (self.demonstrations is None) == (self.demonstrations_blob is None):
            raise ValueError(
                "give exactly one of demonstrations (inline) or demonstrations_blob (a JSONL or Parquet blob digest)"
            )
        if self.demonstrations_blob is not None and not is_digest(self.demonstrations_blob):
            raise ValueError("demonstrations_blob must be a digest sha256:<64 hex>")
        if self.demonstrations is not None and not self.demonstrations:
            raise ValueError("a demonstration set needs at least one demonstration")
        return self


def load_demonstrations(spec: dict[str, Any], store: BlobStore, limits: TableLimits | None = None) -> pa.Table:
    where: list[Any] = ["spec", "demonstrations"]
    if spec.get("demonstrations_blob"):
        return read_blob_table(store, spec["demonstrations_blob"], DEMONSTRATION_SCHEMA, where=where, limits=limits)
    return rows_table(spec["demonstrations"], DEMONSTRATION_SCHEMA, where=where, limits=limits)


def validate_demonstrations(table: pa.Table, prompts: pa.Table) -> None:
    """Every offending demonstration located by index: unknown fields, missing or empty values, a prompt
    the prompt set does not hold or reserves for production validation, an id used twice."""
    errors = RowErrors(["spec", "demonstrations"])
    for column in sorted(set(table.column_names) - set(DEMONSTRATION_SCHEMA.names)):
        errors.add(["spec", "demonstrations", column], "unknown field")
    if not table.num_rows:
        errors.add(["spec", "demonstrations"], "a demonstration set needs at least one demonstration")
    for name in ("id", "prompt_id", "response"):
        errors.add_mask(pc.is_null(table[name]), name, "required")
    errors.add_mask(pc.equal(pc.utf8_length(table["response"]), 0), "response", "empty response")
    errors.add_mask(
        pc.invert(pc.is_in(table["prompt_id"], prompts["id"].combine_chunks())),
        "prompt_id",
        "not a prompt of the named prompt-set version",
    )
    reserved = prompts.filter(pc.fill_null(prompts["production_validation"], False))["id"]
    errors.add_mask(
        pc.is_in(table["prompt_id"], reserved.combine_chunks()),
        "prompt_id",
        "the prompt is reserved for production validation: it must not be trained on",
    )
    counts = table.group_by("id").aggregate([([], "count_all")])
    for demo_id in counts.filter(pc.greater(counts["count_all"], 1))["id"].to_pylist():
        errors.add(["spec", "demonstrations", "id"], f"demonstration id {demo_id!r} appears more than once")
    errors.raise_if_any("the demonstrations are not valid")


def with_prompts(table: pa.Table, prompts: pa.Table) -> pa.Table:
    """The demonstrations in their own order, each with its prompt's text, source and topic."""
    indexed = table.select(["id", "prompt_id", "response", "author"]).append_column(
        "row", pa.array(range(table.num_rows), pa.int64())
    )
    prompt_columns = prompts.select(["id", "text", "source", "topic"]).rename_columns(
        ["prompt_id", "prompt", "source", "topic"]
    )
    joined = indexed.join(prompt_columns, keys="prompt_id", join_type="inner", use_threads=False)
    return joined.sort_by("row").drop_columns(["row"])


def length_figures(lengths: pa.Array | pa.ChunkedArray) -> dict[str, float | int]:
    """Minimum, median, mean and maximum of lengths in characters."""
    extremes = pc.min_max(lengths)
    return {
        "min": int(extremes["min"].as_py()),
        "median": float(pc.quantile(lengths, q=0.5, interpolation="midpoint")[0].as_py()),
        "mean": round(float(pc.mean(lengths).as_py()), 3),
        "max": int(extremes["max"].as_py()),
    }


def _counts(values: pa.ChunkedArray) -> dict[str, int]:
    counted = pc.value_counts(values)
    return dict(sorted(zip(counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True)))


def training_table(joined: pa.Table) -> pa.Table:
    """The rows a `sft` run trains on, in TRL's prompt-completion format."""
    return pa.table(
        {
            "id": joined["id"],
            "prompt_id": joined["prompt_id"],
            "prompt": joined["prompt"],
            "completion": joined["response"],
        }
    )


def latest_datasets(ctx: KindContext) -> list[Record]:
    """The project's latest preference datasets (at most OVERLAP_DATASETS): a bounded comparison."""
    stmt = (
        select(Record)
        .where(Record.project_id == ctx.project_id, Record.kind == "preference_dataset")
        .order_by(Record.id.desc())
        .limit(OVERLAP_DATASETS)
    )
    return list(ctx.session.scalars(stmt))


def preference_overlap(ctx: KindContext, joined: pa.Table) -> dict[str, Any]:
    """How many distinct demonstration prompts appear, by text, in one of the project's latest preference
    datasets: prompts the reward model or DPO will see again, whichever prompt set they came from."""
    datasets = latest_datasets(ctx)
    texts = pc.unique(joined["prompt"])
    shared = pa.array([False] * len(texts))
    for dataset in datasets:
        files = dataset.derived.get("files") or []
        if not files:
            continue
        with local_blob(ctx.store, files[0]["digest"]) as path:
            prompts = pq.read_table(path, columns=["prompt"])["prompt"]
        shared = pc.or_(shared, pc.is_in(texts, pc.unique(prompts)))
    return {
        "prompts": int(pc.sum(shared).as_py() or 0),
        "datasets": [{"name": d.name, "version": d.version} for d in datasets],
        "datasets_compared_at_most": OVERLAP_DATASETS,
    }


def derive_demonstration_figures(joined: pa.Table, prompts: pa.Table) -> dict[str, Any]:
    """Counts, lengths and coverage of the demonstrations (joined with their prompts) over the prompt set."""
    covered = pc.count_distinct(joined["prompt_id"]).as_py()
    per_prompt = joined.group_by("prompt_id").aggregate([([], "count_all")])["count_all"]
    by_source = _counts(joined["source"])
    set_sources = set(_counts(prompts["source"]))
    warnings = [
        f"no demonstration answers a prompt of source {source!r}, though the prompt set holds some"
        for source in SOURCES
        if source in set_sources and source not in by_source
    ]
    return {
        "count": joined.num_rows,
        "prompts_covered": covered,
        "prompt_set_share": covered / prompts.num_rows if prompts.num_rows else 0.0,
        "responses_per_prompt": {"max": int(pc.max(per_prompt).as_py()), "mean": joined.num_rows / covered},
        "authors": pc.count_distinct(joined["author"]).as_py(),
        "lengths": {
            "prompt": length_figures(pc.utf8_length(joined["prompt"])),
            "response": length_figures(pc.utf8_length(joined["response"])),
        },
        "coverage": {
            "source": by_source,
            "topic": _counts(pc.fill_null(joined["topic"], "unspecified")),
        },
        "warnings": warnings,
    }


class DemonstrationSetKind(KindDefinition):
    name = "demonstration_set"
    collection = "demonstration-sets"
    rank = 35
    label = "demonstration set"
    waivable = True
    # how the demonstrations were written, and what they cover
    package_fields: ClassVar[tuple[str, ...]] = (
        "spec.procedure", "derived.count", "derived.lengths", "derived.coverage",
    )  # fmt: skip
    traces_to_criteria = True
    is_model = False
    trained = False
    built_by_server = False
    version_scheme = "integer"
    write_roles: ClassVar[frozenset[str]] = frozenset({"annotator", "trainer"})
    parent_roles: ClassVar[tuple[ParentRole, ...]] = (
        ParentRole("criteria", ("criteria",)),
        ParentRole("prompt_set", ("prompt_set",)),
    )
    spec_model = DemonstrationSetSpec

    def blob_refs(self, spec: dict[str, Any]) -> list[tuple[str, str]]:
        return [("demonstrations", spec["demonstrations_blob"])] if spec.get("demonstrations_blob") else []

    def check(self, ctx: KindContext) -> None:
        [prompt_set] = ctx.parents["prompt_set"]
        table = load_demonstrations(ctx.spec, ctx.store, ctx.limits)
        prompts = prompts_of(prompt_set, ctx.store)
        validate_demonstrations(table, prompts)
        ctx.scratch["prompts"] = prompts
        ctx.scratch["joined"] = with_prompts(table, prompts)

    def derive(self, ctx: KindContext) -> dict[str, Any]:
        [criteria] = ctx.parents["criteria"]
        [prompt_set] = ctx.parents["prompt_set"]
        joined: pa.Table = ctx.scratch["joined"]
        info = put_bytes(ctx.store, to_parquet_bytes(training_table(joined)))
        ctx.derived_blobs.append((TRAINING_FILE, info.digest, info.size))
        return {
            "criteria": {"name": criteria.name, "version": criteria.version},
            "prompt_set": {"name": prompt_set.name, "version": prompt_set.version},
            **derive_demonstration_figures(joined, ctx.scratch["prompts"]),
            "in_preference_data": preference_overlap(ctx, joined),
            "format": "trl-prompt-completion",
            "files": [{"path": TRAINING_FILE, "digest": info.digest, "size": info.size}],
        }
