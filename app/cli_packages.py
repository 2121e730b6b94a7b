"""CLI for handoff packages: `rlhf-registry verify ARCHIVE` (offline: no server, no network) and
`rlhf-registry package build|download` (clients of the API)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from app.cli_data import byte_progress, fail
from app.client import ApiError, RegistryClient
from app.packages.verify import verify_archive

package_app = typer.Typer(help="Handoff packages of approved deployments.", no_args_is_help=True)

out = Console()
err = Console(stderr=True)


def verify(
    archive: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="the package zip")],
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            exists=True,
            dir_okay=False,
            help="PEM of the registry's signing key (GET /v1/signing-key); default: the key inside the archive",
        ),
    ] = None,
) -> None:
    """Verify a handoff package offline: the canonical zip form, the signature, every digest, and the
    lineage back to criteria. Exits 0 only when everything checks; otherwise names each failure and
    exits 1. Runs in bounded memory: every entry streams through its hash, and an entry the manifest
    does not list, or that declares more bytes than the manifest lists for it, is refused unread.
    Without --public-key the archive's own key is used: that proves the archive is intact, not who
    signed it, so compare the key id and fingerprint printed with GET /v1/signing-key."""
    try:
        pinned = public_key.read_bytes() if public_key is not None else None
    except OSError as exc:
        err.print(f"[red]FAILED[/red] signature: cannot read {public_key}: {exc}", soft_wrap=True)
        raise typer.Exit(1) from exc
    report = verify_archive(archive, pinned)
    for line in report.checked:
        out.print(f"checked: {line}", soft_wrap=True)
    if report.key_id is not None:
        source = "pinned with --public-key" if report.key_source == "pinned" else "the archive's own signing-key.pem"
        out.print(
            f"[bold]signing key[/bold] ({source}): key_id [bold]{report.key_id}[/bold]"
            f"  sha256 fingerprint (DER SubjectPublicKeyInfo) [bold]{report.key_fingerprint}[/bold]",
            soft_wrap=True,
        )
    if public_key is None:
        out.print(
            "[yellow]note[/yellow]: checked against the archive's own key, which proves the archive is intact but"
            " not who signed it: compare the key_id above with the registry's GET /v1/signing-key, or pin that key"
            " with --public-key",
            soft_wrap=True,
        )
    if not report.ok:
        for failure in report.failures:
            err.print(f"[red]FAILED[/red] {failure}", soft_wrap=True)
        raise typer.Exit(1)
    out.print(f"[green]OK[/green] {archive}")


def _deployment_ref(deployment: str) -> dict[str, str]:
    """`NAME@VERSION` or a record id."""
    name, sep, version = deployment.partition("@")
    return {"name": name, "version": version} if sep else {"id": deployment}


@package_app.command("build")
def build(
    project: str,
    deployment: Annotated[str, typer.Argument(help="the approved deployment: NAME@VERSION or its record id")],
    name: Annotated[str | None, typer.Option(help="package name (default: <deployment>-v<version>)")] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="also download the archive to this file")] = None,
) -> None:
    """Build the handoff package of an approved deployment (the server renders and signs it)."""
    with RegistryClient() as client:
        try:
            record = client.build_package(project, _deployment_ref(deployment), name)
            out.print(
                f"handoff_package {record['name']} {record['version']}  id={record['id']}  {record['spec']['archive']}"
            )
            if out_file is not None:
                _download(client, project, record["name"], record["version"], out_file)
        except ApiError as exc:
            fail(exc)


@package_app.command("download")
def download(
    project: str,
    name: str,
    version: Annotated[str, typer.Argument()] = "latest",
    out_file: Annotated[
        Path | None, typer.Option("--out", help="where to write the zip (default: NAME-vVERSION.zip)")
    ] = None,
) -> None:
    """Download a handoff package archive (its digest is checked while it streams)."""
    with RegistryClient() as client:
        try:
            _download(client, project, name, version, out_file or Path(f"{name}-v{version}.zip"))
        except ApiError as exc:
            fail(exc)


def _download(client: RegistryClient, project: str, name: str, version: str, dest: Path) -> None:
    with byte_progress() as progress:
        task = progress.add_task(dest.name, total=None)
        digest = client.download_package(project, name, version, dest, lambda n: progress.advance(task, n))
    out.print(f"{digest}  {dest}")
