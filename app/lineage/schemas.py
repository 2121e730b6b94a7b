"""The lineage API's response bodies, as the OpenAPI document shows them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class LineageNodeRead(BaseModel):
    """One record of a trace, with the flags every lineage view carries (`app.lineage.service`)."""

    id: str
    kind: str
    project: str
    name: str
    version: str
    digest: str
    created_at: str = Field(description="RFC 3339 UTC")
    created_by: str
    status: Literal["registered", "proposed", "approved", "rejected", "revoked"]
    stale: bool = Field(description="upstream of it (or it) is a criteria version with a newer MAJOR")
    quarantined: bool = Field(description="it, or something upstream of it, was revoked")
    flags: list[Literal["approved_but_quarantined", "approved_but_stale"]]


class LineageEdgeRead(BaseModel):
    child: str
    parent: str
    role: str = Field(description="the parent's role in the child, e.g. `criteria`")


class LineageRead(BaseModel):
    """The trace of `root` upstream (its ancestors) or downstream (its descendants)."""

    root: str
    direction: Literal["upstream", "downstream"]
    nodes: list[LineageNodeRead]
    edges: list[LineageEdgeRead]
