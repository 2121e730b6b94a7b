"""The `rlhf-registry` command: server commands (serve, migrate, admin) and client commands."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn
from rich.table import Table

from app import cli_blobs, cli_data, cli_lineage, cli_models, cli_packages, cli_runs, cli_tokens
from app.audit.checkpoint import CheckpointError, verify_checkpoint
from app.audit.client_verify import VerifyFailed, check_extends, check_root, replay_log
from app.client import ApiError, RegistryClient
from app.core.signing import load_public_key

app = typer.Typer(
    help="rlhf-registry: governance and artifact registry for RLHF workflows.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
admin_app = typer.Typer(help="Administration against the database directly.", no_args_is_help=True)
projects_app = typer.Typer(help="Projects and members.", no_args_is_help=True)
blobs_app = typer.Typer(help="Upload and download blobs.", no_args_is_help=True)
criteria_app = typer.Typer(help="Criteria versions.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")
app.add_typer(projects_app, name="projects")
app.add_typer(blobs_app, name="blobs")
blobs_app.command("gc")(cli_blobs.gc)
app.add_typer(criteria_app, name="criteria")
app.add_typer(audit_app, name="audit")
app.add_typer(cli_data.prompts_app, name="prompts")
app.add_typer(cli_data.batches_app, name="batches")
app.add_typer(cli_data.datasets_app, name="datasets")
app.command("import")(cli_data.import_export)
app.command("trace")(cli_lineage.trace)
app.add_typer(cli_runs.runs_app, name="runs")
app.add_typer(cli_models.models_app, name="models")
app.command("revoke")(cli_lineage.revoke)
app.add_typer(cli_lineage.deployments_app, name="deployments")
app.command("verify")(cli_packages.verify)
app.add_typer(cli_packages.package_app, name="package")
app.add_typer(cli_tokens.tokens_app, name="tokens")

out = Console()
err = Console(stderr=True)


def _fail(exc: ApiError) -> None:
    err.print(f"[red]error {exc.status} {exc.code}[/red]: {exc.problem.get('detail', '')}")
    for item in exc.problem.get("errors") or []:
        err.print(f"  {'.'.join(str(x) for x in item.get('loc', []))}: {item.get('msg')}")
    raise typer.Exit(1)


def _print_json(value: Any) -> None:
    out.print_json(json.dumps(value, default=str))


@app.command()
def migrate() -> None:
    """Upgrade the database to the latest migration."""
    from app.core import migrate as migrations
    from app.core.settings import get_settings

    migrations.upgrade(get_settings().database_url)
    out.print("database at head")


@app.command()
def serve(
    host: str = "127.0.0.1",
    port: int = 8000,
    no_worker: Annotated[bool, typer.Option("--no-worker", help="do not start the embedded worker")] = False,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="API processes sharing the port; each holds up to 3 x RLHF_REGISTRY_DB_POOL_SIZE "
            "PostgreSQL connections, and one of them (elected) runs the background loops",
        ),
    ] = 1,
    shutdown_timeout: Annotated[
        int, typer.Option(min=0, help="seconds in-flight requests get to finish after SIGTERM")
    ] = 30,
) -> None:
    """Start the API (an embedded SQLite database is migrated first)."""
    import uvicorn

    from app.core.settings import get_settings
    from app.serving import APP_FACTORY, prepare

    settings = get_settings()
    prepare(settings)
    processes = f"{workers} API processes" if workers > 1 else "one API process"
    out.print(f"rlhf-registry serving on http://{host}:{port} with {processes}  (API docs: http://{host}:{port}/docs)")
    # the embedded worker belongs to this parent process, not to each API process: started once
    worker_process = None
    if not no_worker:
        worker_process = subprocess.Popen([sys.executable, "-m", "app.cli", "worker"])
        out.print(
            f"one training worker started (pid {worker_process.pid}, broker {settings.broker_url.split('://')[0]})"
        )
    try:
        # each API process builds its application from the same RLHF_REGISTRY_* environment (app/serving.py)
        uvicorn.run(
            APP_FACTORY,
            factory=True,
            host=host,
            port=port,
            workers=workers,
            timeout_graceful_shutdown=shutdown_timeout,
            log_level="warning",
            access_log=False,
        )
    finally:
        if worker_process is not None:
            worker_process.terminate()
            try:
                worker_process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                worker_process.kill()


@app.command()
def worker(
    queues: Annotated[str, typer.Option(help="comma-separated queues")] = "runs",
    concurrency: Annotated[int, typer.Option(help="runs at a time (one per GPU)")] = 1,
) -> None:
    """Start a Celery worker that executes training runs."""
    from workers.celery_app import celery

    celery.worker_main(
        [
            "worker",
            "--loglevel=INFO",
            f"--concurrency={concurrency}",
            "--pool=solo" if concurrency == 1 else "--pool=prefork",
            "-Q",
            queues,
            "--without-gossip",
            "--without-mingle",
        ]
    )


@admin_app.command("create-token")
def create_token(
    principal: Annotated[str, typer.Option(help="principal name; created if new")],
    global_admin: Annotated[bool, typer.Option("--global-admin", help="make the principal a global admin")] = False,
    label: str = "",
) -> None:
    """Create a token for a principal; the token is printed alone on the last line."""
    from app.access import service as access_service
    from app.core.settings import get_settings
    from app.state import AppState

    state = AppState.build(get_settings())
    from app.core.migrate import require_head

    require_head(state.sessions.engine, state.settings.database_url)
    uow = state.unit_of_work(request_id="cli")
    try:
        who = access_service.get_or_create_principal(uow, principal, actor="cli", global_admin=global_admin)
        token = access_service.create_token(uow, who, actor="cli", label=label)
        uow.commit()
    finally:
        uow.close()
    print(f"token for {principal}{' (global admin)' if global_admin else ''}:", file=sys.stderr)
    print(token)


@app.command()
def me() -> None:
    """Who the token in RLHF_REGISTRY_TOKEN belongs to, and its roles."""
    with RegistryClient() as client:
        try:
            _print_json(client.me())
        except ApiError as exc:
            _fail(exc)


@projects_app.command("create")
def projects_create(name: str, description: str = "") -> None:
    with RegistryClient() as client:
        try:
            _print_json(client.create_project(name, description))
        except ApiError as exc:
            _fail(exc)


@projects_app.command("member")
def projects_member(project: str, principal: str, role: str) -> None:
    """Give PRINCIPAL the ROLE in PROJECT."""
    with RegistryClient() as client:
        try:
            _print_json(client.set_member(project, principal, role))
        except ApiError as exc:
            _fail(exc)


@app.command()
def push(project: str, collection: str, file: Path) -> None:
    """Register the JSON body in FILE into COLLECTION (e.g. criteria, policies)."""
    body = json.loads(file.read_text())
    with RegistryClient() as client:
        try:
            record = client.register(project, collection, body)
        except ApiError as exc:
            _fail(exc)
        out.print(f"{record['kind']} {record['name']} {record['version']}  id={record['id']}  {record['digest']}")


@app.command()
def get(
    project_or_id: str,
    collection: Annotated[str | None, typer.Argument()] = None,
    name: Annotated[str | None, typer.Argument()] = None,
    version: str = "latest",
) -> None:
    """Print a record: `get RECORD_ID` or `get PROJECT COLLECTION NAME [--version V]`."""
    with RegistryClient() as client:
        try:
            if collection is None or name is None:
                _print_json(client.get_record(project_or_id))
            else:
                _print_json(client.get(project_or_id, collection, name, version))
        except ApiError as exc:
            _fail(exc)


@criteria_app.command("diff")
def criteria_diff(project: str, name: str, from_version: str, to_version: str = "latest") -> None:
    """Show what changed between two criteria versions and how the server classifies it."""
    with RegistryClient() as client:
        try:
            diff = client.criteria_diff(project, name, from_version, to_version)
        except ApiError as exc:
            _fail(exc)
    table = Table(title=f"{name} {diff['from']} -> {diff['to']}: {diff['level']}")
    for column in ("path", "change", "level"):
        table.add_column(column)
    for change in diff["changes"]:
        table.add_row(change["path"], change["change"], change["level"])
    out.print(table)


@blobs_app.command("upload")
def blobs_upload(files: list[Path]) -> None:
    """Upload files as blobs (hashed first, verified by the server), with a progress bar."""
    with RegistryClient() as client, cli_data.byte_progress() as progress:
        for path in files:
            task = progress.add_task(path.name, total=path.stat().st_size)
            try:
                result = client.upload_file(path, partial(progress.advance, task))
            except ApiError as exc:
                _fail(exc)
            out.print(f"{result['digest']}  {result['size']}  {path}")


@blobs_app.command("download")
def blobs_download(digest: str, dest: Path) -> None:
    with RegistryClient() as client, cli_data.byte_progress() as progress:
        task = progress.add_task(dest.name, total=None)
        try:
            client.download_blob(digest, dest, lambda n: progress.advance(task, n))
        except ApiError as exc:
            _fail(exc)


@audit_app.command("checkpoint")
def audit_checkpoint(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="write it to FILE")] = None,
) -> None:
    """Print the log's current signed checkpoint as JSON; keep it to check later that the log only grew
    (`audit verify --checkpoint FILE`)."""
    with RegistryClient() as client:
        try:
            checkpoint = client.audit_checkpoint()
        except ApiError as exc:
            _fail(exc)
    text = json.dumps(checkpoint, indent=2) + "\n"
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text)
        err.print(f"checkpoint of {checkpoint['tree_size']} events written to {output}")


@audit_app.command("verify")
def audit_verify(
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="a checkpoint saved earlier: check that the log extends it")
    ] = None,
    public_key: Annotated[
        Path | None, typer.Option("--public-key", help="the server's ed25519 public key (PEM) instead of asking it")
    ] = None,
    server: Annotated[bool, typer.Option("--server", help="only ask the server to recompute (admin)")] = False,
) -> None:
    """Verify the audit log here, trusting nothing the server computed; exit 1 when it does not check.

    Without --checkpoint, read every event (a global admin's token), recompute each leaf hash and the
    RFC 9162 root, and check them against the signed checkpoint; the first bad event is named. With
    --checkpoint FILE, check FILE's signature and an RFC 9162 consistency proof that today's log
    extends it. Pass --public-key to check signatures against a key kept outside the server."""
    with RegistryClient() as client:
        try:
            if server:
                result = client.audit_verify()
            else:
                key = load_public_key(public_key.read_bytes() if public_key else client.signing_key()["public_key_pem"])
                if checkpoint is None:
                    result = _verify_whole_log(client, key)
                else:
                    result = _verify_extends(client, key, json.loads(checkpoint.read_text()))
        except ApiError as exc:
            _fail(exc)
        except (CheckpointError, VerifyFailed, ValueError) as exc:
            err.print(f"[red]audit log does not verify[/red]: {exc}", soft_wrap=True)
            raise typer.Exit(1) from exc
    _print_json(result)
    if not result["ok"]:
        raise typer.Exit(1)


def _verify_whole_log(client: RegistryClient, key: Ed25519PublicKey) -> dict[str, Any]:
    if not client.me().get("global_admin"):
        err.print("reading every audit event needs a global admin's token; any viewer can run --checkpoint FILE")
        raise typer.Exit(2)
    signed = client.audit_checkpoint()
    size, root = verify_checkpoint(signed, key)
    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
    )
    with progress:
        task = progress.add_task("audit events", total=size)

        def events() -> Iterator[dict[str, Any]]:
            for event in client.iter_audit():
                progress.advance(task)
                yield event

        check_root(replay_log(events(), size), root)
    return {
        "ok": True,
        "origin": signed["origin"],
        "tree_size": size,
        "root_hash": root.hex(),
        "key_id": signed["key_id"],
    }


def _verify_extends(client: RegistryClient, key: Ed25519PublicKey, saved: dict[str, Any]) -> dict[str, Any]:
    old_size, old_root = verify_checkpoint(saved, key)
    current = client.audit_checkpoint()
    new_size, new_root = verify_checkpoint(current, key)
    if saved["origin"] != current["origin"]:
        raise VerifyFailed(f"the saved checkpoint is of the log {saved['origin']!r}, not {current['origin']!r}")
    proof: list[bytes] = []
    if 0 < old_size < new_size:
        hashes = client.audit_consistency_proof(old_size, new_size)["hashes"]
        proof = [bytes.fromhex(h) for h in hashes]
    check_extends((old_size, old_root), (new_size, new_root), proof)
    return {"ok": True, "origin": current["origin"], "from": old_size, "to": new_size, "root_hash": new_root.hex()}


def main() -> None:
    app()


if __name__ == "__main__":
    main()
