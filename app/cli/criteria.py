"""Criteria versions: what changed between two of them, path by path, and how the server classifies it."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from app.cli.console import out, print_json
from app.cli.references import name_and_version
from app.client import RegistryClient

criteria_app = typer.Typer(help="Criteria versions.", no_args_is_help=True)
# a value longer than this is cut in the table (with --json the whole value is printed)
VALUE_WIDTH = 200


@criteria_app.command("diff")
def criteria_diff(
    project: str,
    name: Annotated[str, typer.Argument(metavar="NAME[@FROM]", help="the series, optionally with the old version")],
    from_version: Annotated[str | None, typer.Argument(metavar="[FROM]", help="the old version")] = None,
    to_version: Annotated[str, typer.Option(help="the new version")] = "latest",
    as_json: Annotated[bool, typer.Option("--json", help="the server's diff as JSON")] = False,
) -> None:
    """Show each changed path with its value before and after, and the level the server gives the change
    (patch, minor, major): `criteria diff PROJECT NAME FROM` or `NAME@FROM`; `--to-version` defaults to
    the latest."""
    if from_version is None and "@" not in name:
        raise typer.BadParameter("give the old version: NAME FROM or NAME@FROM", param_hint="FROM")
    name, from_version = name_and_version(name, from_version)
    with RegistryClient() as client:
        diff = client.criteria_diff(project, name, from_version, to_version)
    if as_json:
        print_json(diff)
        return
    out.print(diff_table(name, diff))


def diff_table(name: str, diff: dict[str, Any]) -> Table:
    """One row per change; every text from the record is escaped, so `[accuracy]` prints as written."""
    title = f"{name} {diff['from']} -> {diff['to']}: {diff['level']} ({len(diff['changes'])} change(s))"
    table = Table(title=escape(title))
    for column in ("path", "change", "level", "before", "after"):
        table.add_column(column, overflow="fold")
    for change in diff["changes"]:
        table.add_row(
            escape(str(change["path"])),
            escape(str(change["change"])),
            escape(str(change["level"])),
            escape(show_value(change.get("before"))),
            escape(show_value(change.get("after"))),
        )
    return table


def show_value(value: Any) -> str:
    """A JSON value as one short text; `-` for an absent one."""
    if value is None:
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 3] + "..."
