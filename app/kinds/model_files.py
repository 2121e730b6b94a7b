"""Model folders as lists of uploaded files, hashed the way OpenSSF model signing does.

Each file is a blob (`sha256`); the folder's root digest is SHA-256 over the concatenated raw file
digests, files ordered by their relative POSIX path (sigstore/model-transparency, model signing v1.0
`Payload`: "SHA256 computed over all the digests, in the order they show up in the predicate ...
canonicalize[d] to be in alphabetical order")."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.core.digests import hex_of, is_digest
from app.core.errors import ValidationFailed
from app.kinds.base import KindContext


class ModelFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, max_length=900)
    digest: str
    size: int = Field(ge=0)

    @field_validator("path")
    @classmethod
    def _relative_posix(cls, value: str) -> str:
        pure = PurePosixPath(value)
        if value.startswith("/") or "\\" in value or ".." in pure.parts or str(pure) != value or value == ".":
            raise ValueError("paths are relative POSIX paths without '..', '\\\\' or redundant separators")
        return value

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str) -> str:
        if not is_digest(value):
            raise ValueError("digest must be sha256:<64 hex>")
        return value


def check_unique_paths(files: Sequence[ModelFile] | Sequence[dict[str, Any]]) -> None:
    paths = [f.path if isinstance(f, ModelFile) else f["path"] for f in files]
    repeated = sorted({p for p in paths if paths.count(p) > 1})
    if repeated:
        raise ValueError(f"file paths repeat: {repeated}")


def root_digest(files: Sequence[dict[str, Any]]) -> str:
    """OpenSSF model-signing root digest of a folder: sha256 over the sorted files' raw digests."""
    hasher = hashlib.sha256()
    for entry in sorted(files, key=lambda f: str(f["path"])):
        hasher.update(bytes.fromhex(hex_of(str(entry["digest"]))))
    return "sha256:" + hasher.hexdigest()


def file_blob_refs(spec: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f"files/{f['path']}", f["digest"]) for f in spec.get("files") or []]


def check_sizes(ctx: KindContext) -> None:
    """The declared size of every file equals the size of the stored blob."""
    stored = {b["path"]: b["size"] for b in ctx.blobs_resolved}
    wrong = [f for f in ctx.spec.get("files") or [] if stored.get(f"files/{f['path']}") != f["size"]]
    if wrong:
        raise ValidationFailed(
            "declared file sizes differ from the uploaded blobs",
            errors=[
                {
                    "loc": ["spec", "files", f["path"], "size"],
                    "msg": f"blob has {stored.get('files/' + f['path'])} bytes",
                }
                for f in wrong
            ],
        )


def folder_figures(spec: dict[str, Any]) -> dict[str, Any]:
    files = spec.get("files") or []
    if not files:
        return {"root_digest": None, "file_count": 0, "total_size": 0}
    return {
        "root_digest": root_digest(files),
        "file_count": len(files),
        "total_size": sum(int(f["size"]) for f in files),
        "hashing": "openssf-model-signing-v1 (files, sha256)",
    }
