"""API throughput and latency of rlhf-registry against a bare FastAPI app, on the same machine.

    .venv/bin/python bench/api.py [--duration 10] [--requests N] [--concurrency 8] [--json]

Starts `rlhf-registry serve` on the embedded default (a fresh temporary data dir: SQLite and a blob
folder) and `bench/bare_app.py`, both single-process uvicorn with the same settings, each on a free
loopback port, and drives both with one load generator: N concurrent keep-alive connections (default 8),
closed loop (each connection sends its next request when the previous answer has arrived).

Phases, each after a short warm-up that is not counted:

  registrations  POST /v1/projects/bench/policies, new content every time (201 expected)
  reads          GET /v1/records/{id}, a random id among those registered
  lists          GET /v1/projects/bench/policies?limit=50, a random page (cursor) of 50
  bare GET       GET  /get  of the bare app
  bare POST      POST /post of the bare app, a small JSON body like the registrations'

The load generator runs in this process, the servers in theirs: all of them share the machine's cores,
and the CPU each used is printed next to the figures, so a load generator that saturates its core (and
so understates the servers) shows. The default generator is a minimal HTTP/1.1 client on asyncio
(uvloop when installed); `--client httpx` uses one thread and one httpx.Client per connection instead.

Any transport error or non-2xx answer is an error: counted, reported, and the exit status is 1.
The servers are stopped (terminate, wait, kill) on every exit, Ctrl-C and errors included.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import math
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

HOST = "127.0.0.1"  # the only host this bench ever talks to
ROOT = Path(__file__).resolve().parent.parent
BARE_APP = Path(__file__).resolve().parent / "bare_app.py"
PROJECT = "bench"
T = TypeVar("T")

TARGET_READS = 0.50  # reads >= 50% of bare GET
TARGET_REGISTRATIONS = 0.30  # registrations >= 30% of bare POST
TARGET_P99_MS = 50.0


# --------------------------------------------------------------------------------------------------
# phases and results


@dataclass(frozen=True)
class Req:
    method: str
    path: str
    body: bytes | None = None


@dataclass
class Phase:
    name: str
    port: int
    make: Callable[[], Req]
    on_ok: Callable[[int, bytes], None] | None = None  # called with each 2xx answer when set


@dataclass
class Tally:
    """What the connections of one phase saw; merged from all of them."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0  # non-2xx answers and transport errors
    transport_errors: int = 0  # no answer at all (also counted in errors)
    error_samples: list[str] = field(default_factory=list)

    def error(self, what: str, *, transport: bool = False) -> None:
        self.errors += 1
        self.transport_errors += transport
        if len(self.error_samples) < 5:
            self.error_samples.append(what)

    def merge(self, other: Tally) -> None:
        self.latencies.extend(other.latencies)
        self.statuses.update(other.statuses)
        self.errors += other.errors
        self.transport_errors += other.transport_errors
        self.error_samples.extend(other.error_samples[: max(0, 5 - len(self.error_samples))])


@dataclass
class PhaseResult:
    name: str
    requests: int
    errors: int
    elapsed_s: float
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None
    client_cpu: float  # CPU seconds of this process (the load generator) per wall second
    server_cpu: float | None  # the same for the server under load
    other_cpu: float | None  # the rest of the machine's busy CPU: anything else running competes
    statuses: dict[str, int]
    error_samples: list[str]

    @property
    def rps(self) -> float:
        return self.requests / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def as_json(self) -> dict[str, Any]:
        return {
            "phase": self.name,
            "requests": self.requests,
            "requests_per_s": round(self.rps, 1),
            "p50_ms": _round(self.p50_ms),
            "p90_ms": _round(self.p90_ms),
            "p99_ms": _round(self.p99_ms),
            "max_ms": _round(self.max_ms),
            "errors": self.errors,
            "elapsed_s": round(self.elapsed_s, 3),
            "client_cpu_cores": round(self.client_cpu, 2),
            "server_cpu_cores": _round(self.server_cpu),
            "other_cpu_cores": _round(self.other_cpu),
            "statuses": self.statuses,
            "error_samples": self.error_samples,
        }


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list; None when it is empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class Budget:
    """When a phase stops: after `duration` seconds or `count` requests started, whichever comes first."""

    def __init__(self, duration: float, count: int | None) -> None:
        self.deadline = time.perf_counter() + duration
        self._left = count
        self._lock = threading.Lock()

    def take(self) -> bool:
        if time.perf_counter() >= self.deadline:
            return False
        if self._left is None:
            return True
        with self._lock:
            if self._left <= 0:
                return False
            self._left -= 1
            return True


# --------------------------------------------------------------------------------------------------
# load generator 1: minimal keep-alive HTTP/1.1 client on asyncio


class _Conn(asyncio.Protocol):
    """One keep-alive connection, one request at a time. Parses status, headers and the body
    (Content-Length or chunked)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not an asyncio.Transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        try:
            answer = self._parse()
        except Exception as exc:  # a malformed answer
            waiter.set_exception(exc)
            return
        if answer is not None:
            waiter.set_result(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError(f"connection closed by the server ({exc})"))

    def _parse(self) -> tuple[int, bytes, bool] | None:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return None
        lines = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length: int | None = None
        chunked = close = False
        for line in lines[1:]:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            if key == "content-length":
                length = int(value)
            elif key == "transfer-encoding":
                chunked = "chunked" in value.lower()
            elif key == "connection":
                close = "close" in value.lower()
        start = end + 4
        if chunked:
            return self._parse_chunked(status, start, close)
        length = length or 0
        if len(self.buf) < start + length:
            return None
        body = bytes(self.buf[start : start + length])
        del self.buf[: start + length]
        return status, body, close

    def _parse_chunked(self, status: int, pos: int, close: bool) -> tuple[int, bytes, bool] | None:
        parts: list[bytes] = []
        while True:
            eol = self.buf.find(b"\r\n", pos)
            if eol < 0:
                return None
            size = int(bytes(self.buf[pos:eol]).split(b";")[0], 16)
            if size == 0:
                trailer_end = self.buf.find(b"\r\n\r\n", eol)  # == eol when there are no trailers
                if trailer_end < 0:
                    return None
                del self.buf[: trailer_end + 4]
                return status, b"".join(parts), close
            if len(self.buf) < eol + 2 + size + 2:
                return None
            parts.append(bytes(self.buf[eol + 2 : eol + 2 + size]))
            pos = eol + 2 + size + 2

    async def send(self, raw: bytes, timeout: float) -> tuple[int, bytes, bool]:
        assert self.transport is not None
        waiter: asyncio.Future[tuple[int, bytes, bool]] = self.loop.create_future()
        self.waiter = waiter
        self.transport.write(raw)
        timer = self.loop.call_later(timeout, _expire, waiter, timeout)
        try:
            return await waiter
        finally:
            timer.cancel()
            self.waiter = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _expire(waiter: asyncio.Future[Any], timeout: float) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError(f"no answer within {timeout} s"))


class RawClient:
    name = "asyncio raw HTTP/1.1"

    def __init__(self, token: str, timeout: float) -> None:
        self.auth = f"Authorization: Bearer {token}\r\n".encode()
        self.timeout = timeout
        self.uvloop = _has_uvloop()
        if self.uvloop:
            self.name += " on uvloop"

    def encode(self, port: int, req: Req) -> bytes:
        head = f"{req.method} {req.path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n".encode() + self.auth
        if req.body is None:
            return head + b"\r\n"
        return (
            head
            + b"Content-Type: application/json\r\nContent-Length: "
            + str(len(req.body)).encode()
            + b"\r\n\r\n"
            + req.body
        )

    def run(self, phase: Phase, budget: Budget, concurrency: int) -> Tally:
        return _run_loop(self._run(phase, budget, concurrency), self.uvloop)

    async def _run(self, phase: Phase, budget: Budget, concurrency: int) -> Tally:
        tallies = [Tally() for _ in range(concurrency)]
        await asyncio.gather(*(self._connection(phase, budget, t) for t in tallies))
        total = Tally()
        for tally in tallies:
            total.merge(tally)
        return total

    async def _connect(self, port: int) -> _Conn:
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: _Conn(loop), HOST, port)
        return conn

    async def _connection(self, phase: Phase, budget: Budget, tally: Tally) -> None:
        conn: _Conn | None = None
        perf = time.perf_counter
        try:
            while budget.take():
                raw = self.encode(phase.port, phase.make())
                start = perf()
                try:
                    if conn is None or conn.lost:
                        conn = await self._connect(phase.port)
                    status, body, close = await conn.send(raw, self.timeout)
                except (OSError, TimeoutError, ValueError, IndexError) as exc:
                    tally.error(f"{type(exc).__name__}: {exc}", transport=True)
                    if conn is not None:
                        conn.close()
                    conn = None
                    continue
                tally.latencies.append(perf() - start)
                tally.statuses[status] += 1
                if 200 <= status < 300:
                    if phase.on_ok is not None:
                        phase.on_ok(status, body)
                else:
                    tally.error(f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}")
                if close:
                    conn.close()
                    conn = None
        finally:
            if conn is not None:
                conn.close()


def _has_uvloop() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def _run_loop(coro: Coroutine[Any, Any, T], use_uvloop: bool) -> T:
    if use_uvloop:
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


# --------------------------------------------------------------------------------------------------
# load generator 2: one thread and one httpx.Client per connection


class HttpxThreadsClient:
    name = "httpx.Client per thread"

    def __init__(self, token: str, timeout: float) -> None:
        self.headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}
        self.timeout = timeout

    def run(self, phase: Phase, budget: Budget, concurrency: int) -> Tally:
        tallies = [Tally() for _ in range(concurrency)]
        threads = [threading.Thread(target=self._connection, args=(phase, budget, t), daemon=True) for t in tallies]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)  # wakes up for Ctrl-C
        total = Tally()
        for tally in tallies:
            total.merge(tally)
        return total

    def _connection(self, phase: Phase, budget: Budget, tally: Tally) -> None:
        import httpx

        perf = time.perf_counter
        limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
        with httpx.Client(
            base_url=f"http://{HOST}:{phase.port}", headers=self.headers, timeout=self.timeout, limits=limits
        ) as client:
            while budget.take():
                req = phase.make()
                start = perf()
                try:
                    response = client.request(req.method, req.path, content=req.body)
                except httpx.HTTPError as exc:
                    tally.error(f"{type(exc).__name__}: {exc}", transport=True)
                    continue
                tally.latencies.append(perf() - start)
                tally.statuses[response.status_code] += 1
                if response.is_success:
                    if phase.on_ok is not None:
                        phase.on_ok(response.status_code, response.content)
                else:
                    tally.error(f"HTTP {response.status_code}: {response.text[:200]}")


# --------------------------------------------------------------------------------------------------
# servers


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (Linux /proc); None where that is not available."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float | None:
    """Busy CPU seconds of the whole machine since boot, all cores (Linux /proc/stat); None elsewhere."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(x) for x in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ...: busy is all but idle and iowait
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / os.sysconf("SC_CLK_TCK")


def _registry_command() -> list[str]:
    script = Path(sys.executable).parent / "rlhf-registry"
    if script.exists():
        return [sys.executable, str(script)]
    return [sys.executable, "-c", "from app.cli import main; main()"]


def _registry_env(data_dir: Path, log_level: str | None) -> dict[str, str]:
    # The embedded default: no RLHF_REGISTRY_* setting from the caller's environment leaks in.
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLHF_REGISTRY_")}
    env["RLHF_REGISTRY_DATA_DIR"] = str(data_dir)
    if log_level:
        env["RLHF_REGISTRY_LOG_LEVEL"] = log_level
    return env


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def start_server(
    stack: contextlib.ExitStack, name: str, cmd: list[str], env: dict[str, str], port: int, log: Path
) -> Server:
    log_file = stack.enter_context(log.open("wb"))
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches this process only; it stops the server itself
    )
    server = Server(name, proc, port, log)
    stack.callback(stop_server, server)
    return server


def stop_server(server: Server) -> None:
    proc = server.proc
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def wait_ready(server: Server, path: str, timeout: float = 60.0) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with status {server.proc.returncode}:\n{server.log_tail()}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"http://{HOST}:{server.port}{path}", timeout=2.0).status_code == 200:
                return
        time.sleep(0.1)
    raise RuntimeError(f"{server.name} not ready after {timeout} s:\n{server.log_tail()}")


def run_cli(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [*_registry_command(), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0:
        raise RuntimeError(f"rlhf-registry {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout


# --------------------------------------------------------------------------------------------------
# the bench


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def measure(
    client: RawClient | HttpxThreadsClient, phase: Phase, server: Server, args: argparse.Namespace
) -> PhaseResult:
    if args.warmup > 0:
        client.run(phase, Budget(args.warmup, None), args.concurrency)
    all0, cpu0, srv0, wall0 = (
        machine_busy_seconds(),
        time.process_time(),
        cpu_seconds(server.proc.pid),
        time.perf_counter(),
    )
    tally = client.run(phase, Budget(args.duration, args.requests), args.concurrency)
    all1, cpu1, srv1, wall1 = (
        machine_busy_seconds(),
        time.process_time(),
        cpu_seconds(server.proc.pid),
        time.perf_counter(),
    )
    if server.proc.poll() is not None:
        raise RuntimeError(f"{server.name} died during {phase.name}:\n{server.log_tail()}")
    elapsed = wall1 - wall0
    lat = sorted(tally.latencies)
    p50, p90, p99 = (None if v is None else v * 1000 for v in (percentile(lat, q) for q in (0.5, 0.9, 0.99)))
    result = PhaseResult(
        name=phase.name,
        requests=sum(tally.statuses.values()) + tally.transport_errors,
        errors=tally.errors,
        elapsed_s=elapsed,
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        max_ms=lat[-1] * 1000 if lat else None,
        client_cpu=(cpu1 - cpu0) / elapsed,
        server_cpu=None if srv0 is None or srv1 is None else (srv1 - srv0) / elapsed,
        other_cpu=None
        if None in (all0, all1, srv0, srv1)
        else max(0.0, (all1 - all0 - (cpu1 - cpu0) - (srv1 - srv0)) / elapsed),  # type: ignore[operator]
        statuses={str(k): v for k, v in sorted(tally.statuses.items())},
        error_samples=tally.error_samples,
    )
    log(
        f"  {phase.name:<14} {result.rps:8.1f} req/s  p50 {_fmt(result.p50_ms)} ms"
        f"  p99 {_fmt(result.p99_ms)} ms  errors {result.errors}"
    )
    return result


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def registry_phases(port: int, ids: list[str], created: Counter[str]) -> Iterator[Phase]:
    """Yields the registry phases one at a time: each needs what the one before registered."""
    seq = itertools.count(1)

    def make_registration() -> Req:
        n = next(seq)
        # New content every time: max_session_minutes is unique, gold_share_min varies in [0, 1].
        spec = {"gold_share_min": (n * 7919 % 1000) / 1000, "max_session_minutes": n}
        return Req("POST", f"/v1/projects/{PROJECT}/policies", json.dumps({"spec": spec}).encode())

    def on_registered(status: int, body: bytes) -> None:
        created["201" if status == 201 else "existing"] += 1
        ids.append(json.loads(body)["id"])

    yield Phase("registrations", port, make_registration, on_registered)

    if not ids:
        raise RuntimeError("no record was registered; nothing to read")
    choice = random.choice
    yield Phase("reads", port, lambda: Req("GET", f"/v1/records/{choice(ids)}"))


def collect_cursors(port: int, token: str) -> list[str]:
    """The query strings of every page of 50 of the policy list, walked once in order."""
    import httpx

    pages: list[str] = []
    cursor: str | None = None
    with httpx.Client(base_url=f"http://{HOST}:{port}", headers={"authorization": f"Bearer {token}"}) as c:
        while True:
            query = "limit=50" + (f"&cursor={cursor}" if cursor else "")
            response = c.get(f"/v1/projects/{PROJECT}/policies?{query}", timeout=30)
            response.raise_for_status()
            pages.append(query)
            cursor = response.json().get("next_cursor")
            if not cursor:
                return pages


def bench(args: argparse.Namespace, stack: contextlib.ExitStack) -> dict[str, Any]:
    import httpx

    data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rlhf-bench-")))
    env = _registry_env(data_dir / "data", args.server_log_level)
    log(f"data dir {data_dir / 'data'} (embedded SQLite + blob folder)")
    run_cli(["migrate"], env)
    token = run_cli(["admin", "create-token", "--principal", "admin", "--global-admin"], env).strip().splitlines()[-1]

    port = free_port()
    serve = [*_registry_command(), "serve", "--host", HOST, "--port", str(port), "--no-worker"]
    registry = start_server(stack, "rlhf-registry serve", serve, env, port, data_dir / "registry.log")
    port = free_port()
    serve = [sys.executable, str(BARE_APP), "--host", HOST, "--port", str(port)]
    bare = start_server(stack, "bare app", serve, dict(os.environ), port, data_dir / "bare.log")
    wait_ready(registry, "/healthz")
    wait_ready(bare, "/get")
    log(
        f"registry on {HOST}:{registry.port} (pid {registry.proc.pid}), bare app on {HOST}:{bare.port} "
        f"(pid {bare.proc.pid})"
    )

    response = httpx.post(
        f"http://{HOST}:{registry.port}/v1/projects",
        json={"name": PROJECT, "description": ""},
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    if response.status_code != 201:
        raise RuntimeError(f"creating project {PROJECT!r}: HTTP {response.status_code} {response.text[:500]}")

    client: RawClient | HttpxThreadsClient = (
        RawClient(token, args.timeout) if args.client == "raw" else HttpxThreadsClient(token, args.timeout)
    )
    cores = os.cpu_count() or 1
    log(
        f"load generator: {client.name}, {args.concurrency} keep-alive connections; "
        f"client and servers share {cores} cores"
    )

    results: list[PhaseResult] = []
    ids: list[str] = []
    created: Counter[str] = Counter()
    for phase in registry_phases(registry.port, ids, created):
        results.append(measure(client, phase, registry, args))
    pages = collect_cursors(registry.port, token)
    results.append(
        measure(
            client,
            Phase(
                "lists",
                registry.port,
                lambda: Req("GET", f"/v1/projects/{PROJECT}/policies?{random.choice(pages)}"),
            ),
            registry,
            args,
        )
    )
    prefix = "/async" if args.bare_async else ""
    post_body = json.dumps({"spec": {"gold_share_min": 0.07, "max_session_minutes": 90}}).encode()
    results.append(measure(client, Phase("bare GET", bare.port, lambda: Req("GET", f"{prefix}/get")), bare, args))
    results.append(
        measure(
            client,
            Phase("bare POST", bare.port, lambda: Req("POST", f"{prefix}/post", post_body)),
            bare,
            args,
        )
    )

    by_name = {r.name: r for r in results}

    def ratio(a: str, b: str) -> float | None:
        return by_name[a].rps / by_name[b].rps if by_name[b].rps > 0 else None

    ratios: list[dict[str, Any]] = []
    for label, a, b, target in (
        ("registrations / bare POST", "registrations", "bare POST", TARGET_REGISTRATIONS),
        ("reads / bare GET", "reads", "bare GET", TARGET_READS),
        ("lists / bare GET", "lists", "bare GET", None),
    ):
        value = ratio(a, b)
        meets = None if target is None or value is None else value >= target
        ratios.append({"name": label, "value": _round(value, 3), "target": target, "meets_target": meets})
    errors = sum(r.errors for r in results)
    return {
        "machine": {"cpu_count": cores, "note": f"load generator and servers share these {cores} cores"},
        "client": client.name,
        "concurrency": args.concurrency,
        "duration_s": args.duration,
        "requests_limit": args.requests,
        "warmup_s": args.warmup,
        "bare_handlers": "async def" if args.bare_async else "def (thread pool, like the registry's routes)",
        "phases": [r.as_json() for r in results],
        "ratios": ratios,
        "p99_target_ms": TARGET_P99_MS,
        "p99_meets_target": {r.name: r.p99_ms is not None and r.p99_ms < TARGET_P99_MS for r in results},
        "registrations": {"records": len(ids), "created": created["201"], "existing": created["existing"]},
        "list_pages": len(pages),
        "errors": errors,
        "ok": errors == 0 and created["existing"] == 0,
    }


def print_table(summary: dict[str, Any]) -> None:
    out = sys.stdout
    print(
        f"\nrlhf-registry API bench: {summary['client']}, {summary['concurrency']} keep-alive connections, "
        f"{summary['duration_s']} s per phase"
        + (f" or {summary['requests_limit']} requests" if summary["requests_limit"] else ""),
        file=out,
    )
    print(
        f"NOTE: {summary['machine']['note']}; CPU columns are cores used (1.00 = one core busy): "
        "client = this load generator, server = the server under load, other = everything else",
        file=out,
    )
    print(f"bare app handlers: {summary['bare_handlers']}\n", file=out)
    header = (
        f"{'phase':<15}{'requests':>9}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'p99<50':>8}{'errors':>8}"
        f"{'client CPU':>12}{'server CPU':>12}{'other CPU':>11}"
    )
    print(header, file=out)
    print("-" * len(header), file=out)
    for p in summary["phases"]:
        p99_ok = "yes" if summary["p99_meets_target"][p["phase"]] else "NO"
        print(
            f"{p['phase']:<15}{p['requests']:>9}{p['requests_per_s']:>10.1f}{_fmt(p['p50_ms']):>9}"
            f"{_fmt(p['p99_ms']):>9}{p99_ok:>8}{p['errors']:>8}{_fmt(p['client_cpu_cores']):>12}"
            f"{_fmt(p['server_cpu_cores']):>12}{_fmt(p['other_cpu_cores']):>11}",
            file=out,
        )
    print(file=out)
    for item in summary["ratios"]:
        value = "-" if item["value"] is None else f"{item['value'] * 100:.1f}%"
        if item["target"] is None:
            target = "(no target)"
        else:
            target = f"target >= {item['target'] * 100:.0f}%  {'met' if item['meets_target'] else 'MISSED'}"
        print(f"{item['name']:<28}{value:>8}   {target}", file=out)
    print(
        f"{'p99 latency':<28}{'':>8}   target < {summary['p99_target_ms']:.0f} ms in every phase  "
        f"{'met' if all(summary['p99_meets_target'].values()) else 'MISSED'}",
        file=out,
    )
    for p in summary["phases"]:
        if p["client_cpu_cores"] >= 0.9:
            print(
                f"WARNING: the load generator used {p['client_cpu_cores']:.2f} cores in {p['phase']}: "
                "it may be the bottleneck there",
                file=out,
            )
        if (p["other_cpu_cores"] or 0.0) >= 0.25:
            print(
                f"WARNING: other processes used {p['other_cpu_cores']:.2f} cores during {p['phase']}: "
                "its figures are understated; rerun on a quiet machine",
                file=out,
            )
    reg = summary["registrations"]
    print(
        f"\n{reg['records']} records registered ({reg['created']} created, "
        f"{reg['existing']} already existing), {summary['list_pages']} list pages",
        file=out,
    )
    if summary["errors"]:
        print(f"FAILED: {summary['errors']} request(s) failed", file=out)
        for p in summary["phases"]:
            for sample in p["error_samples"]:
                print(f"  {p['phase']}: {sample}", file=out)
    elif reg["existing"]:
        print("FAILED: some registrations did not create a new record", file=out)
    else:
        print("all requests succeeded (2xx)", file=out)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Throughput and latency of rlhf-registry against a bare FastAPI app (loopback only)."
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured phase (default 10)")
    parser.add_argument(
        "--requests",
        type=int,
        default=None,
        help="stop a phase after this many requests, if that comes before --duration",
    )
    parser.add_argument("--warmup", type=float, default=1.0, help="uncounted seconds before each phase (default 1)")
    parser.add_argument("--concurrency", type=int, default=8, help="keep-alive connections (default 8)")
    parser.add_argument(
        "--client",
        choices=["raw", "httpx"],
        default="raw",
        help="load generator: asyncio raw HTTP/1.1 (default) or one httpx.Client thread each",
    )
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before a request counts as failed")
    parser.add_argument(
        "--bare-async",
        action="store_true",
        help="bare app handlers as `async def` instead of `def` (the registry's style)",
    )
    parser.add_argument(
        "--server-log-level",
        default=None,
        help="RLHF_REGISTRY_LOG_LEVEL for the server (default: the server's own, INFO)",
    )
    parser.add_argument("--json", action="store_true", help="print a JSON summary instead of the table")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.concurrency < 1 or (args.requests is not None and args.requests < 1):
        parser.error("--duration and --requests must be positive, --concurrency at least 1")
    return args


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)  # stop the servers on `kill` too, through the finally below
    try:
        with contextlib.ExitStack() as stack:
            summary = bench(args, stack)
            log("stopping servers")
    except KeyboardInterrupt:
        log("interrupted; servers stopped")
        return 130
    except RuntimeError as exc:
        log(f"error: {exc}")
        return 2
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print_table(summary)
    return 0 if summary["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
