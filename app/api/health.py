"""Response bodies of the operational routes (/healthz, /readyz), as the OpenAPI document shows them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class HealthRead(BaseModel):
    status: Literal["ok"]


class ReadyChecks(BaseModel):
    database: str = Field(description="`ok` or `error: <exception class>`")
    blobs: str = Field(description="`ok` or `error: <exception class>`")
    broker: Literal["ok", "unreachable"] = Field(description="reported only: a down broker leaves the replica ready")


class ProcessRead(BaseModel):
    pid: int
    background: Literal["leader", "standby"] = Field(
        description="whether this process runs the deployment's background duties (app/core/election.py)"
    )


class ReadyRead(BaseModel):
    status: Literal["ready"]
    checks: ReadyChecks
    process: ProcessRead
