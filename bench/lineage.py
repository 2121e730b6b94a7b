"""Lineage trace latency on PostgreSQL with a registry of 100,000 records.

    .venv/bin/python bench/lineage.py [--records 100000] [--samples 500] [--projects 4] [--json] [--explain]

Creates a fresh database on the local PostgreSQL server (127.0.0.1:5432, user postgres; override with
RLHF_BENCH_PG_URL, loopback only), migrates it, and bulk-inserts records with a realistic lineage
(bench/lineage_data.py: criteria across several MAJOR versions, prompt sets, hundreds of annotation batches
per project, datasets, base models, reward checkpoints, policy checkpoint series with their evaluations,
deployments with approvals, two revocations) through SQLAlchemy core inserts, then ANALYZEs it.

Then it starts `rlhf-registry serve --no-worker` on that database (a free loopback port) and times, after a
warm-up, `--samples` traces of each kind, sequentially:

  upstream    GET /v1/records/{id}/lineage?direction=upstream&format=json from a random deployment
  downstream  the same with direction=downstream from a random annotation batch

each three ways, to separate the layers: `sql` (the recursive CTE of app.lineage.repository alone),
`in-process` (app.records.service.get_visible + app.lineage.service.trace in a fresh session, as the route
does) and `http` (one keep-alive httpx client against the server). A phase stops early after
`--phase-seconds`; the samples it took are printed. The target (issue: p50 < 20 ms, p99 < 100 ms for the
upstream trace) is judged on the http figures.

`--explain` prints EXPLAIN (ANALYZE, BUFFERS) of the queries of one upstream and one downstream trace.
The database is dropped and the server stopped on every exit, Ctrl-C and errors included.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psycopg
from sqlalchemy import Engine, insert, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.access import service as access_service
from app.audit.service import AuditLog
from app.core import migrate
from app.core.db import make_engine
from app.core.uow import UnitOfWork
from app.lineage import repository as lineage_repository
from app.lineage import service as lineage_service
from app.records import service as records_service
from app.records.models import Record, RecordEdge, RecordEvent, RecordSeries
from bench.lineage_data import Rows, generate
from bench.serving import CLI, HOST, free_port

ADMIN_URL = os.environ.get("RLHF_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
PROJECTS = ["assistant", "code", "safety", "search", "agents", "voice", "vision", "research"]
INSERT_CHUNK = 5000
WARMUP = 20
TARGET_UPSTREAM_P50_MS = 20.0
TARGET_UPSTREAM_P99_MS = 100.0


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------------
# database


def _loopback_only(url: str) -> None:
    host = urlsplit(url).hostname
    if host != HOST:
        raise SystemExit(f"refusing {url}: this benchmark only talks to {HOST}")


@contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    """A new database on the server of `admin_url`, dropped on exit (WITH FORCE: open sessions too)."""
    _loopback_only(admin_url)
    name = f"rlhf_bench_lineage_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{admin_url.rsplit('/', 1)[0]}/{name}"
    finally:
        with psycopg.connect(admin_url, autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        log(f"dropped database {name}")


def bootstrap(engine: Engine, projects: Sequence[str]) -> tuple[str, list[tuple[str, str]]]:
    """A global-admin token and the projects, through the access service (audited like the CLI does)."""
    with Session(engine) as session:
        uow = UnitOfWork(session, request_id="bench-lineage", audit_sink=AuditLog())
        admin = access_service.get_or_create_principal(uow, "admin", actor="bench", global_admin=True)
        token = access_service.create_token(uow, admin, actor="bench", label="bench-lineage")
        made = [access_service.create_project(uow, admin, name, "lineage benchmark")[0] for name in projects]
        uow.commit()
        return token, [(p.id, p.name) for p in made]


def bulk_insert(engine: Engine, rows: Rows) -> None:
    tables: list[tuple[Any, list[dict[str, Any]]]] = [
        (Record.__table__, rows.records),
        (RecordEdge.__table__, rows.edges),
        (RecordEvent.__table__, rows.events),
        (RecordSeries.__table__, rows.series),
    ]
    with engine.begin() as conn:
        for table, values in tables:
            for start in range(0, len(values), INSERT_CHUNK):
                conn.execute(insert(table), values[start : start + INSERT_CHUNK])
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))


# --------------------------------------------------------------------------------------------------
# server


@contextmanager
def server(database_url: str, data_dir: Path) -> Iterator[Callable[[], str]]:
    """`rlhf-registry serve` on `database_url`; yields a function that waits until it is ready."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLHF_REGISTRY_")}
    env.update(
        RLHF_REGISTRY_DATA_DIR=str(data_dir),
        RLHF_REGISTRY_DATABASE_URL=database_url,
        RLHF_REGISTRY_LOG_LEVEL="WARNING",
    )
    port = free_port()
    url = f"http://{HOST}:{port}"
    log_path = data_dir / "serve.log"
    with log_path.open("wb") as out:
        process = subprocess.Popen(
            [*CLI, "serve", "--host", HOST, "--port", str(port), "--no-worker"], env=env, stdout=out, stderr=out
        )

        def ready(timeout_s: float = 60.0) -> str:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                        return url
                except httpx.TransportError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("serve did not come up:\n" + log_path.read_text()[-3000:])
                time.sleep(0.2)

        try:
            yield ready
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


# --------------------------------------------------------------------------------------------------
# measuring


@dataclass(frozen=True)
class Sample:
    """What one trace returned: its size and (where known) how many nodes carry each flag."""

    nodes: int
    edges: int
    stale: int | None = None
    quarantined: int | None = None

    @classmethod
    def of(cls, graph: dict[str, Any]) -> Sample:
        nodes = graph["nodes"]
        stale = sum(1 for n in nodes if n["stale"])
        quarantined = sum(1 for n in nodes if n["quarantined"])
        return cls(len(nodes), len(graph["edges"]), stale, quarantined)


Trace = Callable[[str], Sample]


@dataclass
class PhaseResult:
    name: str
    samples: int
    errors: int
    elapsed_s: float
    latencies_ms: list[float] = field(default_factory=list)
    traces: list[Sample] = field(default_factory=list)

    def pct(self, q: float) -> float | None:
        """Nearest-rank percentile."""
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]

    def as_json(self) -> dict[str, Any]:
        def mean(values: list[int]) -> float | None:
            return round(sum(values) / len(values), 1) if values else None

        nodes = [t.nodes for t in self.traces]
        flagged = [t for t in self.traces if t.stale is not None]
        return {
            "phase": self.name,
            "samples": self.samples,
            "errors": self.errors,
            "elapsed_s": round(self.elapsed_s, 2),
            "p50_ms": _round(self.pct(0.50)),
            "p90_ms": _round(self.pct(0.90)),
            "p99_ms": _round(self.pct(0.99)),
            "max_ms": _round(max(self.latencies_ms) if self.latencies_ms else None),
            "mean_nodes": mean(nodes),
            "max_nodes": max(nodes) if nodes else None,
            "mean_edges": mean([t.edges for t in self.traces]),
            # share of traces holding at least one stale (quarantined) node: the flags are exercised
            "traces_with_stale": round(sum(1 for t in flagged if t.stale) / len(flagged), 3) if flagged else None,
            "traces_with_quarantined": (
                round(sum(1 for t in flagged if t.quarantined) / len(flagged), 3) if flagged else None
            ),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def run_phase(name: str, ids: Sequence[str], one: Trace, *, budget_s: float) -> PhaseResult:
    """Time `one(id)` for each id after WARMUP untimed calls; stop once the phase has run `budget_s`."""
    for record_id in ids[:WARMUP]:
        one(record_id)
    result = PhaseResult(name, 0, 0, 0.0)
    started = time.perf_counter()
    for record_id in ids[WARMUP:]:
        t0 = time.perf_counter()
        try:
            sample = one(record_id)
        except Exception as exc:  # counted and reported; the run goes on
            result.errors += 1
            if result.errors <= 3:
                log(f"  {name}: {exc!r}"[:500])
            continue
        result.latencies_ms.append((time.perf_counter() - t0) * 1000)
        result.traces.append(sample)
        result.samples += 1
        if time.perf_counter() - started > budget_s:
            log(f"  {name}: stopped after {result.samples} samples (--phase-seconds {budget_s:g})")
            break
    result.elapsed_s = time.perf_counter() - started
    return result


def sql_only(engine: Engine, direction: lineage_repository.Direction) -> Trace:
    """The recursive queries of app.lineage.service.load_graph alone (downstream: closure + completion)."""

    def one(record_id: str) -> Sample:
        with engine.connect() as conn:
            edges = set(conn.execute(lineage_repository.edges_closure([record_id], direction)).all())
            reached = {e[1] for e in edges} if direction == "upstream" else {e[0] for e in edges}
            if direction == "downstream":
                edges |= set(conn.execute(lineage_repository.edges_closure({record_id, *reached}, "upstream")).all())
        return Sample(len(reached) + 1, len(edges))

    return one


def in_process(engine: Engine, direction: lineage_repository.Direction) -> Trace:
    def one(record_id: str) -> Sample:
        with Session(engine) as session:
            record, project_name = records_service.get_visible(session, record_id)
            graph = lineage_service.trace(session, record, direction, {record.project_id: project_name})
        return Sample.of(graph)

    return one


def over_http(client: httpx.Client, direction: str) -> Trace:
    def one(record_id: str) -> Sample:
        response = client.get(f"/v1/records/{record_id}/lineage", params={"direction": direction, "format": "json"})
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:300]}")
        return Sample.of(response.json())

    return one


def explain(engine: Engine, record_id: str, direction: lineage_repository.Direction) -> str:
    """EXPLAIN (ANALYZE, BUFFERS) of the CTE of one trace, and of the completion of a downstream one."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]

    def sql(stmt: Any) -> str:
        return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))

    parts = []
    with engine.connect() as conn:
        stmt = lineage_repository.edges_closure([record_id], direction)
        statements = [(f"{direction} closure from {record_id}", stmt)]
        if direction == "downstream":
            reached = {row[0] for row in conn.execute(stmt)}
            completion = lineage_repository.edges_closure({record_id, *reached}, "upstream")
            statements.append((f"upstream completion of {len(reached) + 1} downstream nodes", completion))
        for title, statement in statements:
            plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + sql(statement)).scalars().all()
            # the literal id lists of a large start set are not worth reading
            lines = [line if len(line) <= 200 else line[:160] + f"... ({len(line)} chars)" for line in plan]
            parts.append(f"-- {title}\n" + "\n".join(lines))
    return "\n\n".join(parts)


# --------------------------------------------------------------------------------------------------
# main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000, help="records to generate (default 100000)")
    parser.add_argument("--samples", type=int, default=500, help="timed traces per phase (default 500)")
    parser.add_argument("--projects", type=int, default=4, help=f"projects, 1-{len(PROJECTS)} (default 4)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--phase-seconds", type=float, default=30.0, help="stop a phase after this long (default 30)")
    parser.add_argument("--explain", action="store_true", help="print EXPLAIN ANALYZE of the trace queries")
    parser.add_argument("--json", action="store_true", help="print the results as one JSON object")
    args = parser.parse_args(argv)
    if not 1 <= args.projects <= len(PROJECTS):
        parser.error(f"--projects must be 1-{len(PROJECTS)}")
    if args.records < 200 * args.projects:
        parser.error("--records must be at least 200 per project")

    # run the clean-ups below on Ctrl-C and a plain kill, also when started with SIGINT ignored (`cmd &`)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.perf_counter()
    with fresh_database(ADMIN_URL) as database_url, tempfile.TemporaryDirectory(prefix="bench-lineage-") as tmp:
        migrate.upgrade(database_url)
        engine = make_engine(database_url, pool_size=2)
        try:
            with server(database_url, Path(tmp)) as ready:
                result = measure(args, engine, database_url, ready)
        finally:
            engine.dispose()
    result["total_s"] = round(time.perf_counter() - started, 1)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_report(result)
    errors = sum(p["errors"] for p in result["phases"])
    return 1 if errors else 0


def measure(args: argparse.Namespace, engine: Engine, database_url: str, ready: Callable[[], str]) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    build_started = time.perf_counter()
    token, projects = bootstrap(engine, PROJECTS[: args.projects])
    t0 = time.perf_counter()
    rows = generate(projects, args.records, args.seed, time.time())
    generated_s = time.perf_counter() - t0
    log(f"generated {len(rows.records)} records, {len(rows.edges)} edges in {generated_s:.1f} s; inserting")
    t0 = time.perf_counter()
    bulk_insert(engine, rows)
    inserted_s = time.perf_counter() - t0
    build_s = time.perf_counter() - build_started
    log(f"inserted and analysed in {inserted_s:.1f} s (build {build_s:.1f} s)")
    url = ready()

    rng = random.Random(args.seed)
    n = args.samples + WARMUP
    upstream_ids = [rng.choice(rows.deployments) for _ in range(n)]
    downstream_ids = [rng.choice(rows.batches) for _ in range(n)]
    phases: list[PhaseResult] = []
    explains: dict[str, str] = {}
    directions: list[tuple[lineage_repository.Direction, list[str]]] = [
        ("upstream", upstream_ids),
        ("downstream", downstream_ids),
    ]
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=120) as client:
        for direction, ids in directions:
            kinds: list[tuple[str, Trace]] = [
                ("sql", sql_only(engine, direction)),
                ("in-process", in_process(engine, direction)),
                ("http", over_http(client, direction)),
            ]
            for layer, one in kinds:
                log(f"timing {direction} {layer}")
                phases.append(run_phase(f"{direction} {layer}", ids, one, budget_s=args.phase_seconds))
            if args.explain:
                explains[direction] = explain(engine, ids[0], direction)

    upstream_http = next(p for p in phases if p.name == "upstream http")
    p50, p99 = upstream_http.pct(0.50), upstream_http.pct(0.99)
    return {
        "records": len(rows.records),
        "edges": len(rows.edges),
        "events": len(rows.events),
        "kinds": dict(rows.kinds.most_common()),
        "projects": len(projects),
        "deployments": len(rows.deployments),
        "batches": len(rows.batches),
        "build_s": round(build_s, 1),
        "generate_s": round(generated_s, 1),
        "insert_analyze_s": round(inserted_s, 1),
        "phases": [p.as_json() for p in phases],
        "targets": {
            "upstream_p50_ms": {
                "target": TARGET_UPSTREAM_P50_MS,
                "value": _round(p50),
                "met": p50 is not None and p50 < TARGET_UPSTREAM_P50_MS,
            },
            "upstream_p99_ms": {
                "target": TARGET_UPSTREAM_P99_MS,
                "value": _round(p99),
                "met": p99 is not None and p99 < TARGET_UPSTREAM_P99_MS,
            },
        },
        "explain": explains,
        # other work on the machine shares its cores with the server, PostgreSQL and this client
        "load_average_1m": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "cpus": os.cpu_count(),
        "database": "postgresql " + database_url.rsplit("@", 1)[-1].rsplit("/", 1)[0],
    }


def print_report(result: dict[str, Any]) -> None:
    print(
        f"registry: {result['records']} records, {result['edges']} edges, {result['events']} events in "
        f"{result['projects']} projects on {result['database']}"
    )
    print("  " + ", ".join(f"{kind} {count}" for kind, count in result["kinds"].items()))
    load = result["load_average_1m"]
    print(f"machine: {result['cpus']} CPUs, 1-minute load average {load['before']} before, {load['after']} after")
    print(
        f"build: {result['build_s']} s (generate {result['generate_s']} s, insert + ANALYZE "
        f"{result['insert_analyze_s']} s); whole run {result['total_s']} s"
    )
    print()
    header = (
        f"{'phase':<22}{'n':>6}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}{'max ms':>9}{'nodes':>8}{'edges':>8}"
        f"{'stale':>7}{'quar.':>7}"
    )
    print(header)
    print("-" * len(header))

    def cell(value: Any) -> str:
        return "-" if value is None else f"{value:.1f}" if isinstance(value, float) else str(value)

    def share(value: float | None) -> str:
        return "-" if value is None else f"{value:.0%}"

    for p in result["phases"]:
        print(
            f"{p['phase']:<22}{p['samples']:>6}{cell(p['p50_ms']):>9}{cell(p['p90_ms']):>9}"
            f"{cell(p['p99_ms']):>9}{cell(p['max_ms']):>9}{cell(p['mean_nodes']):>8}{cell(p['mean_edges']):>8}"
            f"{share(p['traces_with_stale']):>7}{share(p['traces_with_quarantined']):>7}"
            + (f"  errors {p['errors']}" if p["errors"] else "")
        )
    print(
        "nodes, edges: mean per trace; stale, quar.: share of traces with a stale / quarantined node;\n"
        "sql: the recursive CTE(s) alone; in-process: get_visible + lineage.service.trace; http: the route"
    )
    print()
    for key, label in (("upstream_p50_ms", "p50"), ("upstream_p99_ms", "p99")):
        t = result["targets"][key]
        print(
            f"target upstream http {label} < {t['target']:g} ms: {cell(t['value'])} ms "
            f"{'met' if t['met'] else 'MISSED'}"
        )
    for direction, plan in result["explain"].items():
        print(f"\nEXPLAIN ANALYZE, {direction}:\n{plan}")


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("interrupted")
        sys.exit(130)
