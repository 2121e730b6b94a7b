"""Response bodies of the checkpoint and proof endpoints (API.md, audit)."""

from __future__ import annotations

from typing import Literal

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


class AuditEventRead(BaseModel):
    """One event of the log. Its leaf data (RFC 9162 leaf hash input) is every field but `index` and
    `leaf_hash` for events with an `event_id`, and every field but `leaf_hash` for the older events
    without one; `token_id` and `event_id` are absent where the event has none."""

    index: int | None = Field(description="the event's tree index; null until the sequencer integrates it")
    at: str = Field(description="when the write committed, RFC 3339 UTC")
    actor: str
    action: str = Field(description="what was done, e.g. `record.register`")
    target: str = Field(description="what it was done to, e.g. a record id")
    project: str | None
    request_id: str
    policy_version: int | None
    payload_digest: str = Field(description="sha256 of the write's canonical payload, hex")
    token_id: str | None = Field(None, description="the API token that made the write, by id")
    event_id: str | None = Field(None, description="the event's own id, hashed into its leaf")
    leaf_hash: str | None = Field(description="the event's RFC 9162 leaf hash, hex")


class AuditPage(BaseModel):
    items: list[AuditEventRead]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last")


class AuditVerifyRead(BaseModel):
    """The server's own check of the stored log: leaf hashes, hash chain and RFC 9162 root recomputed."""

    ok: bool
    tree_size: int
    root_hash: str = Field(description="RFC 9162 root of the integrated events, hex")
    chain_hash: str = Field(description="the hash chain's head, hex")
    first_bad_index: int | None = Field(description="the first event that does not verify; null when ok")
    problem: str | None = Field(description="what is wrong with it; null when ok")


class SigningKeyRead(BaseModel):
    """The key that signs checkpoints and handoff packages."""

    key_id: str = Field(description="first 16 bytes of SHA-256 over the raw public key, hex")
    algorithm: Literal["ed25519"]
    public_key_pem: str = Field(description="the public key, SubjectPublicKeyInfo PEM")
    note_key: str = Field(
        description="the verifier key of the signed-note checkpoint (`<name>+<key hash>+<base64 key>`, as "
        "golang.org/x/mod/sumdb/note reads it)"
    )
