"""DSSE v1 pre-authentication encoding and envelopes (secure-systems-lab/dsse, protocol.md)."""

from __future__ import annotations

import json

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from app.core.signing import key_id_of
from app.packages.dsse import PAYLOAD_TYPE, open_envelope, pae, sign_statement, statement


def test_pae_matches_the_specification_example() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_envelope_round_trip_and_determinism() -> None:
    key = Ed25519PrivateKey.generate()
    body = statement([{"name": "b", "digest": {"sha256": "00"}}, {"name": "a", "digest": {"sha256": "11"}}], "t", {})
    assert [s["name"] for s in body["subject"]] == ["a", "b"]
    first = sign_statement(body, key_id=key_id_of(key.public_key()), sign=key.sign)
    assert first == sign_statement(body, key_id=key_id_of(key.public_key()), sign=key.sign)
    assert json.loads(first)["payloadType"] == PAYLOAD_TYPE
    opened = open_envelope(first, key.public_key())
    assert opened.signature_ok and opened.statement == body
    assert not open_envelope(first, Ed25519PrivateKey.generate().public_key()).signature_ok
