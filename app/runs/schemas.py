"""The runs API's request and response bodies, as the OpenAPI document shows them."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, SkipValidation

_SKIP: Any = SkipValidation  # a marker class (generic only to type checkers)


class ExternalBuilder(BaseModel):
    """Who trains an external run: named in its SLSA provenance as the builder."""

    model_config = ConfigDict(extra="allow")
    id: str = Field(description="URI of the job or workflow that trains the run")


class RunCreate(BaseModel):
    """A run to start. Described here; checked by `app.runs.service.validate_request`, with its located
    errors, so the values pass through as sent (and the idempotency digest is of the body as sent)."""

    model_config = ConfigDict(extra="allow")

    # required, but refused by the service (after the caller's role is checked), not here
    kind: Annotated[str | None, _SKIP(), Field(description="required: the job to run (sft, reward, dpo, ...)")] = None
    output_name: Annotated[str | None, _SKIP(), Field(description="required: the record the run registers")] = None
    inputs: Annotated[
        dict[str, Any] | None,
        _SKIP(),
        Field(description="references the kind takes (a campaign's `policy_run` is a run id)"),
    ] = None
    builder: Annotated[
        ExternalBuilder | None,
        _SKIP(),
        Field(description='kind external: the job that trains it, {"id": "<URI>"}, named in its provenance'),
    ] = None
    params: Annotated[
        dict[str, Any] | None,
        _SKIP(),
        Field(description="the kind's parameters; `devices`: how many processes (one a GPU) train it"),
    ] = None

    def as_sent(self) -> dict[str, Any]:
        return {**{key: getattr(self, key) for key in self.model_fields_set}, **(self.model_extra or {})}


class RunRead(BaseModel):
    id: str
    kind: str
    status: str
    inputs: dict[str, Any]
    params: dict[str, Any]
    output_name: str
    outputs: list[str]
    error: dict[str, Any] | None
    created_by: str
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    attempt: int
    max_attempts: int
    config: dict[str, Any] | None
    token: str | None = Field(None, description="an external run's token: only in the answer that creates it")
    token_expires_at: str | None = Field(None, description="when that token expires, unless the run ends first")


class RunPage(BaseModel):
    items: list[RunRead]
    next_cursor: str | None


class RunEventRead(BaseModel):
    seq: int
    at: str
    type: str
    data: dict[str, Any]


class RunEventPage(BaseModel):
    items: list[RunEventRead]
    next_cursor: str | None
