"""Canonical JSON (RFC 8785, JCS), sha256 digests in the `sha256:<hex>` form used across the API, and
the order and root digest of a model folder's files as OpenSSF model signing computes them."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from json import encoder
from typing import Any

import rfc8785

DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")


# Integers are exact in an IEEE double below 2**53; RFC 8785 (through ECMAScript) refuses larger ones.
_SAFE_INTEGER = 2**53
# Python's repr of a float uses no exponent from 1e-4 up to 1e16 and then gives the same shortest
# round-trip digits as ECMAScript's Number.prototype.toString, which RFC 8785 section 3.2.2.3 requires.
_PLAIN_FLOAT_MIN = 1e-4


class _NotPlain(Exception):
    pass


def canonical_json(value: Any) -> bytes:
    """Serialise `value` per RFC 8785 (sorted keys, no whitespace, ECMAScript number form).

    Every registration digests its content, its record and its audit event, so the common case takes
    a fast path: the C `json` encoder gives the RFC 8785 bytes for JSON whose keys lie in the Basic
    Multilingual Plane (where UTF-16 order is code point order), whose integers are safe and whose
    floats are integral (written as integers, as ECMAScript does) or between 1e-4 and 1e16 (where
    Python's repr and ECMAScript agree). Anything else (and any error) goes to the `rfc8785` package.
    Tests compare both on generated values.

    What it cannot write (NaN, the infinities, integers beyond 2**53, lone surrogates) it refuses with
    the package's `ValueError`s: request bodies never bring it any, `app.core.json_limits` refuses them
    with a 422 before anything is digested."""
    try:
        return _dumps(_plain(value)).encode()
    except (_NotPlain, UnicodeEncodeError):
        return bytes(rfc8785.dumps(value))


def _refuse(value: Any) -> Any:
    raise _NotPlain


def _dumps_python(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)


# `json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False)` with the
# C encoder built once rather than on every call (four digests per registration); the same bytes
_c_make_encoder: Any = getattr(encoder, "c_make_encoder", None)
_c_encode_string: Any = getattr(encoder, "c_encode_basestring", None)
_C_ENCODER = (
    _c_make_encoder(None, _refuse, _c_encode_string, None, ":", ",", True, False, False)
    if _c_make_encoder is not None and _c_encode_string is not None
    else None
)


def _dumps(value: Any) -> str:
    return "".join(_C_ENCODER(value, 0)) if _C_ENCODER is not None else _dumps_python(value)


def _plain(value: Any) -> Any:
    """`value` with integral floats as ints; raises _NotPlain for anything the fast path cannot write."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is dict:
        out = {}
        for key, item in value.items():
            if type(key) is not str or not (key.isascii() or max(key) < "\U00010000"):
                raise _NotPlain
            out[key] = _plain(item)
        return out
    if kind is list or kind is tuple:
        return [_plain(item) for item in value]
    if kind is int:
        if -_SAFE_INTEGER < value < _SAFE_INTEGER:
            return value
        raise _NotPlain
    if kind is float:
        if value.is_integer():  # false for NaN and the infinities
            if -_SAFE_INTEGER < value < _SAFE_INTEGER:
                return int(value)
        elif _PLAIN_FLOAT_MIN <= abs(value) < 1e16:  # false for NaN
            return value
    raise _NotPlain


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def digest_of(value: Any) -> str:
    """`sha256:<hex>` of the canonical JSON form of `value`."""
    return "sha256:" + sha256_hex(canonical_json(value))


def is_digest(value: str) -> bool:
    return DIGEST_RE.match(value) is not None


def hex_of(digest: str) -> str:
    return digest.removeprefix("sha256:")


# What OpenSSF model signing (PyPI `model-signing`, `model_signing.hashing.Config`) leaves out of a
# folder's manifest by default (`ignore_git_paths=True`): these names at the top of the folder, and
# everything under them when they are folders. The same names deeper in the folder are hashed.
MODEL_SIGNING_IGNORED = (".git", ".gitattributes", ".github", ".gitignore")


def model_signing_order(path: str) -> tuple[str, ...]:
    """Sort key of a relative POSIX path in a model-signing manifest.

    The library sorts its manifest by `pathlib.PurePosixPath`, which compares the path's components, not
    its characters: `tokenizer/vocab.json` comes before `tokenizer.json` (the component `tokenizer` is a
    prefix of `tokenizer.json`), where a plain string sort puts `.` (0x2E) before `/` (0x2F)."""
    return tuple(path.split("/"))


def model_signing_ignores(path: str) -> bool:
    """Whether model signing's default configuration leaves the relative POSIX `path` out."""
    return path.split("/", 1)[0] in MODEL_SIGNING_IGNORED


def model_signing_root_digest(files: Iterable[tuple[str, str]]) -> str:
    """The root digest model signing puts in its in-toto subject (`model_signing._signing.signing.Payload`,
    predicate `https://model_signing/signature/v1.0`): sha256 over the raw sha256 digests of the files,
    `(relative POSIX path, "sha256:<hex>")`, in manifest order, the ignored paths left out."""
    hasher = hashlib.sha256()
    for _, digest in sorted(
        ((path, digest) for path, digest in files if not model_signing_ignores(path)),
        key=lambda entry: model_signing_order(entry[0]),
    ):
        hasher.update(bytes.fromhex(hex_of(digest)))
    return "sha256:" + hasher.hexdigest()
