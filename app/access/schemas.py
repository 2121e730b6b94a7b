from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    description: str = ""


class ProjectRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    description: str
    created_at: datetime
    created_by: str


class ProjectList(BaseModel):
    items: list[ProjectRead]
    next_cursor: str | None = None


class MemberSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: str


class MemberRead(BaseModel):
    principal: str
    role: str


class MemberList(BaseModel):
    items: list[MemberRead]
    next_cursor: str | None = None


class MeRead(BaseModel):
    principal: str
    global_admin: bool
    roles: dict[str, str]
