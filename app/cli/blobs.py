"""Blobs: upload and download through the API (with progress bars), and `blobs gc`, which removes what
interrupted transfers left in the blob store, run locally against the configured database and store
(like `admin create-token`)."""

from __future__ import annotations

from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Annotated

import typer

from app.cli.console import byte_progress, err, out, require_database_at_head
from app.client import RegistryClient

blobs_app = typer.Typer(help="Upload and download blobs.", no_args_is_help=True)


@blobs_app.command("upload")
def blobs_upload(files: list[Path]) -> None:
    """Upload files as blobs (hashed first, verified by the server), with a progress bar."""
    with RegistryClient() as client, byte_progress() as progress:
        for path in files:
            task = progress.add_task(path.name, total=path.stat().st_size)
            result = client.upload_file(path, partial(progress.advance, task))
            out.print(f"{result['digest']}  {result['size']}  {path}", markup=False, soft_wrap=True)


@blobs_app.command("download")
def blobs_download(digest: str, dest: Path) -> None:
    """Download a blob to DEST; its digest is checked before the file appears under its name."""
    with RegistryClient() as client, byte_progress() as progress:
        task = progress.add_task(dest.name, total=None)
        client.download_blob(digest, dest, lambda n: progress.advance(task, n))


@blobs_app.command("gc")
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
    from app.core.settings import get_settings
    from app.state import AppState

    state = AppState.build(get_settings())
    require_database_at_head(state)
    hours = state.settings.blob_gc_older_than_hours if older_than is None else older_than
    try:
        result = sweep(state, older_than=timedelta(hours=hours), dry_run=dry_run)
    finally:
        state.sessions.engine.dispose()
    verb = "would remove" if dry_run else "removed"
    for line in result.lines():
        typer.echo(f"{verb} {line}")
    err.print(f"{len(result.lines())} item(s) {verb}, older than {hours:g} h")
