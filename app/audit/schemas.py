"""Response bodies of the checkpoint and proof endpoints (API.md, audit)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CheckpointRead(BaseModel):
    """A signed checkpoint: `signature` is base64 ed25519 over the UTF-8 text
    `"<origin>\\n<tree_size>\\n<base64 root_hash>\\n"` (the C2SP checkpoint body)."""

    origin: str = Field(description="names this log; the RLHF_REGISTRY_AUDIT_ORIGIN setting")
    tree_size: int = Field(description="the number of events the checkpoint covers")
    root_hash: str = Field(description="RFC 9162 Merkle tree hash of those events, hex")
    key_id: str = Field(description="the signing key, as GET /v1/signing-key names it")
    signature: str = Field(description="base64 ed25519 signature over the checkpoint body")


class InclusionProofRead(BaseModel):
    """RFC 9162 section 2.1.3 inclusion proof of one event."""

    leaf_index: int
    tree_size: int
    leaf_hash: str = Field(description="the event's RFC 9162 leaf hash as stored, hex")
    hashes: list[str] = Field(description="the audit path, leaf to root, hex")


class ConsistencyProofRead(BaseModel):
    """RFC 9162 section 2.1.4 consistency proof between two tree sizes."""

    model_config = ConfigDict(populate_by_name=True)

    from_: int = Field(alias="from")
    to: int
    hashes: list[str] = Field(description="the consistency path, hex")
