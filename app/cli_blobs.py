"""`rlhf-registry blobs gc`: remove what interrupted transfers left in the blob store, run locally
against the configured database and store (like `admin create-token`)."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer
from rich.console import Console

err = Console(stderr=True)


def gc(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list what would be removed; remove nothing")] = False,
    older_than: Annotated[
        float | None,
        typer.Option(
            "--older-than",
            metavar="HOURS",
            min=0,
            help="only leftovers older than this (default: RLHF_REGISTRY_BLOB_GC_OLDER_THAN_HOURS, 24); "
            "keep it above the longest upload",
        ),
    ] = None,
) -> None:
    """Abort expired upload sessions, incomplete multipart uploads and temporary objects."""
    from app.blobs.sweep import sweep
    from app.core.errors import AppError
    from app.core.migrate import require_head
    from app.core.settings import get_settings
    from app.state import AppState

    state = AppState.build(get_settings())
    require_head(state.sessions.engine, state.settings.database_url)
    hours = state.settings.blob_gc_older_than_hours if older_than is None else older_than
    try:
        result = sweep(state, older_than=timedelta(hours=hours), dry_run=dry_run)
    except AppError as exc:
        err.print(f"[red]error {exc.code}[/red]: {exc.detail}")
        raise typer.Exit(1) from None
    finally:
        state.sessions.engine.dispose()
    verb = "would remove" if dry_run else "removed"
    for line in result.lines():
        typer.echo(f"{verb} {line}")
    err.print(f"{len(result.lines())} item(s) {verb}, older than {hours:g} h")
