"""Model folders as lists of uploaded files, hashed the way OpenSSF model signing does.

Each file is a blob (`sha256`); the folder's root digest is the one model signing (PyPI `model-signing`,
predicate `https://model_signing/signature/v1.0`, files serialization, sha256) puts in its subject:
SHA-256 over the concatenated raw file digests in the manifest's order (path components, as
`pathlib.PurePosixPath` sorts), without the git files it ignores by default (`app.core.digests`).

`derived.hashing` names the rule a record was registered under. Records registered before the registry
followed the library's order and ignored paths carry `LEGACY_HASHING`: their root digest sorted whole path
strings and covered every file. Stored records are never rewritten; `recompute_root_digest` applies the
rule a record names."""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.core.digests import hex_of, is_digest, model_signing_ignores, model_signing_root_digest
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


HASHING = "openssf-model-signing-v1.0 (files, sha256, git paths ignored)"
LEGACY_HASHING = "openssf-model-signing-v1 (files, sha256)"


def root_digest(files: Sequence[dict[str, Any]]) -> str:
    """OpenSSF model-signing root digest of a folder (`HASHING`)."""
    return model_signing_root_digest((str(f["path"]), str(f["digest"])) for f in files)


def legacy_root_digest(files: Sequence[dict[str, Any]]) -> str:
    """The root digest of `LEGACY_HASHING`: sha256 over every file's raw digest, whole paths sorted as
    strings."""
    hasher = hashlib.sha256()
    for entry in sorted(files, key=lambda f: str(f["path"])):
        hasher.update(bytes.fromhex(hex_of(str(entry["digest"]))))
    return "sha256:" + hasher.hexdigest()


ROOT_DIGEST_RULES = {HASHING: root_digest, LEGACY_HASHING: legacy_root_digest}


def recompute_root_digest(spec: dict[str, Any], derived: dict[str, Any]) -> str | None:
    """The root digest of a stored record's files by the rule its `derived.hashing` names (None for a
    record without files); raises KeyError for a rule this registry does not know."""
    files = spec.get("files") or []
    if not files:
        return None
    return ROOT_DIGEST_RULES[str(derived["hashing"])](files)


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
    figures: dict[str, Any] = {
        "root_digest": root_digest(files),
        "file_count": len(files),
        "total_size": sum(int(f["size"]) for f in files),
        "hashing": HASHING,
    }
    # listed, so that a reader sees which files the root digest does not cover (the record digest does)
    ignored = sorted(str(f["path"]) for f in files if model_signing_ignores(str(f["path"])))
    if ignored:
        figures["root_digest_ignores"] = ignored
    return figures
