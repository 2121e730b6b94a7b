"""Semantic versions for kinds that are versioned `MAJOR.MINOR.PATCH` (criteria, prompt sets).

Only the strict core of SemVer 2.0.0 (https://semver.org, section 2) is accepted: no pre-release or build
suffixes, no leading zeros, no `v` prefix. A registry compares versions to enforce breaking-change rules,
so every accepted string must have exactly one meaning and one spelling: `1.02.0` and `1.2.0` being two
names for the same version would let one record shadow another.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from app.core.errors import ValidationFailed

BumpLevel = Literal["major", "minor", "patch"]

# The sort key pads each component to this many digits; a larger component would break the promise that
# string order equals version order, so such versions are refused outright.
_KEY_WIDTH = 6
MAX_COMPONENT = 10**_KEY_WIDTH - 1

# [0-9] rather than \d: in Python \d also matches non-ASCII digits (Arabic-Indic, Devanagari, ...).
_SEMVER_RE = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")


@dataclass(frozen=True, order=True)
class Semver:
    """A `MAJOR.MINOR.PATCH` version; field order makes the generated comparisons semver order."""

    major: int
    minor: int
    patch: int

    def __post_init__(self) -> None:
        # Checked on every construction (not only in `parse`) so that `bump` and direct construction
        # can never produce a version that `sort_key` could not represent.
        for name in ("major", "minor", "patch"):
            value = getattr(self, name)
            if type(value) is not int:
                raise ValidationFailed(f"version {name} must be an integer, got {value!r}")
            if value < 0:
                raise ValidationFailed(f"version {name} must not be negative, got {value}")
            if value > MAX_COMPONENT:
                raise ValidationFailed(
                    f"version {name} {value} is too large; each component must be at most {MAX_COMPONENT}"
                )

    @classmethod
    def parse(cls, text: str) -> Semver:
        """Parse `MAJOR.MINOR.PATCH`; raise `ValidationFailed` on anything else, saying what was wrong."""
        if not isinstance(text, str):
            raise ValidationFailed(f"a version must be a string like '1.0.0', got {type(text).__name__}")
        match = _SEMVER_RE.fullmatch(text)
        if match is None:
            raise ValidationFailed(
                f"{text!r} is not a version: use MAJOR.MINOR.PATCH with non-negative integers "
                "and no leading zeros, e.g. '1.4.2'"
            )
        major, minor, patch = (int(part) for part in match.groups())
        return cls(major, minor, patch)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    def sort_key(self) -> str:
        """Zero-padded form (`000001.000004.000002`) whose string order is semver order.

        Stored next to the version text so that the database can order and range-query versions (for
        `latest`) with a plain string index, on SQLite and PostgreSQL alike.
        """
        # __post_init__ already bounds each component; re-checked here because the key's correctness
        # depends on it and a stale invariant would silently corrupt ordering.
        if max(self.major, self.minor, self.patch) > MAX_COMPONENT:
            raise ValidationFailed(f"version {self} has a component above {MAX_COMPONENT}")
        return ".".join(f"{part:0{_KEY_WIDTH}d}" for part in (self.major, self.minor, self.patch))

    def bump(self, level: BumpLevel) -> Semver:
        """The smallest version that is a `level` step after this one (e.g. major: 1.4.2 -> 2.0.0)."""
        if level == "major":
            return Semver(self.major + 1, 0, 0)
        if level == "minor":
            return Semver(self.major, self.minor + 1, 0)
        if level == "patch":
            return Semver(self.major, self.minor, self.patch + 1)
        raise ValueError(f"unknown bump level {level!r}")
