"""DSSE envelopes (Dead Simple Signing Envelope, secure-systems-lab/dsse, protocol v1) around in-toto
Statements (in-toto attestation framework, Statement v1), signed with ed25519.

The signature covers the pre-authentication encoding, never the JSON of the envelope:
PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, with LEN the decimal byte count.
Kept free of the database and the web layer: the offline verifier uses it too."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from app.core.digests import canonical_json

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
SLSA_PROVENANCE_V1 = "https://slsa.dev/provenance/v1"


class EnvelopeError(ValueError):
    """An envelope that is not well formed, or whose signature does not verify."""


def pae(payload_type: str, payload: bytes) -> bytes:
    """The DSSE v1 pre-authentication encoding of `payload` (what the signature covers)."""
    kind = payload_type.encode()
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def statement(subjects: list[dict[str, Any]], predicate_type: str, predicate: dict[str, Any]) -> dict[str, Any]:
    """An in-toto Statement v1; subjects are sorted by name so that the bytes are reproducible."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": sorted(subjects, key=lambda s: str(s["name"])),
        "predicateType": predicate_type,
        "predicate": predicate,
    }


def sign_statement(statement_: dict[str, Any], *, key_id: str, sign: Any) -> bytes:
    """The DSSE envelope of `statement_` as JSON bytes; `sign(bytes) -> bytes` is an ed25519 signer
    (ed25519 signatures are deterministic, so the same statement always gives the same envelope)."""
    payload = canonical_json(statement_)
    signature: bytes = sign(pae(PAYLOAD_TYPE, payload))
    envelope = {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode(),
        "signatures": [{"keyid": key_id, "sig": base64.b64encode(signature).decode()}],
    }
    return json.dumps(envelope, indent=2, sort_keys=True).encode() + b"\n"


@dataclass(frozen=True)
class OpenedEnvelope:
    payload: bytes
    statement: dict[str, Any]
    signature_ok: bool
    keyids: list[str]


def open_envelope(data: bytes, public: Ed25519PublicKey) -> OpenedEnvelope:
    """Parse an envelope and check its signature with `public`; raise `EnvelopeError` if it is not
    well formed. The statement is returned even when the signature fails, so that a verifier can go on
    and name every other problem too."""
    try:
        envelope = json.loads(data)
        payload_type = envelope["payloadType"]
        payload = base64.b64decode(envelope["payload"], validate=True)
        signatures = [
            (str(s.get("keyid", "")), base64.b64decode(s["sig"], validate=True)) for s in envelope["signatures"]
        ]
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise EnvelopeError(f"not a DSSE envelope: {exc}") from None
    if payload_type != PAYLOAD_TYPE:
        raise EnvelopeError(f"payloadType is {payload_type!r}, not {PAYLOAD_TYPE}")
    try:
        parsed = json.loads(payload)
    except ValueError as exc:
        raise EnvelopeError(f"the payload is not JSON: {exc}") from None
    if not isinstance(parsed, dict) or parsed.get("_type") != STATEMENT_TYPE:
        raise EnvelopeError(f"the payload is not an in-toto Statement v1 ({STATEMENT_TYPE})")
    message = pae(payload_type, payload)
    ok = False
    for _, signature in signatures:
        try:
            public.verify(signature, message)
        except InvalidSignature:
            continue
        ok = True
        break
    return OpenedEnvelope(payload, parsed, ok, [keyid for keyid, _ in signatures])
