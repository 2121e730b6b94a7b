"""Row data of a record (prompts, annotation items) as Arrow tables, inline or from a blob.

Rows arrive inline in the spec (a JSON list) or as a blob (JSONL, or Parquet recognised by its magic
bytes). Either way they become one Arrow table with the kind's column types, so every rule and figure
downstream is computed column-wise, never row by row in Python.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from app.core.blobs import BlobStore, FilesystemBlobStore
from app.core.errors import ValidationFailed

MAX_ERRORS = 100
PARQUET_MAGIC = b"PAR1"


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


def read_blob_table(store: BlobStore, digest: str, schema: pa.Schema, *, where: list[Any]) -> pa.Table:
    """Parse a JSONL or Parquet blob into `schema` (extra columns are kept for the caller to check)."""
    with local_blob(store, digest) as source:
        try:
            if _head(source) == PARQUET_MAGIC:
                table = pq.read_table(source)
            else:
                options = pa_json.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
                table = pa_json.read_json(source, parse_options=options)
        except (pa.ArrowInvalid, pa.ArrowTypeError, OSError) as exc:
            raise ValidationFailed(
                f"{digest} is neither valid JSONL nor Parquet of the expected rows: {exc}",
                errors=[{"loc": where, "msg": str(exc)[:300]}],
            ) from None
    return conform(table, schema, where=where)


def iter_blob_tables(
    store: BlobStore, digest: str, schema: pa.Schema, *, where: list[Any], batch_rows: int = 65_536
) -> Iterator[pa.Table]:
    """A blob's rows in slices: Parquet is streamed by row batches (memory bounded by a slice); JSONL,
    whose later lines may add fields, is parsed whole and yielded as one table."""
    with local_blob(store, digest) as source:
        if _head(source) != PARQUET_MAGIC:
            yield read_blob_table(store, digest, schema, where=where)
            return
        try:
            parquet = pq.ParquetFile(source)
            for batch in parquet.iter_batches(batch_size=batch_rows):
                yield conform(pa.Table.from_batches([batch]), schema, where=where)
        except (pa.ArrowInvalid, OSError) as exc:
            raise ValidationFailed(
                f"{digest} is not readable Parquet: {exc}", errors=[{"loc": where, "msg": str(exc)[:300]}]
            ) from None


def rows_table(rows: Sequence[Any], schema: pa.Schema, *, where: list[Any]) -> pa.Table:
    if not all(isinstance(row, dict) for row in rows):
        raise ValidationFailed("every row must be a JSON object", errors=[{"loc": where, "msg": "not objects"}])
    try:
        table = pa.Table.from_pylist(list(rows))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise ValidationFailed(
            f"rows have inconsistent field types: {exc}", errors=[{"loc": where, "msg": str(exc)[:300]}]
        ) from None
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
