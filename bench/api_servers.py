"""The servers `bench/api.py` drives, and the CPU each side uses.

`rlhf-registry serve` (the embedded default, or PostgreSQL with `--workers N`) and `bench/bare_app.py`,
each in its own process group on a free loopback port, stopped (terminate, wait, kill) when the exit
stack closes. CPU time is read from /proc (through psutil when installed) for a whole process tree, so
uvicorn's worker processes count; PostgreSQL's backends are found through `pg_stat_activity`."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.api_load import HOST
from bench.serving import CLI, free_port

ROOT = Path(__file__).resolve().parent.parent
BARE_APP = Path(__file__).resolve().parent / "bare_app.py"
PG_ADMIN_URL = os.environ.get("RLHF_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# CPU accounting


def _proc_cpu(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def tree_cpu(pid: int) -> dict[int, float]:
    """User + system CPU seconds of `pid` and each of its descendants, by pid."""
    try:
        import psutil  # type: ignore[import-untyped]  # no stubs in this environment
    except ImportError:
        own = _proc_cpu(pid)
        return {} if own is None else {pid: own}
    out: dict[int, float] = {}
    with contextlib.suppress(psutil.Error):
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                times = proc.cpu_times()
                out[proc.pid] = times.user + times.system
    return out


def pids_cpu(pids: list[int]) -> dict[int, float]:
    found = {pid: _proc_cpu(pid) for pid in pids}
    return {pid: cpu for pid, cpu in found.items() if cpu is not None}


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two samples; a process that appeared in between counts from zero (one that
    ended in between is lost: the figure is a lower bound)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


class PgBackends:
    """The pids of PostgreSQL's backends serving one database, read from `pg_stat_activity`."""

    def __init__(self, database: str) -> None:
        import psycopg

        self.database = database
        self.conn = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)

    def pids(self) -> list[int]:
        rows = self.conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s", (self.database,))
        return [int(row[0]) for row in rows]

    def close(self) -> None:
        self.conn.close()


# --------------------------------------------------------------------------------------------------
# processes


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def check_alive(self, during: str) -> None:
        if self.proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited during {during}:\n{self.log_tail()}")


def start_process(
    stack: contextlib.ExitStack, name: str, cmd: list[str], env: dict[str, str], port: int, log: Path
) -> Server:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the bench only; it stops the server group itself
        )
    server = Server(name, proc, port, log)
    stack.callback(_stop, server)
    return server


def _stop(server: Server) -> None:
    if server.proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.proc.pid, signal.SIGTERM)  # the group: uvicorn's worker processes too
    try:
        server.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=10)


def wait_ready(server: Server, path: str, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with status {server.proc.returncode}:\n{server.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://{HOST}:{server.port}{path}", timeout=2.0).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{server.name} not ready after {timeout} s:\n{server.log_tail()}")


def start_bare(stack: contextlib.ExitStack, workers: int, log_dir: Path) -> Server:
    port = free_port()
    cmd = [sys.executable, str(BARE_APP), "--host", HOST, "--port", str(port), "--workers", str(workers)]
    server = start_process(stack, f"bare app ({workers} worker(s))", cmd, dict(os.environ), port, log_dir / "bare.log")
    wait_ready(server, "/get")
    return server


def serve_options() -> str:
    """`rlhf-registry serve --help`: the bench adapts to the options this build has."""
    done = subprocess.run(
        [*CLI, "serve", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    )
    return done.stdout + done.stderr


def run_cli(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [*CLI, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL
    )
    if done.returncode != 0:
        raise RuntimeError(f"rlhf-registry {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout


@dataclass
class Registry:
    server: Server
    token: str


def start_registry(
    stack: contextlib.ExitStack, data_dir: Path, database_url: str | None, workers: int | None, options: str
) -> Registry:
    """Migrated, serving and ready, with a global-admin token."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLHF_REGISTRY_")}
    env["RLHF_REGISTRY_DATA_DIR"] = str(data_dir)
    env["RLHF_REGISTRY_LOG_LEVEL"] = "WARNING"
    if database_url:
        env["RLHF_REGISTRY_DATABASE_URL"] = database_url
    run_cli(["migrate"], env)
    port = free_port()
    cmd = [*CLI, "serve", "--host", HOST, "--port", str(port)]
    if "--no-worker" in options:
        cmd.append("--no-worker")  # no training worker: this bench measures the API
    if workers is not None:
        cmd += ["--workers", str(workers)]
    name = "rlhf-registry serve" + (f" --workers {workers}" if workers is not None else "")
    server = start_process(stack, name, cmd, env, port, data_dir / "serve.log")
    wait_ready(server, "/readyz")
    token = run_cli(["admin", "create-token", "--principal", "admin", "--global-admin"], env).strip().splitlines()[-1]
    return Registry(server, token)


@contextlib.contextmanager
def fresh_database() -> Iterator[tuple[str, str]]:
    """A new PostgreSQL database (its SQLAlchemy URL and name), dropped on exit with its sessions."""
    import psycopg

    name = f"rlhf_bench_api_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        yield f"{base}/{name}", name
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        log(f"dropped database {name}")
