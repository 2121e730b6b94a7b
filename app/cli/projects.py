"""Projects and their members."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from app.cli.console import out, print_json
from app.client import RegistryClient

projects_app = typer.Typer(help="Projects and members.", no_args_is_help=True)


@projects_app.command("create")
def projects_create(name: str, description: str = "") -> None:
    """Create a project (you become its admin); an existing one of yours is returned as it is."""
    with RegistryClient() as client:
        print_json(client.create_project(name, description))


@projects_app.command("member")
def projects_member(project: str, principal: str, role: str) -> None:
    """Give PRINCIPAL the ROLE in PROJECT."""
    with RegistryClient() as client:
        print_json(client.set_member(project, principal, role))


@projects_app.command("list")
def projects_list(
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False,
) -> None:
    """The projects your token may see."""
    with RegistryClient() as client:
        items = client.list_projects()
    if as_json:
        print_json(items)
        return
    table = Table("project", "description", "created", "by", title=f"{len(items)} project(s)")
    for item in items:
        table.add_row(
            escape(item["name"]), escape(item["description"]), str(item["created_at"]), escape(item["created_by"])
        )
    out.print(table)
