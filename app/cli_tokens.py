"""CLI for API tokens, as a client of the server (RLHF_REGISTRY_URL, RLHF_REGISTRY_TOKEN): create one
for yourself (a global admin: for anyone), list them without their secrets, revoke one."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import httpx
import typer
from rich.console import Console
from rich.table import Table

from app.cli_data import fail
from app.client import ApiError, RegistryClient

tokens_app = typer.Typer(help="API tokens: create, list, revoke.", no_args_is_help=True)
out = Console()
err = Console(stderr=True)
T = TypeVar("T")


def _call(action: Callable[[RegistryClient], T]) -> T:
    """Run one request; an answer of the server's or an unreachable server ends in one line, exit 1."""
    try:
        with RegistryClient() as client:
            return action(client)
    except ApiError as exc:
        fail(exc)  # one line (and the problem's field errors), exit 1
        raise typer.Exit(1) from None
    except httpx.HTTPError as exc:
        url = os.environ.get("RLHF_REGISTRY_URL", "http://127.0.0.1:8000")
        err.print(f"[red]error[/red]: cannot reach the registry at {url}: {exc.__class__.__name__}", markup=True)
        raise typer.Exit(1) from None


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
    created = _call(lambda c: c.create_token(label=label, expires_in_days=expires_in_days, principal=principal))
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
    items = _call(lambda c: c.list_tokens(everyone=everyone, principal=principal))
    if as_json:
        print(json.dumps(items, indent=2))
        return
    out.print(_table(items))


def _table(items: list[dict[str, Any]]) -> Table:
    table = Table("id", "principal", "label", "created", "expires", "revoked", "state")
    for item in items:
        table.add_row(
            item["id"],
            item["principal"],
            item["label"],
            item["created_at"],
            item["expires_at"] or "never",
            item["revoked_at"] or "",
            item["state"],
        )
    return table


@tokens_app.command("revoke")
def revoke(token_id: Annotated[str, typer.Argument(metavar="ID", help="the token's id (tokens list)")]) -> None:
    """Revoke a token of yours (a global admin: anyone's); its next request is refused."""
    revoked = _call(lambda c: c.revoke_token(token_id))
    out.print(f"token {revoked['id']} of {revoked['principal']} revoked at {revoked['revoked_at']}")
