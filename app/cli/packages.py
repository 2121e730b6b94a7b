"""CLI for handoff packages: `rlhf-registry verify ARCHIVE` (offline: no server, no network) and
`rlhf-registry package build|download` (clients of the API)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from app.cli.console import byte_progress, err, out
from app.cli.references import name_and_version, reference
from app.client import RegistryClient

package_app = typer.Typer(help="Handoff packages of approved deployments.", no_args_is_help=True)


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
    # imported here: only `verify` needs the package reader
    from app.packages.verify import verify_archive

    try:
        pinned = public_key.read_bytes() if public_key is not None else None
    except OSError as exc:
        err.print(
            f"[red]FAILED[/red] signature: cannot read {escape(str(public_key))}: {escape(str(exc))}", soft_wrap=True
        )
        raise typer.Exit(1) from exc
    report = verify_archive(archive, pinned)
    for line in report.checked:
        out.print(f"checked: {escape(line)}", soft_wrap=True)
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
            err.print(f"[red]FAILED[/red] {escape(failure)}", soft_wrap=True)
        raise typer.Exit(1)
    out.print(f"[green]OK[/green] {escape(str(archive))}", soft_wrap=True)


@package_app.command("build")
def build(
    project: str,
    deployment: Annotated[
        str, typer.Argument(help="the approved deployment: NAME@VERSION, NAME@latest or its record id")
    ],
    name: Annotated[str | None, typer.Option(help="package name (default: <deployment>-v<version>)")] = None,
    out_file: Annotated[Path | None, typer.Option("--out", help="also download the archive to this file")] = None,
) -> None:
    """Build the handoff package of an approved deployment (the server renders and signs it)."""
    with RegistryClient() as client:
        record = client.build_package(project, reference(deployment), name)
        out.print(
            f"handoff_package {record['name']} {record['version']}  id={record['id']}  {record['spec']['archive']}",
            markup=False,
            soft_wrap=True,
        )
        if out_file is not None:
            _download(client, project, record["name"], record["version"], out_file)


@package_app.command("download")
def download(
    project: str,
    name: Annotated[str, typer.Argument(metavar="NAME[@VERSION]")],
    version: Annotated[str | None, typer.Argument(metavar="[VERSION]", help="default: latest")] = None,
    out_file: Annotated[
        Path | None, typer.Option("--out", help="where to write the zip (default: NAME-vVERSION.zip)")
    ] = None,
) -> None:
    """Download a handoff package archive (its digest is checked while it streams)."""
    name, version = name_and_version(name, version)
    with RegistryClient() as client:
        _download(client, project, name, version, out_file or Path(f"{name}-v{version}.zip"))


def _download(client: RegistryClient, project: str, name: str, version: str, dest: Path) -> None:
    with byte_progress() as progress:
        task = progress.add_task(dest.name, total=None)
        digest = client.download_package(project, name, version, dest, lambda n: progress.advance(task, n))
    out.print(f"{digest}  {dest}", markup=False, soft_wrap=True)
