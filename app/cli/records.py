"""Records of any kind: register a JSON body (`push`), print one (`get`), list a kind (`records list`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from app.cli.console import out, print_json, read_json_object
from app.cli.references import FORMS, collection_of, label, name_and_version, resolve
from app.client import RegistryClient

records_app = typer.Typer(help="Records of any kind.", no_args_is_help=True)

KIND_HELP = "a kind name (preference_dataset) or its collection path (preference-datasets)"


def push(
    project: str,
    collection: Annotated[str, typer.Argument(metavar="KIND", help=KIND_HELP)],
    file: Annotated[Path, typer.Argument(help="the JSON request body")],
) -> None:
    """Register the JSON body in FILE as a record of KIND (e.g. criteria, policies)."""
    body = read_json_object(file, "a request body")
    path = collection_of(collection)
    with RegistryClient() as client:
        record = client.register(project, path, body)
    out.print(
        f"{record['kind']} {record['name']} {record['version']}  id={record['id']}  {record['digest']}",
        soft_wrap=True,
        markup=False,
    )


def get(
    record_or_project: Annotated[
        str, typer.Argument(metavar="RECORD|PROJECT", help=f"{FORMS} (PROJECT/KIND/NAME@VERSION), or a project")
    ],
    kind: Annotated[str | None, typer.Argument(metavar="[KIND]", help=KIND_HELP)] = None,
    name: Annotated[str | None, typer.Argument(metavar="[NAME[@VERSION]]")] = None,
    version: Annotated[str | None, typer.Option(help="the version (default: latest)")] = None,
) -> None:
    """Print a record: `get ID`, `get PROJECT/KIND/NAME@VERSION` or `get PROJECT KIND NAME@VERSION`
    (`get PROJECT KIND NAME` for the latest)."""
    with RegistryClient() as client:
        if kind is None or name is None:
            print_json(resolve(client, record_or_project))
            return
        name, version = name_and_version(name, version)
        print_json(client.get(record_or_project, collection_of(kind), name, version))


@records_app.command("list")
def records_list(
    project: str,
    kind: Annotated[str, typer.Argument(metavar="KIND", help=KIND_HELP)],
    name: Annotated[str | None, typer.Option(help="only the versions of this name")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON (every record, in full) instead of a table")] = False,
) -> None:
    """List the records of KIND in PROJECT, oldest first, paged through the API."""
    path = collection_of(kind)
    with RegistryClient() as client:
        items = list(client.iter_records(project, path, name=name))
    if as_json:
        print_json(items)
        return
    out.print(record_table(items, title=f"{project} / {path}: {len(items)} record(s)"))


def record_table(items: list[dict[str, Any]], title: str) -> Table:
    table = Table("record", "kind", "created", "by", "id", title=escape(title))
    for item in items:
        table.add_row(
            escape(label(item)), item["kind"], str(item["created_at"]), escape(item["created_by"]), item["id"]
        )
    return table
