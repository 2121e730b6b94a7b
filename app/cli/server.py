"""Server-side commands, run against the configured database and store: serve, worker, migrate, admin."""

from __future__ import annotations

import subprocess
import sys
from typing import Annotated

import typer

from app.cli.console import out, require_database_at_head

admin_app = typer.Typer(help="Administration against the database directly.", no_args_is_help=True)


def add_to(app: typer.Typer) -> None:
    app.command()(migrate)
    app.command()(serve)
    app.command()(worker)
    app.add_typer(admin_app, name="admin")
    admin_app.command("create-token")(create_token)


def migrate() -> None:
    """Upgrade the database to the latest migration."""
    from app.core import migrate as migrations
    from app.core.settings import get_settings

    migrations.upgrade(get_settings().database_url)
    out.print("database at head")


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
    require_database_at_head(state)
    uow = state.unit_of_work(request_id="cli")
    try:
        who = access_service.get_or_create_principal(uow, principal, actor="cli", global_admin=global_admin)
        token = access_service.create_token(uow, who, actor="cli", label=label)
        uow.commit()
    finally:
        uow.close()
    print(f"token for {principal}{' (global admin)' if global_admin else ''}:", file=sys.stderr)
    print(token)
