"""The request body of a handoff package build, as the OpenAPI document shows it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from app.kinds.create import RecordRef


class PackageBuild(BaseModel):
    """Which approved deployment to package, and the package's name (default `<deployment>-v<version>`)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"deployment": {"name": "prod", "version": "1"}}]},
    )

    deployment: RecordRef = Field(description='the deployment: {"id"} or {"name", "version"}')
    name: str | None = Field(None, description="the package's name")
