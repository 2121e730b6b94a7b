"""MLflow's model registry server, driven by the same load generator as the registry (`--mlflow PATH`).

MLflow is not a dependency of this project: install it in a separate virtual environment (its pins
would move this one's SQLAlchemy and alembic) and pass its `mlflow` executable:

    python3.11 -m venv /tmp/mlflow-venv
    /tmp/mlflow-venv/bin/pip install 'mlflow>=3,<4' 'psycopg2-binary>=2.9,<3'
    .venv/bin/python bench/api.py --mlflow /tmp/mlflow-venv/bin/mlflow

`mlflow server --workers 1` on SQLite and on a fresh PostgreSQL database; phases: create a model
version (a registration), get a version by name and number (a read), get the registered model with its
latest versions (a read by name), search the model's versions 50 at a time (a list page)."""

from __future__ import annotations

import contextlib
import json
import os
import random
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from bench.api_load import HOST, Phase, Req
from bench.api_report import Figure, measure
from bench.api_servers import PgBackends, Server, fresh_database, log, pids_cpu, start_process, tree_cpu, wait_ready
from bench.serving import free_port

if TYPE_CHECKING:
    from bench.api import Bench

API = "/api/2.0/mlflow"
MODEL = "bench-model"


def _start_mlflow(stack: contextlib.ExitStack, mlflow: Path, store_uri: str, workdir: Path, name: str) -> Server:
    port = free_port()
    cmd = [
        str(mlflow),
        "server",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        store_uri,
        "--default-artifact-root",
        str(workdir / f"artifacts-{name}"),
        "--no-serve-artifacts",
    ]
    env = {**os.environ, "PATH": f"{mlflow.parent}:{os.environ.get('PATH', '')}"}
    # its job runner (a pool of huey consumers for GenAI jobs) polls all the time and has no part in the
    # model registry: off, so the comparison is with the registry server alone
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    server = start_process(stack, f"mlflow server ({name})", cmd, env, port, workdir / f"{name}.log")
    wait_ready(server, "/health", timeout=180.0)
    with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=60) as client:
        response = client.post(f"{API}/registered-models/create", json={"name": MODEL})
        if response.status_code != 200:
            raise RuntimeError(f"mlflow: creating the registered model: HTTP {response.status_code} {response.text}")
    return server


def _phases(port: int, versions: list[str]) -> tuple[Phase, list[Phase]]:
    def on_created(answer: bytes) -> None:
        versions.append(json.loads(answer)["model_version"]["version"])

    create = Phase(
        "register version",
        "registration",
        port,
        lambda n: Req(
            "POST",
            f"{API}/model-versions/create",
            json.dumps({"name": MODEL, "source": f"s3://bench/models/{n}", "description": f"candidate {n}"}).encode(),
        ),
        on_created,
    )
    pick = random.Random(7).choice
    reads = [
        Phase(
            "read name/version",
            "read",
            port,
            lambda n: Req("GET", f"{API}/model-versions/get?name={MODEL}&version={pick(versions)}"),
        ),
        Phase("read model+latest", "read", port, lambda n: Req("GET", f"{API}/registered-models/get?name={MODEL}")),
        Phase(
            "search 50 versions",
            "list",
            port,
            lambda n: Req("GET", f"{API}/model-versions/search?filter=name%3D%27{MODEL}%27&max_results=50"),
        ),
    ]
    return create, reads


def _measure(bench: Bench, server: Server, config: str, db: PgBackends | None) -> None:
    versions: list[str] = []
    create, reads = _phases(server.port, versions)
    for clients in bench.args.clients:
        bench.figures.append(_one(bench, create, server, config, clients, db))
        if not versions:
            raise RuntimeError("mlflow: no model version was created")
        for phase in reads:
            bench.figures.append(_one(bench, phase, server, config, clients, db))
        server.check_alive(config)


def _one(bench: Bench, phase: Phase, server: Server, config: str, clients: int, db: PgBackends | None) -> Figure:
    return measure(
        bench.gen,
        phase,
        config=config,
        clients=clients,
        seconds=bench.args.duration,
        warmup=bench.args.warmup,
        server_cpu=lambda: tree_cpu(server.proc.pid),
        db_cpu=(lambda: pids_cpu(db.pids())) if db else None,
    )


def run_mlflow(bench: Bench, mlflow: Path) -> None:
    if not mlflow.exists():
        bench.notes.append(f"mlflow skipped: {mlflow} does not exist")
        log(f"NOTE: {bench.notes[-1]}")
        return
    if "sqlite" in bench.args.only:
        with contextlib.ExitStack() as stack:
            store = f"sqlite:///{bench.workdir / 'mlflow.db'}"
            _measure(bench, _start_mlflow(stack, mlflow, store, bench.workdir, "sqlite"), "mlflow sqlite", None)
    if bench.args.only & {"pg1", "pg2"}:
        with fresh_database() as (url, name), contextlib.ExitStack() as stack:
            store = url.replace("postgresql+psycopg://", "postgresql+psycopg2://", 1)  # the driver MLflow documents
            server = _start_mlflow(stack, mlflow, store, bench.workdir, "pg")
            db = PgBackends(name)
            try:
                _measure(bench, server, "mlflow pg", db)
            finally:
                db.close()
