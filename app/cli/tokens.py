"""API tokens, as a client of the server: who a token belongs to (`me`); create one for yourself (a
global admin: for anyone), list them without their secrets, revoke one."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from app.cli.console import out, print_json
from app.client import RegistryClient

tokens_app = typer.Typer(help="API tokens: create, list, revoke.", no_args_is_help=True)


def me() -> None:
    """Who the token in RLHF_REGISTRY_TOKEN belongs to, and its roles."""
    with RegistryClient() as client:
        print_json(client.me())


@tokens_app.command("create")
def create(
    label: Annotated[str, typer.Option(help="what the token is for; shown in listings")] = "",
    expires_in_days: Annotated[
        int | None, typer.Option("--expires-in-days", min=1, max=36500, help="expire after N days")
    ] = None,
    principal: Annotated[
        str | None, typer.Option(help="whose token (a global admin may name another principal)")
    ] = None,
) -> None:
    """Create a token; it is printed alone on the last line of stdout (shown this once)."""
    with RegistryClient() as client:
        created = client.create_token(label=label, expires_in_days=expires_in_days, principal=principal)
    expires = created.get("expires_at") or "never"
    print(f"token {created['id']} for {created['principal']}, expires {expires}:", file=sys.stderr)
    print(created["token"])


@tokens_app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="JSON instead of a table")] = False,
    everyone: Annotated[bool, typer.Option("--all", help="every principal's tokens (global admin)")] = False,
    principal: Annotated[str | None, typer.Option(help="one principal's tokens (global admin)")] = None,
) -> None:
    """Your tokens (never their secrets): id, principal, label, created, expires, revoked, state."""
    with RegistryClient() as client:
        items = client.list_tokens(everyone=everyone, principal=principal)
    if as_json:
        print(json.dumps(items, indent=2))
        return
    out.print(_table(items))


def _table(items: list[dict[str, Any]]) -> Table:
    table = Table("id", "principal", "label", "created", "expires", "revoked", "state")
    for item in items:
        table.add_row(
            item["id"],
            escape(item["principal"]),
            escape(item["label"]),
            item["created_at"],
            item["expires_at"] or "never",
            item["revoked_at"] or "",
            item["state"],
        )
    return table


@tokens_app.command("revoke")
def revoke(token_id: Annotated[str, typer.Argument(metavar="ID", help="the token's id (tokens list)")]) -> None:
    """Revoke a token of yours (a global admin: anyone's); its next request is refused."""
    with RegistryClient() as client:
        revoked = client.revoke_token(token_id)
    out.print(f"token {revoked['id']} of {escape(revoked['principal'])} revoked at {revoked['revoked_at']}")
