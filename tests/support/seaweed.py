"""A throwaway SeaweedFS (`weed server -s3`) for tests, listening on 127.0.0.1 only.

SeaweedFS with no identity configuration accepts any access key / secret key pair (auth is off), so
the client below signs with dummy credentials. Every port is picked free on loopback; all data, logs
and the HTTP unix sockets live in one temporary directory that `stop()` removes.

`weed server` also opens gRPC unix sockets at hard-coded `/tmp/seaweedfs-<service>-grpc-<port>.sock`
paths (no flag moves them); SeaweedFS removes them on a clean exit, and `stop()` removes ours if the
server had to be killed.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.config import Config

from tests.support.services import missing_service

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

ACCESS_KEY = "seaweed-test"
SECRET_KEY = "seaweed-test-secret"
REGION = "us-east-1"
LOOPBACK = "127.0.0.1"
GRPC_SERVICES = ("master", "volume", "filer", "s3")


class SeaweedStartError(RuntimeError):
    """The binary is missing or the server did not come up."""


def find_weed() -> Path | None:
    beside_python = Path(sys.executable).parent / "weed"
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return beside_python
    on_path = shutil.which("weed")
    return Path(on_path) if on_path else None


def _free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (all sockets held open until every port is chosen)."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((LOOPBACK, 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _die_with_parent() -> None:
    """Linux: have the kernel SIGKILL weed if the test process dies without running `stop()`."""
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)


def s3_client(endpoint_url: str) -> S3Client:
    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        config=Config(
            signature_version="s3v4",
            s3={"addressing_style": "path"},
            retries={"mode": "standard", "max_attempts": 2},
            connect_timeout=2,
            read_timeout=30,
        ),
    )


class SeaweedServer:
    """`with SeaweedServer() as sw: sw.client().put_object(Bucket=sw.bucket, ...)`."""

    def __init__(
        self,
        *,
        binary: Path | None = None,
        bucket: str = "rlhf-test",
        startup_timeout_s: float = 60.0,
        stop_timeout_s: float = 3.0,
    ) -> None:
        if len(bucket) < 3:
            raise ValueError("S3 bucket names need at least 3 characters")
        self.binary = binary or find_weed()
        self.bucket = bucket
        self.startup_timeout_s = startup_timeout_s
        self.stop_timeout_s = stop_timeout_s
        self.access_key = ACCESS_KEY
        self.secret_key = SECRET_KEY
        self.region = REGION
        self.s3_port = 0
        self.endpoint_url = ""
        self._ports: dict[str, int] = {}
        self._root: Path | None = None
        self._log_path: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> SeaweedServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def start(self) -> SeaweedServer:
        if self.binary is None:
            raise SeaweedStartError("the SeaweedFS `weed` binary is neither next to python nor on PATH")
        if not (self.binary.is_file() and os.access(self.binary, os.X_OK)):
            raise SeaweedStartError(f"{self.binary} is not an executable file")
        if self._proc is not None:
            raise RuntimeError("SeaweedServer already started")
        for attempt in (1, 2):
            try:
                self._launch()
                self._wait_until_ready()
                return self
            except SeaweedStartError:
                # A free port can be taken between picking it and weed binding it: retry once if weed died.
                died = self._proc is not None and self._proc.poll() is not None
                self.stop()
                if attempt == 2 or not died:
                    raise
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def _command(self, root: Path) -> list[str]:
        p = self._ports
        return [
            str(self.binary),
            "-logtostderr",  # no glog files in $TMPDIR; everything goes to our log file
            f"-config_dir={root / 'config'}",
            "server",
            "-s3",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
            f"-dir={root / 'data'}",
            f"-master.port={p['master']}",
            f"-master.port.grpc={p['master_grpc']}",
            f"-volume.port={p['volume']}",
            f"-volume.port.grpc={p['volume_grpc']}",
            f"-filer.port={p['filer']}",
            f"-filer.port.grpc={p['filer_grpc']}",
            f"-s3.port={p['s3']}",
            f"-s3.port.grpc={p['s3_grpc']}",
            "-s3.port.iceberg=0",  # otherwise listens on 8181
            "-s3.port.lance=0",  # otherwise listens on 9101
            f"-filer.localSocket={root / 'f.sock'}",
            f"-s3.localSocket={root / 's.sock'}",
            "-master.telemetry=false",
            "-master.volumeSizeLimitMB=64",
            "-volume.max=100",
            "-volume.preStopSeconds=0",
        ]

    def _launch(self) -> None:
        names = ["master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc", "s3", "s3_grpc"]
        self._ports = dict(zip(names, _free_ports(len(names)), strict=True))
        self.s3_port = self._ports["s3"]
        self.endpoint_url = f"http://{LOOPBACK}:{self.s3_port}"
        # A short root keeps the unix socket paths under the 108-byte limit.
        root = Path(tempfile.mkdtemp(prefix="seaweed-", dir="/tmp" if Path("/tmp").is_dir() else None))
        self._root = root
        for sub in ("data", "config", "home"):
            (root / sub).mkdir()
        self._log_path = root / "weed.log"
        # Isolate from the developer's SeaweedFS config: viper reads ./, $HOME/.seaweedfs and WEED_* vars.
        env = {k: v for k, v in os.environ.items() if not k.startswith("WEED_") and k != "S3_EXTERNAL_URL"}
        env["HOME"] = str(root / "home")
        env["TMPDIR"] = str(root)
        with self._log_path.open("wb") as log:
            try:
                self._proc = subprocess.Popen(
                    self._command(root),
                    cwd=root,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                )
            except OSError as exc:
                raise SeaweedStartError(f"cannot run {self.binary}: {exc}") from exc

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        last_error = "no attempt yet"
        client = self.client()
        stage = "waiting for the S3 port"
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                raise SeaweedStartError(
                    f"weed exited with status {self._proc.returncode} while {stage}\n{self.log_tail()}"
                )
            try:
                if stage == "waiting for the S3 port":
                    self._http_probe()
                    stage = "creating the bucket"
                if stage == "creating the bucket":
                    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
                        client.create_bucket(Bucket=self.bucket)
                    stage = "writing a probe object"
                # The bucket exists before a volume server has registered; a write proves data can land.
                client.put_object(Bucket=self.bucket, Key=".probe", Body=b"ok")
                client.delete_object(Bucket=self.bucket, Key=".probe")
                return
            except Exception as exc:
                last_error = f"{type(exc).__name__}: {exc}"
                time.sleep(0.25)
        raise SeaweedStartError(
            f"SeaweedFS S3 at {self.endpoint_url} not ready after {self.startup_timeout_s:.0f}s "
            f"({stage}; last error: {last_error})\n{self.log_tail()}"
        )

    def _http_probe(self) -> None:
        try:
            with urllib.request.urlopen(self.endpoint_url + "/", timeout=2):
                pass
        except urllib.error.HTTPError:
            pass  # any HTTP answer means the gateway is listening

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """The server frozen (SIGSTOP to its process group) inside the block, continued after it: requests
        hang rather than being refused, the outage a client's timeouts must handle."""
        assert self._proc is not None, "the server is not running"
        os.killpg(self._proc.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.killpg(self._proc.pid, signal.SIGCONT)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            # weed takes 15+ s to shut down gracefully (it waits on heartbeats and gRPC drains).
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        for service in GRPC_SERVICES:
            port = self._ports.get(f"{service}_grpc")
            if port:
                Path(f"/tmp/seaweedfs-{service}-grpc-{port}.sock").unlink(missing_ok=True)
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._root = None

    # -- helpers ---------------------------------------------------------------------------------

    def client(self) -> S3Client:
        if not self.endpoint_url:
            raise RuntimeError("SeaweedServer is not started")
        return s3_client(self.endpoint_url)

    def log_tail(self, lines: int = 40) -> str:
        if self._log_path is None or not self._log_path.exists():
            return "(no weed log)"
        text = self._log_path.read_text(errors="replace").splitlines()
        if len(text) <= lines + 10:
            return "--- weed log ---\n" + "\n".join(text)
        # The head names a bad flag or early failure; the tail shows where it got to.
        return "\n".join(["--- weed log head ---", *text[:10], "--- weed log tail ---", *text[-lines:]])


@pytest.fixture(scope="session")
def seaweed_s3() -> Iterator[SeaweedServer]:
    """One SeaweedFS S3 server for the whole session (skipped, or failed under CI, if unavailable)."""
    server = SeaweedServer()
    try:
        server.start()
    except SeaweedStartError as exc:
        missing_service(f"SeaweedFS S3 server unavailable: {exc}")
    try:
        yield server
    finally:
        server.stop()
