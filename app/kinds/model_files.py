"""Model folders as lists of uploaded files, hashed the way OpenSSF model signing does.

Each file is a blob (`sha256`); the folder's root digest is SHA-256 over the concatenated raw file
digests, files ordered by their relative POSIX path (sigstore/model-transparency, model signing v1.0
`Payload`: "SHA256 computed over all the digests, in the order they show up in the predicate ...
canonicalize[d] to be in alphabetical order")."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.core.digests import hex_of, is_digest
from app.core.errors import ValidationFailed
from app.kinds.base import KindContext

# NUL and the other control characters (C0, DEL, C1) and lone surrogates: no file system or archive
# format stores them faithfully, and a terminal or a log shows them as something else
UNSAFE_CHARACTER = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# `C:` is a drive on Windows, where `C:weights.bin` escapes the folder it is written into
DRIVE_LETTER = re.compile(r"^[A-Za-z]:")


class ModelFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str = Field(min_length=1, max_length=900)
    digest: str
    size: int = Field(ge=0)

    @field_validator("path")
    @classmethod
    def _relative_posix(cls, value: str) -> str:
        """A path every client can write under the folder it downloads into, and only there."""
        if UNSAFE_CHARACTER.search(value):
            raise ValueError(f"path {value!r} holds a control character")
        if DRIVE_LETTER.match(value):
            raise ValueError(f"path {value!r} starts with a drive letter")
        if value.startswith("~"):
            raise ValueError(f"path {value!r} starts with '~', a home folder to a shell")
        pure = PurePosixPath(value)
        if value.startswith("/") or "\\" in value or ".." in pure.parts or str(pure) != value or value == ".":
            raise ValueError(
                f"path {value!r} is not a relative POSIX path without '..', '\\\\' or redundant separators"
            )
        return value

    @field_validator("digest")
    @classmethod
    def _digest(cls, value: str) -> str:
        if not is_digest(value):
            raise ValueError("digest must be sha256:<64 hex>")
        return value


def check_unique_paths(files: Sequence[ModelFile] | Sequence[dict[str, Any]]) -> None:
    """Refuse a path listed twice; one pass over the paths, however many there are."""
    paths = Counter(f.path if isinstance(f, ModelFile) else f["path"] for f in files)
    repeated = sorted(path for path, times in paths.items() if times > 1)
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
