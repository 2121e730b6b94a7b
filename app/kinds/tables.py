"""Row data of a record (prompts, annotation items) as Arrow tables, inline or from a blob.

Rows arrive inline in the spec (a JSON list) or as a blob (JSONL, or Parquet recognised by its magic
bytes). Either way they become one Arrow table with the kind's column types, so every rule and figure
downstream is computed column-wise, never row by row in Python.

A registration's rows have the same limits whatever their form (`TableLimits`): a number of rows, and
a size per row, the UTF-8 bytes of its text fields (so a row JSONL takes, Parquet takes too).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from app.core.errors import PayloadTooLarge, ValidationFailed
from app.core.settings import Settings
from app.storage.base import BlobStore
from app.storage.fs import FilesystemBlobStore

MAX_ERRORS = 100
PARQUET_MAGIC = b"PAR1"
# the most bytes JSON may spend on one byte of text: a control character written as \u00XX
JSON_ESCAPE_FACTOR = 6
_JSONL_BLOCK = pa_json.ReadOptions().block_size


@dataclass(frozen=True)
class TableLimits:
    """What the rows of one registration may hold: `max_rows` rows (RLHF_REGISTRY_MAX_BATCH_ROWS), each
    with at most `max_row_bytes` bytes of text (RLHF_REGISTRY_MAX_ROW_BYTES). Over either: 413. And the
    files a model folder may list: `max_folder_files` (RLHF_REGISTRY_MAX_FOLDER_FILES), beyond which 422
    (`check_folder`)."""

    max_rows: int
    max_row_bytes: int
    max_folder_files: int

    @classmethod
    def of(cls, settings: Settings) -> TableLimits:
        return cls(
            max_rows=settings.max_batch_rows,
            max_row_bytes=settings.max_row_bytes,
            max_folder_files=settings.max_folder_files,
        )

    def check_folder(self, raw_spec: Any) -> None:
        """Refuse a spec whose `files` (a model folder: base models and checkpoints, the only specs that
        list files) hold more than `max_folder_files` entries. Called on the raw spec, before its files
        are parsed or their blobs looked up: a registration's cost grows with its files, and one
        registration must not hold the others up long."""
        files = raw_spec.get("files") if isinstance(raw_spec, dict) else None
        if isinstance(files, list) and len(files) > self.max_folder_files:
            limit = self.max_folder_files
            raise ValidationFailed(
                f"a model folder holds at most {limit} files (RLHF_REGISTRY_MAX_FOLDER_FILES); this one lists "
                f"{len(files)}",
                errors=[
                    {"loc": ["body", "spec", "files"], "msg": f"at most {limit} files; this one lists {len(files)}"}
                ],
                extra={"limit": limit},
            )

    def check_count(self, rows: int, *, where: list[Any]) -> None:
        if rows > self.max_rows:
            raise PayloadTooLarge(
                f"a registration holds at most {self.max_rows} rows (RLHF_REGISTRY_MAX_BATCH_ROWS); this one {rows}",
                errors=[{"loc": where, "msg": f"more than {self.max_rows} rows"}],
                extra={"limit": self.max_rows},
            )

    def check_row_sizes(self, table: pa.Table, *, where: list[Any], offset: int = 0) -> None:
        """Refuse rows whose text fields hold more than `max_row_bytes` bytes, located by index."""
        texts = [column for column in table.columns if _is_text(column.type)]
        if not texts or not table.num_rows:
            return
        sizes = pc.fill_null(pc.binary_length(texts[0]), 0)
        for column in texts[1:]:
            sizes = pc.add(sizes, pc.fill_null(pc.binary_length(column), 0))
        over = pc.indices_nonzero(pc.greater(sizes, self.max_row_bytes))
        if len(over):
            msg = f"more than {self.max_row_bytes} bytes of text"
            raise PayloadTooLarge(
                f"a row holds at most {self.max_row_bytes} bytes of text (RLHF_REGISTRY_MAX_ROW_BYTES); "
                f"{len(over)} row(s) hold more",
                errors=[{"loc": [*where, offset + i], "msg": msg} for i in over[:MAX_ERRORS].to_pylist()],
                extra={"limit": self.max_row_bytes},
            )


@contextmanager
def local_blob(store: BlobStore, digest: str) -> Iterator[Path]:
    """A local file for a blob: the file itself on the filesystem store, a temporary copy otherwise
    (on disk, not in memory: batches of a million items are hundreds of megabytes)."""
    if isinstance(store, FilesystemBlobStore):
        yield store.path_of(digest)
        return
    with tempfile.TemporaryDirectory(prefix="blob-") as tmp:
        path = Path(tmp) / "blob"
        with path.open("wb") as fh:
            for chunk in store.iter_bytes(digest):
                fh.write(chunk)
        yield path


def _head(source: Path) -> bytes:
    with source.open("rb") as fh:
        return fh.read(4)


def _is_text(kind: pa.DataType) -> bool:
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))


def read_blob_table(
    store: BlobStore, digest: str, schema: pa.Schema, *, where: list[Any], limits: TableLimits | None = None
) -> pa.Table:
    """Parse a JSONL or Parquet blob into `schema` (extra columns are kept for the caller to check);
    with `limits` (a registration), refuse rows beyond them."""
    with local_blob(store, digest) as source:
        try:
            if _head(source) == PARQUET_MAGIC:
                if limits is not None:
                    limits.check_count(pq.ParquetFile(source).metadata.num_rows, where=where)
                table = pq.read_table(source)
                table.validate(full=True)  # Parquet's strings are not checked to be UTF-8 when read
            else:
                table = _read_jsonl(source, schema, where=where, limits=limits)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
            raise ValidationFailed(
                f"{digest} is neither valid JSONL nor Parquet of the expected rows: {exc}",
                errors=[{"loc": where, "msg": str(exc)[:300]}],
            ) from None
    if limits is not None:
        limits.check_count(table.num_rows, where=where)
        limits.check_row_sizes(table, where=where)
    return conform(table, schema, where=where)


def _read_jsonl(source: Path, schema: pa.Schema, *, where: list[Any], limits: TableLimits | None) -> pa.Table:
    """Arrow reads JSONL in blocks that must each hold whole lines. A failure on a line longer than a
    block is read again with blocks of that line's size, unless the line is longer than any row within
    `limits` could be written in JSON: then 413, the same as for that row in Parquet."""
    options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
    try:
        return pa_json.read_json(source, parse_options=options)
    except pa.ArrowInvalid:
        index, longest = _longest_line(source)
        if longest < _JSONL_BLOCK:
            raise  # not a matter of size
    if limits is not None and longest > JSON_ESCAPE_FACTOR * limits.max_row_bytes + _JSONL_BLOCK:
        raise PayloadTooLarge(
            f"line {index} is longer than a row of {limits.max_row_bytes} bytes of text can be "
            "(RLHF_REGISTRY_MAX_ROW_BYTES)",
            errors=[{"loc": [*where, index], "msg": f"more than {limits.max_row_bytes} bytes of text"}],
            extra={"limit": limits.max_row_bytes},
        )
    read_options = pa_json.ReadOptions(block_size=longest + 1)
    return pa_json.read_json(source, read_options=read_options, parse_options=options)


def _longest_line(source: Path) -> tuple[int, int]:
    """(index, length in bytes) of the file's longest line."""
    best_index = best = index = current = 0
    with source.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            lines = chunk.split(b"\n")
            current += len(lines[0])
            for line in lines[1:]:
                if current > best:
                    best_index, best = index, current
                index += 1
                current = len(line)
    if current > best:
        best_index, best = index, current
    return best_index, best


def iter_blob_tables(
    store: BlobStore,
    digest: str,
    schema: pa.Schema,
    *,
    where: list[Any],
    batch_rows: int = 65_536,
    limits: TableLimits | None = None,
) -> Iterator[pa.Table]:
    """A blob's rows in slices: Parquet is streamed by row batches (memory bounded by a slice); JSONL,
    whose later lines may add fields, is parsed whole and yielded as one table."""
    with local_blob(store, digest) as source:
        if _head(source) != PARQUET_MAGIC:
            yield read_blob_table(store, digest, schema, where=where, limits=limits)
            return
        try:
            parquet = pq.ParquetFile(source)
            if limits is not None:
                limits.check_count(parquet.metadata.num_rows, where=where)
            offset = 0
            for batch in parquet.iter_batches(batch_size=batch_rows):
                table = pa.Table.from_batches([batch])
                table.validate(full=True)
                if limits is not None:
                    limits.check_row_sizes(table, where=where, offset=offset)
                offset += table.num_rows
                yield conform(table, schema, where=where)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ValidationFailed(
                f"{digest} is not readable Parquet: {exc}", errors=[{"loc": where, "msg": str(exc)[:300]}]
            ) from None


def rows_table(
    rows: Sequence[Any], schema: pa.Schema, *, where: list[Any], limits: TableLimits | None = None
) -> pa.Table:
    if limits is not None:
        limits.check_count(len(rows), where=where)
    if not all(isinstance(row, dict) for row in rows):
        raise ValidationFailed("every row must be a JSON object", errors=[{"loc": where, "msg": "not objects"}])
    try:
        table = pa.Table.from_pylist(list(rows))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ValidationFailed(
            f"rows have inconsistent field types: {exc}", errors=[{"loc": where, "msg": str(exc)[:300]}]
        ) from None
    if limits is not None:
        limits.check_row_sizes(table, where=where)
    return conform(table, schema, where=where)


def conform(table: pa.Table, schema: pa.Schema, *, where: list[Any]) -> pa.Table:
    """Cast known columns to their types, add missing nullable ones as nulls, keep the rest as is."""
    columns: dict[str, pa.Array | pa.ChunkedArray] = {}
    for field in schema:
        if field.name not in table.column_names:
            if not field.nullable:
                raise ValidationFailed(
                    f"every row needs the field {field.name!r}",
                    errors=[{"loc": [*where, field.name], "msg": "missing"}],
                )
            columns[field.name] = pa.nulls(table.num_rows, field.type)
            continue
        column = table.column(field.name)
        try:
            columns[field.name] = column if column.type == field.type else pc.cast(column, field.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise ValidationFailed(
                f"field {field.name!r} must be {field.type}: {exc}",
                errors=[{"loc": [*where, field.name], "msg": f"not {field.type}"}],
            ) from None
    for name in table.column_names:
        if name not in columns:
            columns[name] = table.column(name)
    return pa.table(columns)


class RowErrors:
    """Collects row-located validation errors column-wise; keeps the first MAX_ERRORS, counts all."""

    def __init__(self, where: list[Any]) -> None:
        self.where = where
        self.shown: list[dict[str, Any]] = []
        self.count = 0

    def add_mask(self, mask: pa.Array | pa.ChunkedArray, field: str, msg: str) -> None:
        indices = pc.indices_nonzero(pc.fill_null(mask, False))
        self.count += len(indices)
        room = MAX_ERRORS - len(self.shown)
        if room > 0:
            self.shown += [{"loc": [*self.where, i, field], "msg": msg} for i in indices[:room].to_pylist()]

    def add(self, loc: list[Any], msg: str) -> None:
        self.count += 1
        if len(self.shown) < MAX_ERRORS:
            self.shown.append({"loc": loc, "msg": msg})

    def raise_if_any(self, detail: str) -> None:
        if self.count:
            more = f" (first {MAX_ERRORS} located)" if self.count > MAX_ERRORS else ""
            raise ValidationFailed(
                f"{detail}: {self.count} problem(s){more}",
                errors=self.shown,
                extra={"error_count": self.count},
            )
