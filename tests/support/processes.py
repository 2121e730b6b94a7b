"""Child processes for the fault-injection topology (tests/support/topology.py): a restartable process
in its own process group, and a PostgreSQL cluster of the test's own driven by `pg_ctl`."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.services import missing_service

HOST = "127.0.0.1"


class StartError(RuntimeError):
    """A component did not come up within its timeout."""


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (every socket held open until all are chosen)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind((HOST, 0))
            socks.append(s)
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_until(check: Callable[[], bool], *, timeout_s: float, what: str, interval_s: float = 0.2) -> None:
    deadline = time.monotonic() + timeout_s
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception as exc:  # the component is not up yet; keep the last reason for the message
            last = exc
        time.sleep(interval_s)
    raise StartError(f"{what} not ready within {timeout_s:.0f} s (last error: {last!r})")


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


def _bin_dir_of_postgres() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class Process:
    """One long-running child in its own process group, logging to a file; restartable."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    cwd: Path | None = None
    stop_timeout_s: float = 10.0
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> None:
        if self.running:
            raise RuntimeError(f"{self.name} is already running")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal(self, sig: signal.Signals) -> None:
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, sig)

    def kill(self) -> None:
        """SIGKILL, the whole process group, and reap it."""
        self.signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within `stop_timeout_s`."""
        if not self.running:
            return
        self.signal(signal.SIGTERM)
        assert self.process is not None
        try:
            self.process.wait(timeout=self.stop_timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise StartError(f"{self.name} exited with status {self.process.returncode}:\n{self.log_tail()}")

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


def _unprivileged_user() -> tuple[int, int] | None:
    """PostgreSQL refuses to run as root: where the tests run as root, the cluster runs as the
    `postgres` system user (or `nobody`)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            entry = pwd.getpwnam(name)
            return entry.pw_uid, entry.pw_gid
    missing_service("running as root and no unprivileged user to run PostgreSQL as")


class Postgres:
    """A cluster of the test's own: `pg_ctl` starts and stops it; trust auth, loopback, its own port."""

    def __init__(self, root: Path, port: int) -> None:
        bin_dir = _bin_dir_of_postgres()
        if bin_dir is None:
            missing_service("PostgreSQL server binaries (initdb, pg_ctl) not found")
        self.bin = bin_dir
        self.home = root / "pg"
        self.data = self.home / "data"
        self.port = port
        self.log_path = self.home / "postgres.log"
        self.url = f"postgresql://postgres@{HOST}:{port}/registry"
        self._user = _unprivileged_user()

    def _run(self, *argv: str, timeout_s: float = 60, check: bool = True) -> int:
        uid, gid = self._user if self._user is not None else (None, None)
        result = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            cwd=self.home,
            user=uid,
            group=gid,
            extra_groups=None if uid is None else [],
        )
        if check and result.returncode != 0:
            raise StartError(f"{' '.join(argv)} failed: {result.stdout}{result.stderr}")
        return result.returncode

    @property
    def running(self) -> bool:
        return self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "status", check=False) == 0

    def _pg_ctl(self, *args: str, timeout_s: float = 60) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), *args, timeout_s=timeout_s)

    def init(self) -> None:
        self.home.mkdir()
        if self._user is not None:
            os.chown(self.home, *self._user)
            self.home.parent.chmod(0o711)  # the cluster's user must reach its folder
        initdb = str(self.bin / "initdb")
        self._run(initdb, "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8", timeout_s=120)
        self.start()
        createdb = str(self.bin / "createdb")
        self._run(createdb, "-h", HOST, "-p", str(self.port), "-U", "postgres", "registry", timeout_s=30)

    def start(self) -> None:
        options = f"-p {self.port} -k {self.home} -c listen_addresses={HOST} -c fsync=off"
        self._pg_ctl("-w", "-t", "30", "-l", str(self.log_path), "-o", options, "start")

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("-w", "-t", "30", "-m", mode, "stop")

    def kill(self) -> None:
        """`immediate` shutdown: the postmaster and its children go at once (no checkpoint)."""
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            self.stop("immediate")
