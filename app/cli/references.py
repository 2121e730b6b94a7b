"""Naming a record on the command line, the same way in every command.

A record is named by its id, by `NAME@VERSION` or `NAME@latest` together with its project and kind,
or by the whole path `PROJECT/KIND/NAME@VERSION`. KIND is a kind name (`preference_dataset`) or its
collection path (`preference-datasets`). `resolve` fetches the record through the REST routes
(`GET /v1/records/{id}`, `GET /v1/projects/{project}/{collection}/{name}/{version}`, where version may be
`latest`); `reference` builds the `{"id"}` / `{"name", "version"}` object a request body carries, which
the server resolves (and pins, for `latest`) itself.
"""

from __future__ import annotations

import re
from typing import Any

from app.cli.console import usage_error
from app.client import RegistryClient

RECORD_ID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
FORMS = "a record id, NAME@VERSION or NAME@latest"


def split_name(text: str) -> tuple[str, str] | None:
    """`NAME@VERSION` -> (name, version); None when `text` has no `@` (an id)."""
    if "@" not in text:
        return None
    name, _, version = text.rpartition("@")
    if not name or not version:
        raise usage_error(f"{text!r} is not NAME@VERSION", f"name a record as {FORMS}")
    return name, version


def reference(text: str) -> dict[str, str]:
    """The reference a request body carries: `{"name", "version"}` for NAME@VERSION, else `{"id"}`."""
    named = split_name(text)
    if named is not None:
        return {"name": named[0], "version": named[1]}
    if not RECORD_ID.fullmatch(text):
        raise usage_error(f"{text!r} is neither a record id nor NAME@VERSION", f"name a record as {FORMS}")
    return {"id": text}


def name_and_version(text: str, version: str | None, default: str = "latest") -> tuple[str, str]:
    """For commands that take NAME [VERSION]: `NAME@VERSION` works too."""
    named = split_name(text)
    if named is None:
        return text, version or default
    if version is not None and version != named[1]:
        raise usage_error(f"{text!r} names version {named[1]} and the command line also gives {version}")
    return named


def collection_of(kind: str) -> str:
    """The collection path of a kind named by its kind name or its collection path."""
    # The kind registry is read only here, when a kind is named: it imports the server's stack (pyarrow
    # among it), which the CLI keeps out of every other command's start-up.
    from app.kinds.registry import BY_COLLECTION, KINDS

    if kind in BY_COLLECTION:
        return kind
    normalised = kind.replace("-", "_")
    if normalised in KINDS:
        return KINDS[normalised].collection
    known = ", ".join(f"{name} ({definition.collection})" for name, definition in KINDS.items())
    raise usage_error(f"no kind or collection named {kind!r}", f"one of: {known}")


def resolve(
    client: RegistryClient, text: str, *, project: str | None = None, kind: str | None = None
) -> dict[str, Any]:
    """The record `text` names: an id, `PROJECT/KIND/NAME@VERSION`, or `NAME@VERSION` with `project`
    and `kind` given."""
    if "/" in text and "@" in text:
        parts = text.split("/")
        if len(parts) != 3 or not all(parts):
            raise usage_error(f"{text!r} is not PROJECT/KIND/NAME@VERSION")
        project, kind, text = parts
    named = split_name(text)
    if named is None:
        reference(text)  # refuses what is not an id
        return client.get_record(text)
    if project is None or kind is None:
        raise usage_error(
            f"{text!r} names a record without its project and kind",
            "write PROJECT/KIND/NAME@VERSION, or pass --project and --kind",
        )
    return client.get(project, collection_of(kind), *named)


def label(record: dict[str, Any]) -> str:
    """How a record is shown: `name@version`."""
    return f"{record['name']}@{record['version']}"
