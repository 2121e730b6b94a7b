"""Start `rlhf-registry serve` on the embedded default in its own process, for benchmarks and tests.

Loopback only; the process is stopped (terminate, wait, kill) when the context exits."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

_SCRIPT = Path(sys.executable).parent / "rlhf-registry"
# The console script when the package is installed; the module where only the source tree is on the path.
CLI = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "app.cli"]
HOST = "127.0.0.1"


@dataclass
class Served:
    url: str
    token: str
    env: dict[str, str]
    process: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.process.pid


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def peak_rss_bytes(pid: int) -> int:
    """The process's peak resident set size (VmHWM) so far."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmHWM for pid {pid}")


@contextmanager
def serve(
    data_dir: Path,
    *,
    startup_timeout_s: float = 60.0,
    worker: bool = False,
    extra_env: dict[str, str] | None = None,
    principal: str = "admin",
    serve_args: Sequence[str] = (),
) -> Iterator[Served]:
    """`worker=True` also starts the embedded training worker, as `make run` does; `extra_env` adds
    `RLHF_REGISTRY_*` settings (a database or S3 store instead of the embedded default); `serve_args`
    adds options of `serve` (`--workers 2`)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLHF_REGISTRY_")}
    env["RLHF_REGISTRY_DATA_DIR"] = str(data_dir)
    env["RLHF_REGISTRY_LOG_LEVEL"] = "WARNING"
    env.update(extra_env or {})
    port = free_port()
    url = f"http://{HOST}:{port}"
    log_path = data_dir / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*CLI, "serve", "--host", HOST, "--port", str(port), *([] if worker else ["--no-worker"]), *serve_args],
            env=env,
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        try:
            deadline = time.monotonic() + startup_timeout_s
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("serve did not come up:\n" + log_path.read_text()[-3000:])
                time.sleep(0.2)
            result = subprocess.run(
                [*CLI, "admin", "create-token", "--principal", principal, "--global-admin"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            token = result.stdout.strip().splitlines()[-1]
            yield Served(url, token, {**env, "RLHF_REGISTRY_URL": url, "RLHF_REGISTRY_TOKEN": token}, process)
        finally:
            # the whole process group: serve and the worker it started
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
