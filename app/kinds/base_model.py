"""Base models: an uploaded model folder, an external reference pinned to an exact revision, or both."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from app.kinds.base import KindContext, KindDefinition
from app.kinds.model_files import ModelFile, check_sizes, check_unique_paths, file_blob_refs, folder_figures

# A hub revision must be an exact commit: a branch or tag name can move after registration.
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")


class ExternalModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hub_id: str = Field(min_length=1)
    revision: str

    @model_validator(mode="after")
    def _pinned(self) -> ExternalModel:
        if not COMMIT_RE.match(self.revision):
            raise ValueError(
                "revision must be an exact 40-hex commit id, not a branch or tag that can move after registration"
            )
        return self


class BaseModelSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")

    files: list[ModelFile] | None = None
    external: ExternalModel | None = None
    architecture: str | None = None
    license: str | None = None
    metadata: dict[str, Any] = {}

    @model_validator(mode="after")
    def _source(self) -> BaseModelSpec:
        if not self.files and self.external is None:
            raise ValueError("give files (an uploaded folder), external (hub_id + exact revision), or both")
        if self.files:
            check_unique_paths(self.files)
        return self


class BaseModelKind(KindDefinition):
    name = "base_model"
    collection = "base-models"
    rank = 70
    label = "base model"
    waivable = True
    package_fields: ClassVar[tuple[str, ...]] = ()
    traces_to_criteria = False
    is_model = True
    trained = False
    built_by_server = False
    version_scheme = "integer"
    write_roles: ClassVar[frozenset[str]] = frozenset({"trainer"})
    spec_model = BaseModelSpec

    def blob_refs(self, spec: dict[str, Any]) -> list[tuple[str, str]]:
        return file_blob_refs(spec)

    def check(self, ctx: KindContext) -> None:
        check_sizes(ctx)

    def derive(self, ctx: KindContext) -> dict[str, Any]:
        return {**folder_figures(ctx.spec), "external": ctx.spec.get("external")}
