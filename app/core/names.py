"""The one grammar of project and record names.

A name is 1 to 63 ASCII letters, digits, `_`, `-` and `.`, starting with a letter or a digit, not
ending with `.` and without `..` (model names such as `llama-3.1-8b` are common). Names are path
segments of the API (`/v1/projects/{project}/policies/{name}/{version}`), file names in handoff
packages and labels in logs and pages, so the grammar leaves out whatever could change a path or what
a reader sees: `/`, the segments `.` and `..`, whitespace, control and bidirectional-override
characters, and look-alike letters from other scripts. `latest` is not a record name: it is the
version alias.
"""

from __future__ import annotations

import re
from typing import Any

from app.core.errors import ValidationFailed

NAME_MAX_LENGTH = 63
# for pydantic's `Field(pattern=...)` and the OpenAPI document; anchored, as JSON Schema patterns are not
# dot-separated parts, so no name starts or ends with '.' or holds '..'; the length is checked apart
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)*$"
# fullmatch: with `match`, `$` would also accept a name followed by a newline
_NAME_RE = re.compile(NAME_PATTERN.removeprefix("^").removesuffix("$"))
RESERVED_RECORD_NAMES = frozenset({"latest"})
GRAMMAR = (
    f"1 to {NAME_MAX_LENGTH} letters, digits, '_', '-' or '.', starting with a letter or digit, "
    "not ending with '.' and without '..'"
)


def is_name(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= NAME_MAX_LENGTH and _NAME_RE.fullmatch(value) is not None


def check_project_name(value: Any, *, loc: list[Any]) -> str:
    """`value` if it is a valid project name; otherwise 422 `validation_failed` located at `loc`."""
    if not is_name(value):
        raise ValidationFailed(f"a project name is {GRAMMAR}", errors=[{"loc": loc, "msg": "invalid name"}])
    return str(value)


def check_record_name(value: Any, *, loc: list[Any]) -> str:
    """`value` if it is a valid record name; otherwise 422 `validation_failed` located at `loc`."""
    if not is_name(value) or value in RESERVED_RECORD_NAMES:
        raise ValidationFailed(
            f"a record name is {GRAMMAR}, and not 'latest'", errors=[{"loc": loc, "msg": "invalid name"}]
        )
    return str(value)
