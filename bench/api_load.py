"""The load generator of `bench/api.py`: closed-loop keep-alive HTTP/1.1 clients on one asyncio loop.

Each of N connections sends its next request when the previous answer has arrived. The client is a
minimal HTTP/1.1 protocol on asyncio (uvloop when installed): no per-request objects beyond the bytes
sent and the answer parsed, so the generator costs a fraction of what the server under test costs, and
the CPU it did use is measured and printed next to every figure."""

from __future__ import annotations

import asyncio
import math
import socket
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

HOST = "127.0.0.1"  # the only host this bench ever talks to
MAX_SAMPLES = 5


@dataclass(frozen=True)
class Req:
    method: str
    path: str
    body: bytes | None = None


@dataclass
class Phase:
    """One measured workload: `make(n)` builds the n-th request; `on_ok` sees every 2xx answer."""

    name: str
    group: str  # "registration", "read", "list", "lineage", "bare GET", "bare POST", ...
    port: int
    make: Callable[[int], Req]
    on_ok: Callable[[bytes], None] | None = None
    headers: bytes = b""
    expect: int | None = None  # the one status that counts as success; None: any 2xx


@dataclass
class Tally:
    """What the connections of one phase saw."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0  # non-2xx answers and transport errors
    error_samples: list[str] = field(default_factory=list)

    def error(self, what: str) -> None:
        self.errors += 1
        if len(self.error_samples) < MAX_SAMPLES:
            self.error_samples.append(what)


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile of an ascending list; None when it is empty."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class _Conn(asyncio.Protocol):
    """One keep-alive connection, one request at a time; parses status, headers and a Content-Length
    or chunked body."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: Any = None  # uvloop's transports are not asyncio's classes
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes, bool]] | None = None
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
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
        except (ValueError, IndexError) as exc:  # a malformed answer
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
        length = 0
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


def encode(port: int, req: Req, headers: bytes) -> bytes:
    head = f"{req.method} {req.path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n".encode() + headers
    if req.body is None:
        return head + b"\r\n"
    return head + b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(req.body) + req.body


class LoadGenerator:
    """Runs a phase for a wall-clock budget with `concurrency` keep-alive connections."""

    def __init__(self, timeout: float = 30.0) -> None:
        self.timeout = timeout
        try:
            import uvloop
        except ImportError:
            self.loop: asyncio.AbstractEventLoop = asyncio.new_event_loop()
            self.name = "asyncio raw HTTP/1.1 keep-alive client"
        else:
            self.loop = uvloop.new_event_loop()
            self.name = "asyncio raw HTTP/1.1 keep-alive client on uvloop"
        self._seq = 0

    def close(self) -> None:
        self.loop.close()

    def run(self, phase: Phase, seconds: float, concurrency: int) -> Tally:
        deadline = time.perf_counter() + seconds
        tallies = [Tally() for _ in range(concurrency)]
        self.loop.run_until_complete(self._all(phase, deadline, tallies))
        total = Tally()
        for tally in tallies:
            total.latencies.extend(tally.latencies)
            total.statuses.update(tally.statuses)
            total.errors += tally.errors
            total.error_samples.extend(tally.error_samples[: MAX_SAMPLES - len(total.error_samples)])
        return total

    async def _all(self, phase: Phase, deadline: float, tallies: list[Tally]) -> None:
        await asyncio.gather(*(self._connection(phase, deadline, tally) for tally in tallies))

    def _next(self) -> int:
        self._seq += 1  # one thread, one loop: no lock needed
        return self._seq

    async def _connection(self, phase: Phase, deadline: float, tally: Tally) -> None:
        conn: _Conn | None = None
        perf = time.perf_counter
        try:
            while perf() < deadline:
                raw = encode(phase.port, phase.make(self._next()), phase.headers)
                start = perf()
                try:
                    if conn is None or conn.lost:
                        _, conn = await self.loop.create_connection(lambda: _Conn(self.loop), HOST, phase.port)
                    status, body, close = await conn.send(raw, self.timeout)
                except (OSError, TimeoutError, ValueError, IndexError) as exc:
                    tally.error(f"{type(exc).__name__}: {exc}")
                    if conn is not None:
                        conn.close()
                    conn = None
                    continue
                tally.latencies.append(perf() - start)
                tally.statuses[status] += 1
                if status == phase.expect or (phase.expect is None and 200 <= status < 300):
                    if phase.on_ok is not None:
                        phase.on_ok(body)
                else:
                    tally.error(f"HTTP {status}: {body[:300].decode('utf-8', 'replace')}")
                if close:
                    conn.close()
                    conn = None
        finally:
            if conn is not None:
                conn.close()
