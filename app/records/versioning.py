"""Version strings and their sort keys: string order of the key is version order, so `latest` is one
indexed ORDER BY ... DESC LIMIT 1."""

from __future__ import annotations

from app.core.errors import ValidationFailed
from app.kinds.base import VersionScheme
from app.kinds.semver import Semver

MAX_INTEGER_VERSION = 10**12 - 1


def parse_integer(version: str | int) -> int:
    text = str(version)
    if not text.isdigit() or (len(text) > 1 and text[0] == "0") or int(text) < 1:
        raise ValidationFailed(
            f"version {version!r} must be a positive integer for this kind",
            errors=[{"loc": ["body", "version"], "msg": "not a positive integer"}],
        )
    if int(text) > MAX_INTEGER_VERSION:
        raise ValidationFailed(f"version {version!r} is too large")
    return int(text)


def normalise(scheme: VersionScheme, version: str | int) -> tuple[str, str]:
    """(version text, sort key) for a declared version."""
    if scheme == "integer":
        number = parse_integer(version)
        return str(number), f"{number:012d}"
    parsed = Semver.parse(str(version))
    return str(parsed), parsed.sort_key()
