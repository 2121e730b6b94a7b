"""Model folders: `rlhf-registry models push DIR ...` uploads what the registry does not hold yet
(large files through resumable multipart sessions) and registers the folder as a record."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.progress import BarColumn, DownloadColumn, Progress, TaskID, TransferSpeedColumn

from app.cli.console import err, out, read_json_object
from app.client import RegistryClient
from app.client.uploads import THRESHOLD_ENV, FolderFile, folder_files, push_folder

models_app = typer.Typer(help="Model folders: base models and checkpoints.", no_args_is_help=True)


class ModelCollection(StrEnum):
    base_models = "base-models"
    reward_checkpoints = "reward-checkpoints"
    policy_checkpoints = "policy-checkpoints"


@models_app.callback()
def models() -> None:
    """Model folders: base models and checkpoints."""


class _BarProgress:
    """Two byte bars over the whole folder (hashing, uploading) and one line per file."""

    def __init__(self, progress: Progress, total: int) -> None:
        self._progress = progress
        self._hash = progress.add_task("hashing", total=total)
        self._send: TaskID = progress.add_task("uploading", total=total)
        self.files: list[FolderFile] = []

    def hashed(self, nbytes: int) -> None:
        self._progress.advance(self._hash, nbytes)

    def transferred(self, nbytes: int) -> None:
        self._progress.advance(self._send, nbytes)

    def file_done(self, file: FolderFile) -> None:
        self.files.append(file)
        what = {"skipped": "skipped (already stored)", "resumed": "uploaded (resumed)"}.get(file.outcome, file.outcome)
        self._progress.console.print(f"{what:<25} {file.digest} {file.size:>14}  {escape(file.path)}", soft_wrap=True)


@models_app.command("push")
def push(
    folder: Annotated[Path, typer.Argument(exists=True, file_okay=False, dir_okay=True, help="the model folder")],
    project: Annotated[str, typer.Option(help="project to register the record in")],
    collection: Annotated[ModelCollection, typer.Option(help="which kind of model record")],
    name: Annotated[str, typer.Option(help="record name")],
    body: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="JSON file with the rest of the body: parent references, spec fields (files are added)",
        ),
    ] = None,
    part_size: Annotated[
        int | None, typer.Option(help="bytes per multipart part (default: the server's choice)")
    ] = None,
    multipart_threshold: Annotated[
        int | None,
        typer.Option(envvar=THRESHOLD_ENV, help="files from this many bytes up go through a multipart session"),
    ] = None,
) -> None:
    """Upload the files of FOLDER the registry does not hold yet, then register the folder.

    Interrupted, run it again: files already stored are skipped and multipart uploads resume from the
    parts the store already holds."""
    extra: dict[str, Any] = read_json_object(body, "--body") if body is not None else {}
    extra["name"] = name
    total = sum(file.stat().st_size for _, file in folder_files(folder))
    progress = Progress(
        "[progress.description]{task.description}", BarColumn(), DownloadColumn(), TransferSpeedColumn(), console=err
    )
    with RegistryClient() as client, progress:
        bars = _BarProgress(progress, total)
        record = push_folder(
            client,
            project,
            collection.value,
            folder,
            extra,
            bars,
            threshold=multipart_threshold,
            part_size=part_size,
        )
    skipped = sum(1 for file in bars.files if file.outcome == "skipped")
    out.print(
        f"{len(bars.files)} files, {total} bytes: {len(bars.files) - skipped} uploaded, {skipped} skipped",
        soft_wrap=True,
    )
    out.print(
        f"{record['kind']} {record['name']} {record['version']}  id={record['id']}  {record['digest']}",
        soft_wrap=True,
        markup=False,
    )
