"""The service's ed25519 signing key: it signs audit checkpoints and handoff packages."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from app.core.settings import Settings


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        return key_id_of(self.public)

    def public_key_pem(self) -> str:
        return self.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ).decode()

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


def key_id_of(public: Ed25519PublicKey) -> str:
    """The key id the registry gives a key: the first 32 hex digits of sha256 over its raw bytes."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:32]


def key_fingerprint(public: Ed25519PublicKey) -> str:
    """sha256 of the key's DER SubjectPublicKeyInfo (the bytes inside the PEM), as `sha256:<hex>`:
    `openssl pkey -pubin -in key.pem -outform DER | sha256sum` computes the same."""
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def load_public_key(pem: str | bytes) -> Ed25519PublicKey:
    """An ed25519 public key from PEM (SubjectPublicKeyInfo), as `GET /v1/signing-key` serves it;
    ValueError for anything else."""
    try:
        key = serialization.load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    except UnsupportedAlgorithm as exc:
        raise ValueError(f"unsupported key: {exc}") from None
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("the public key is not an ed25519 key")
    return key


def _load_pem(data: bytes) -> SigningKey:
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the signing key must be an ed25519 private key in PEM (PKCS#8)")
    return SigningKey(key)


def load_signing_key(settings: Settings) -> SigningKey:
    if settings.signing_key is not None:
        return _load_pem(settings.signing_key.get_secret_value().encode())
    path = settings.signing_key_file
    assert path is not None  # filled by Settings
    if path.exists():
        return _load_pem(path.read_bytes())
    return _generate(path)


def _generate(path: Path) -> SigningKey:
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    return SigningKey(key)
