"""The production topology on loopback, from processes, for fault-injection tests.

A PostgreSQL cluster of its own (`initdb` in a temporary folder, its own port, trust auth), a SeaweedFS
S3 server, a Redis without persistence, two `rlhf-registry serve --no-worker` replicas and one
`rlhf-registry worker`. Each component can be stopped, killed and started again on the same port and
data, so that a test can take one away under load and bring it back. Every wait is bounded; `close`
kills whatever is still running (SIGTERM, then SIGKILL after a timeout), whatever happened before.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from app.core.settings import Settings
from tests.support.processes import HOST, Postgres, Process, StartError, free_ports, port_open, wait_until
from tests.support.seaweed import ACCESS_KEY, SECRET_KEY, find_weed, s3_client
from tests.support.services import missing_service

__all__ = ["StartError", "Topology", "topology"]
_SCRIPT = Path(sys.executable).parent / "rlhf-registry"
CLI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "app.cli"]
BUCKET = "faults"


class Topology:
    """Every component, built by `topology()`; a test stops, kills and starts them by name."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.children: dict[str, Process] = {}
        pg_port, redis_port, *weed_ports = free_ports(2 + 8)
        self.replica_ports = free_ports(2)
        self.postgres = Postgres(root, pg_port)
        self.redis_port = redis_port
        self._weed_ports = weed_ports
        self.s3_url = f"http://{HOST}:{weed_ports[6]}"
        self.token = ""
        self.env = self._service_env()

    @property
    def urls(self) -> list[str]:
        return [f"http://{HOST}:{port}" for port in self.replica_ports]

    @property
    def broker_url(self) -> str:
        return f"redis://{HOST}:{self.redis_port}/0"

    def _service_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("RLHF_REGISTRY_")}
        env.update(
            RLHF_REGISTRY_DATA_DIR=str(self.root / "data"),
            RLHF_REGISTRY_DATABASE_URL=self.postgres.url,
            RLHF_REGISTRY_BLOB_URL=f"s3://{BUCKET}/registry",
            RLHF_REGISTRY_S3_ENDPOINT_URL=self.s3_url,
            RLHF_REGISTRY_S3_ACCESS_KEY_ID=ACCESS_KEY,
            RLHF_REGISTRY_S3_SECRET_ACCESS_KEY=SECRET_KEY,
            RLHF_REGISTRY_BROKER_URL=self.broker_url,
            RLHF_REGISTRY_SIGNING_KEY_FILE=str(self.root / "signing_key.pem"),
            RLHF_REGISTRY_LOG_LEVEL="WARNING",
            RLHF_REGISTRY_DB_POOL_SIZE="4",
            RLHF_REGISTRY_RUN_LEASE_SECONDS="15",
            RLHF_REGISTRY_REAPER_INTERVAL_SECONDS="1",
            # a queued run is sent again soon after the broker comes back
            RLHF_REGISTRY_DISPATCH_INTERVAL_SECONDS="0.5",
            RLHF_REGISTRY_DISPATCH_BACKOFF_SECONDS="1",
            RLHF_REGISTRY_DISPATCH_BACKOFF_MAX_SECONDS="2",
            OMP_NUM_THREADS="1",
        )
        return env

    def settings(self) -> Settings:
        """The services' settings, for a test that works on the database directly (tokens)."""
        prefix = "RLHF_REGISTRY_"
        values = {k.removeprefix(prefix).lower(): v for k, v in self.env.items() if k.startswith(prefix)}
        return Settings.model_validate(values)

    def _child(self, name: str, argv: list[str], **kw: object) -> Process:
        process = Process(name, argv, self.root / f"{name}.log", **kw)  # type: ignore[arg-type]
        self.children[name] = process
        return process

    def build(self) -> None:
        weed = find_weed()
        if weed is None:
            missing_service("the SeaweedFS `weed` binary is neither next to python nor on PATH")
        if shutil.which("redis-server") is None:
            missing_service("redis-server is not on PATH")
        (self.root / "data").mkdir()
        self.postgres.init()
        self._child(
            "redis",
            ["redis-server", "--port", str(self.redis_port), "--bind", HOST, "--save", "", "--appendonly", "no"],
            cwd=self.root,
        )
        self._child("s3", self._weed_argv(weed), cwd=self.root / "weed", env=self._weed_env(), stop_timeout_s=3)
        (self.root / "weed").mkdir()
        for sub in ("data", "config", "home"):
            (self.root / "weed" / sub).mkdir()
        for index, port in enumerate(self.replica_ports):
            argv = [*CLI, "serve", "--no-worker", "--host", HOST, "--port", str(port)]
            self._child(f"replica{index}", argv, env=self.env)
        self._child("worker", [*CLI, "worker"], env=self.env, stop_timeout_s=15)
        self.start("redis")
        self.start("s3")
        self.cli("migrate")
        created = self.cli("admin", "create-token", "--principal", "faults-admin", "--global-admin")
        self.token = created.stdout.strip().splitlines()[-1]
        for name in ("replica0", "replica1", "worker"):
            self.start(name)

    def _weed_argv(self, weed: Path) -> list[str]:
        root = self.root / "weed"
        names = ("master", "master.port.grpc", "volume", "volume.port.grpc", "filer", "filer.port.grpc")
        ports = dict(zip(names, self._weed_ports, strict=False))
        return [
            str(weed),
            "-logtostderr",
            f"-config_dir={root / 'config'}",
            "server",
            "-s3",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            f"-dir={root / 'data'}",
            f"-master.port={ports['master']}",
            f"-master.port.grpc={ports['master.port.grpc']}",
            f"-volume.port={ports['volume']}",
            f"-volume.port.grpc={ports['volume.port.grpc']}",
            f"-filer.port={ports['filer']}",
            f"-filer.port.grpc={ports['filer.port.grpc']}",
            f"-s3.port={self._weed_ports[6]}",
            f"-s3.port.grpc={self._weed_ports[7]}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-filer.localSocket={root / 'f.sock'}",
            f"-s3.localSocket={root / 's.sock'}",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=64",
            "-volume.max=20",
            "-volume.preStopSeconds=0",
        ]

    def _weed_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WEED_") and k != "S3_EXTERNAL_URL"}
        env["HOME"] = str(self.root / "weed" / "home")
        env["TMPDIR"] = str(self.root / "weed")
        return env

    # -- control -----------------------------------------------------------------------------------

    def cli(self, *args: str, timeout_s: float = 120) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*CLI, *args], env=self.env, capture_output=True, text=True, timeout=timeout_s)
        if result.returncode != 0:
            raise StartError(f"rlhf-registry {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    def start(self, name: str, *, timeout_s: float = 60) -> None:
        """Start `name` and wait until it answers (postgres: `pg_ctl -w`)."""
        if name == "postgres":
            self.postgres.start()
            return
        child = self.children[name]
        child.start()
        wait_until(lambda: self._ready(child), timeout_s=timeout_s, what=name)

    def _ready(self, child: Process) -> bool:
        child.check_alive()
        if child.name == "redis":
            return port_open(self.redis_port)
        if child.name == "s3":
            client = s3_client(self.s3_url)
            with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                client.create_bucket(Bucket=BUCKET)
            client.put_object(Bucket=BUCKET, Key=".probe", Body=b"ok")  # a volume server has registered
            return True
        if child.name.startswith("replica"):
            port = self.replica_ports[int(child.name.removeprefix("replica"))]
            return httpx.get(f"http://{HOST}:{port}/readyz", timeout=2).status_code == 200
        return True  # the worker: its readiness shows in the runs it executes

    def stop(self, name: str) -> None:
        if name == "postgres":
            self.postgres.stop("fast")
            return
        self.children[name].stop()
        if name == "s3":
            self._remove_weed_grpc_sockets()

    def kill(self, name: str) -> None:
        if name == "postgres":
            self.postgres.kill()
            return
        self.children[name].kill()

    def heal(self) -> list[str]:
        """Start again whatever is not running (what a failed test may have left down, or what died);
        returns their names."""
        down = [] if self.postgres.running else ["postgres"]
        down += [name for name in ("redis", "s3", "replica0", "replica1", "worker") if not self.children[name].running]
        for name in down:
            self.start(name)
        return down

    def close(self, *, timeout_s: float = 5) -> None:
        """Stop everything: SIGTERM to every child at once, SIGKILL to what is left after `timeout_s`,
        then the database. Never raises for a component already gone."""
        children = [child for child in self.children.values() if child.running]
        for child in children:
            child.signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        for child in children:
            assert child.process is not None
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.process.wait(timeout=max(0.0, deadline - time.monotonic()))
        for child in children:
            with contextlib.suppress(Exception):
                child.kill()
        self._remove_weed_grpc_sockets()
        self.postgres.kill()

    def _remove_weed_grpc_sockets(self) -> None:
        # weed puts gRPC unix sockets at fixed /tmp paths named by port, and leaves them when killed
        for service, port in (("master", 1), ("volume", 3), ("filer", 5), ("s3", 7)):
            Path(f"/tmp/seaweedfs-{service}-grpc-{self._weed_ports[port]}.sock").unlink(missing_ok=True)

    def logs(self) -> str:
        parts = [f"--- {name} ---\n{child.log_tail()}" for name, child in self.children.items()]
        if self.postgres.log_path.exists():
            parts.append("--- postgres ---\n" + self.postgres.log_path.read_text(errors="replace")[-3000:])
        return "\n".join(parts)


@contextmanager
def topology() -> Iterator[Topology]:
    """The whole topology, started and ready; killed at the end whatever happens."""
    root = Path(tempfile.mkdtemp(prefix="faults-", dir="/tmp"))  # short: unix socket paths have a limit
    running = Topology(root)
    try:
        running.build()
        yield running
    finally:
        running.close()
        shutil.rmtree(root, ignore_errors=True)
