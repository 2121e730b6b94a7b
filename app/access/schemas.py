from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from app.access.service import PRINCIPAL_NAME_RE
from app.core.names import GRAMMAR, NAME_MAX_LENGTH, NAME_PATTERN


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME_PATTERN, max_length=NAME_MAX_LENGTH, description=f"the project's name: {GRAMMAR}")
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


TokenState = Literal["active", "expired", "revoked"]
LABEL_PATTERN = r"^[^\x00-\x1f\x7f]*$"  # printable: a label is shown in tables and logs


class TokenCreate(BaseModel):
    """A new token for the caller, or (a global admin only) for the principal named. With neither
    `expires_in_days` nor `expires_at` the token never expires, unless the server sets
    RLHF_REGISTRY_TOKEN_MAX_DAYS: then it expires after that many days, and no later expiry is accepted."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(
        default="", max_length=200, pattern=LABEL_PATTERN, description="what the token is for; shown in listings"
    )
    principal: str | None = Field(
        default=None,
        pattern=PRINCIPAL_NAME_RE.pattern,
        description="whose token; a global admin may name another principal",
    )
    expires_in_days: int | None = Field(default=None, ge=1, le=36500, description="expire this many days from now")
    expires_at: AwareDatetime | None = Field(default=None, description="expire at this instant (timezone required)")

    @model_validator(mode="after")
    def _one_expiry(self) -> TokenCreate:
        if self.expires_in_days is not None and self.expires_at is not None:
            raise ValueError("give expires_in_days or expires_at, not both")
        if self.expires_at is not None:
            try:
                self.expires_at = self.expires_at.astimezone(UTC)
            except OverflowError:  # year 1 or 9999 with an offset
                raise ValueError("expires_at is out of range") from None
        return self


class TokenRead(BaseModel):
    """A token as listings show it: never its secret nor its hash."""

    id: str
    principal: str
    label: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    state: TokenState


class TokenCreated(TokenRead):
    token: str = Field(description="the secret bearer token; shown this once, never stored in clear")


class TokenList(BaseModel):
    items: list[TokenRead]
