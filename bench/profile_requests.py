"""CPU per request of every phase `bench/api.py` measures, in one process, with no network.

    .venv/bin/python bench/profile_requests.py                         # SQLite in a temporary folder
    .venv/bin/python bench/profile_requests.py --pg                    # a fresh PostgreSQL database
    .venv/bin/python bench/profile_requests.py -n 200 --profile "read by id" --top 30
    .venv/bin/python bench/profile_requests.py --only "read by id" "register policy" --repeat 3

Throughput on a shared machine says as much about the neighbours as about the code; CPU time does not.
This builds the app with `app.main.create_app` on a fresh database (a temporary SQLite file, or with
`--pg` a PostgreSQL database created on RLHF_BENCH_PG_URL's server and dropped afterwards), registers
the records the phases cite (`bench.api_bodies.set_up_with`, not measured), then sends each phase's
requests straight into the ASGI app from an event loop in this process (uvloop, as `serve` runs;
one request at a time, or `--clients N` concurrent senders): the whole request path (middleware,
routing, validation, dependencies, the thread pool, the database driver, serialisation) and none of a
socket's or an HTTP parser's. The phases and their bodies are
`bench/api.py`'s (`bench.api_bodies`); `bench/bare_app.py` runs under the same driver as the baseline.

For each phase it prints, per request: the CPU milliseconds of this process (`time.process_time`, every
thread, the thread pool's included), the CPU milliseconds of the PostgreSQL backends serving the
database (read from /proc, so only on the machine that runs PostgreSQL; `-` on SQLite), the wall
milliseconds, and the bare app's CPU per request over the phase's (registrations against the bare
POST, reads and lists against the bare GET): the share of the bare app's throughput a CPU-bound server
would reach on one core, which is what `bench/api.py`'s ratio measures with a network in between.
`--repeat R` runs each phase R times and shows the run that cost least (the one other processes on a
shared machine disturbed least); `--only PHASE...` measures some phases (registering two records of
each kind still, for the reads: list pages are then short, so measure lists in a full run).

The app's background loops (the audit sequencer, the reaper, the run outbox) are not started: a
request's cost is measured, not theirs. The audit events the registrations write stay queued for
the sequencer, as on a server whose sequencer runs in another process.

`--profile PHASE` runs that phase once more under cProfile, in every thread (the thread pool's worker
threads too: each event loop has a pool of its own, so they start inside the profiled run, each
profiled from its start) with each thread's own CPU clock, and prints the `--top` functions by own time
and by cumulative time. cProfile adds a cost to every call; for proportions closer to the truth,
sample instead: `py-spy record --gil -f raw -o out.txt -- .venv/bin/python bench/profile_requests.py`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import datetime as dt
import io
import os
import pstats
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/profile_requests.py`

import uvloop
from fastapi.testclient import TestClient
from starlette.types import ASGIApp, Message

from app.access import service as access_service
from app.core import migrate
from app.core.settings import Settings
from app.main import create_app
from app.state import AppState
from bench import api_bodies as bodies
from bench.api_load import Phase, Req
from bench.api_servers import PgBackends, fresh_database, pids_cpu
from bench.bare_app import app as bare_app

BARE_POST_BYTES = 600


# --------------------------------------------------------------------------------------------------
# the driver: one request at a time, straight into the ASGI app


async def call(app: ASGIApp, req: Req, token: str | None) -> tuple[int, bytes]:
    """Send `req` to `app` as uvicorn would (an HTTP/1.1 scope, the body in one message) and return the
    status and the body of the answer."""
    body = req.body or b""
    path, _, query = req.path.partition("?")
    headers = [(b"host", b"bench"), (b"user-agent", b"profile-requests"), (b"accept", b"*/*")]
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    if req.body is not None:
        headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": req.method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent = False
    done = asyncio.Event()

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()  # as a connection that stays open until the answer is sent
        return {"type": "http.disconnect"}

    status = 0
    chunks: list[bytes] = []

    async def send(message: Message) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                done.set()

    await app(scope, receive, send)
    return status, b"".join(chunks)


@dataclass
class Figure:
    phase: str
    baseline: str  # the bare phase it is compared with; "" for the bare phases themselves
    requests: int
    cpu_ms: float
    db_cpu_ms: float | None
    wall_ms: float


async def run_phase(app: ASGIApp, phase: Phase, token: str | None, first: int, count: int, clients: int = 1) -> None:
    """Requests `first` .. `first + count - 1` of `phase`, from `clients` concurrent senders that each
    send their next request when their previous one is answered; any other status than the phase
    expects stops the run with the answer."""
    numbers = iter(range(first, first + count))

    async def client() -> None:
        for n in numbers:
            req = phase.make(n)
            status, answer = await call(app, req, token)
            ok = status == phase.expect if phase.expect is not None else 200 <= status < 300
            if not ok:
                raise RuntimeError(f"{phase.name}: {req.method} {req.path}: HTTP {status} {answer[:1000]!r}")
            if phase.on_ok is not None:
                phase.on_ok(answer)

    await asyncio.gather(*(client() for _ in range(clients)))


class Measurer:
    def __init__(
        self, app: ASGIApp, token: str | None, n: int, warmup: int, db: PgBackends | None, clients: int = 1
    ) -> None:
        self.app = app
        self.clients = clients
        self.token = token
        self.n = n
        self.warmup = warmup
        self.db = db
        self.sent: dict[str, int] = {}  # requests sent per phase name: each request is new

    def next_index(self, phase: Phase, count: int) -> int:
        first = self.sent.get(phase.name, 1)  # as bench/api.py, from 1
        self.sent[phase.name] = first + count
        return first

    def run(self, phase: Phase, count: int, first: int | None = None) -> None:
        """`count` requests of `phase` on a new event loop (uvloop, as `serve` runs), so with a thread
        pool of its own."""
        first = self.next_index(phase, count) if first is None else first
        uvloop.run(run_phase(self.app, phase, self.token, first, count, self.clients))

    def measure(self, phase: Phase, baseline: str = "", repeat: int = 1) -> Figure:
        """The phase's cost per request: the least of `repeat` runs of `n` requests (on a shared machine
        the least is the run that other processes disturbed least)."""
        self.run(phase, self.warmup)
        return min((self._once(phase, baseline) for _ in range(repeat)), key=lambda f: f.cpu_ms)

    def _once(self, phase: Phase, baseline: str) -> Figure:
        first = self.next_index(phase, self.n)
        db_before = pids_cpu(self.db.pids()) if self.db is not None else {}
        cpu, wall = time.process_time(), time.perf_counter()
        self.run(phase, self.n, first)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        db_ms = None
        if self.db is not None:
            after = pids_cpu(self.db.pids())
            db_ms = sum(t - db_before.get(pid, 0.0) for pid, t in after.items()) * 1000 / self.n
        return Figure(phase.name, baseline, self.n, cpu * 1000 / self.n, db_ms, wall * 1000 / self.n)

    def profile(self, phase: Phase, top: int) -> str:
        """`phase` under cProfile in every thread. Each run has a thread pool of its own, so the pool's
        threads start inside the profiled run, each with a profiler of its own."""
        profiles: list[cProfile.Profile] = []
        lock = threading.Lock()

        def start_in_thread(*_: Any) -> None:
            profile = cProfile.Profile(time.thread_time)
            with lock:
                profiles.append(profile)
            profile.enable()  # replaces this hook for the rest of the thread's life

        main = cProfile.Profile(time.thread_time)
        threading.setprofile(start_in_thread)
        try:
            first = self.next_index(phase, self.n)
            main.enable()
            self.run(phase, self.n, first)
            main.disable()
        finally:
            threading.setprofile(None)  # None removes the hook (documented)
        stats = pstats.Stats(main, stream=(out := io.StringIO()))
        with lock:
            for profile in profiles:
                stats.add(profile)
        stats.strip_dirs()
        out.write(f"cProfile of {self.n} requests of {phase.name!r} ({len(profiles)} pool thread(s))\n")
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(top)
        return out.getvalue()


# --------------------------------------------------------------------------------------------------
# the app under test


@contextlib.contextmanager
def database(pg: bool, workdir: Path) -> Iterator[tuple[str, PgBackends | None]]:
    if not pg:
        yield f"sqlite:///{workdir / 'registry.db'}", None
        return
    with fresh_database() as (url, name):
        db = PgBackends(name)
        try:
            yield url, db
        finally:
            db.close()


def build(database_url: str, workdir: Path, log_level: str) -> tuple[AppState, str]:
    """A migrated database, the app's state on it, and a global admin's token."""
    migrate.upgrade(database_url)
    settings = Settings(data_dir=workdir, database_url=database_url, log_level=log_level)
    state = AppState.build(settings)
    uow = state.unit_of_work(request_id="profile-requests")
    try:
        admin = access_service.get_or_create_principal(uow, "admin", actor="bench", global_admin=True)
        token = access_service.create_token(uow, admin, actor="bench")
        uow.commit()
    finally:
        uow.close()
    return state, token


def print_figures(figures: list[Figure], title: str) -> None:
    bare = {f.phase: f.cpu_ms for f in figures if not f.baseline}
    print(title)
    print(f"{'phase':24} {'n':>5} {'cpu ms':>8} {'pg ms':>7} {'wall ms':>8} {'x bare':>7}")
    print("-" * 64)
    for f in figures:
        ratio = f"{bare[f.baseline] / f.cpu_ms:6.0%}" if f.baseline in bare else ""
        db = f"{f.db_cpu_ms:7.2f}" if f.db_cpu_ms is not None else f"{'-':>7}"
        print(f"{f.phase:24} {f.requests:5d} {f.cpu_ms:8.2f} {db} {f.wall_ms:8.2f} {ratio:>7}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-n", type=int, default=500, help="measured requests per phase (default 500)")
    parser.add_argument("--warmup", type=int, default=50, help="unmeasured requests before each phase")
    parser.add_argument("--clients", type=int, default=1, help="concurrent senders (default 1: one at a time)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of -n per phase; the least is shown")
    parser.add_argument("--pg", action="store_true", help="a fresh PostgreSQL database instead of SQLite")
    parser.add_argument("--log-level", default="WARNING", help="the app's log level (serve's bench runs WARNING)")
    parser.add_argument("--profile", action="append", default=[], metavar="PHASE", help="cProfile this phase")
    parser.add_argument("--top", type=int, default=25, help="functions printed per profile")
    parser.add_argument("--only", nargs="*", metavar="PHASE", help="measure only these phases (and the bare ones)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="rlhf-profile-") as tmp, database(args.pg, Path(tmp)) as (url, db):
        state, token = build(url, Path(tmp), args.log_level)
        app = create_app(state=state)
        # not entered as a context manager: no lifespan, so no background loops
        client = TestClient(app, headers={"authorization": f"Bearer {token}"})
        fixture = bodies.set_up_with(client)
        m = Measurer(app, token, args.n, args.warmup, db, args.clients)
        bare_get = Phase("bare GET", "bare GET", 0, lambda n: Req("GET", "/get"))
        post_body = bodies.bare_post_body(BARE_POST_BYTES)
        bare_post = Phase("bare POST", "bare POST", 0, lambda n: Req("POST", "/post", post_body))
        bare = Measurer(bare_app, None, args.n, args.warmup, None, args.clients)
        figures = [bare.measure(bare_get, repeat=args.repeat), bare.measure(bare_post, repeat=args.repeat)]
        wanted = set(args.only or []) | set(args.profile)
        phases: list[Phase] = []
        seen = bodies.Registered()
        for label, (collection, body) in bodies.registrations(fixture, str(os.getpid() % 1000)).items():
            phase = bodies.registration_phase(label, collection, body, 0, b"", seen)
            if not args.only or phase.name in wanted:
                figures.append(m.measure(phase, "bare POST", args.repeat))
            else:
                m.run(phase, 2)  # something of each kind for the reads
            phases.append(phase)
        pages = bodies.list_queries_with(client, seen.collections)
        for phase in bodies.read_phases(0, b"", seen, pages):
            if not args.only or phase.name in wanted:
                figures.append(m.measure(phase, "bare GET", args.repeat))
            phases.append(phase)
        when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        database_name = "PostgreSQL" if args.pg else "SQLite"
        title = f"CPU per request in process, {database_name}, {args.clients} client(s), {when}, load average {load}"
        print_figures(figures, title)
        for name in args.profile:
            found = [p for p in phases if p.name == name]
            if not found:
                raise SystemExit(f"no phase {name!r}; phases: {[p.name for p in phases]}")
            print(m.profile(found[0], args.top))
        state.sessions.engine.dispose()


if __name__ == "__main__":
    main()
