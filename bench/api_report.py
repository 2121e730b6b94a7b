"""One measured phase of `bench/api.py` with everything around it (load, CPU of each side), the table
it prints, and the issue's targets checked against the figures."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from bench.api_load import LoadGenerator, Phase, percentile
from bench.api_servers import cpu_used, log

# the targets the figures are held to (benchmark figures, never a test threshold)
TARGET_REGISTRATION = 0.25  # of the bare async POST, embedded default, 8 clients
TARGET_READ = 0.40  # of the bare async GET
TARGET_LIST = 0.20
TARGET_P99_SQLITE_MS = 50.0
TARGET_P99_PG_MS = 100.0  # 8 clients
TARGET_SCALING = 1.4  # two workers over one, 32 clients
TARGET_MLFLOW = 10.0


@dataclass
class Figure:
    config: str  # "sqlite", "pg --workers 1", "bare --workers 1", "mlflow sqlite", ...
    clients: int
    phase: str
    group: str
    requests: int
    rps: float
    p50_ms: float | None
    p99_ms: float | None
    errors: int
    server_cpu_s: float  # server process tree
    db_cpu_s: float | None  # PostgreSQL backends of the bench database
    gen_cpu_s: float  # the load generator (this process)
    elapsed_s: float
    load_before: float  # 1-minute load average
    load_after: float
    ratio: float | None = None  # to the bare app's GET or POST, same workers and clients
    error_samples: tuple[str, ...] = ()

    def as_json(self) -> dict[str, object]:
        return asdict(self)


def measure(
    gen: LoadGenerator,
    phase: Phase,
    *,
    config: str,
    clients: int,
    seconds: float,
    warmup: float,
    server_cpu: Callable[[], dict[int, float]],
    db_cpu: Callable[[], dict[int, float]] | None = None,
) -> Figure:
    warm = gen.run(phase, warmup, clients) if warmup > 0 else None
    load0 = os.getloadavg()[0]
    srv0, db0, gen0, wall0 = server_cpu(), db_cpu() if db_cpu else None, time.process_time(), time.perf_counter()
    tally = gen.run(phase, seconds, clients)
    wall1, gen1, srv1, db1 = time.perf_counter(), time.process_time(), server_cpu(), db_cpu() if db_cpu else None
    load1 = os.getloadavg()[0]
    elapsed = wall1 - wall0
    lat = sorted(tally.latencies)
    p50, p99 = percentile(lat, 0.5), percentile(lat, 0.99)
    samples = list(tally.error_samples)
    errors = tally.errors
    if warm is not None:  # a failed request is a failure whenever it happens
        errors += warm.errors
        samples = [*warm.error_samples, *samples][:5]
    figure = Figure(
        config=config,
        clients=clients,
        phase=phase.name,
        group=phase.group,
        requests=sum(tally.statuses.values()),
        rps=sum(tally.statuses.values()) / elapsed if elapsed > 0 else 0.0,
        p50_ms=None if p50 is None else p50 * 1000,
        p99_ms=None if p99 is None else p99 * 1000,
        errors=errors,
        server_cpu_s=cpu_used(srv0, srv1),
        db_cpu_s=None if db0 is None or db1 is None else cpu_used(db0, db1),
        gen_cpu_s=gen1 - gen0,
        elapsed_s=elapsed,
        load_before=load0,
        load_after=load1,
        error_samples=tuple(samples),
    )
    log(
        f"  {config:<18} c={clients:<3} {phase.name:<20} {figure.rps:8.1f} req/s  p50 {_f(figure.p50_ms)}"
        f"  p99 {_f(figure.p99_ms)} ms  errors {figure.errors}"
    )
    for sample in samples:
        log(f"    error: {sample}")
    return figure


def _f(value: float | None, spec: str = ".1f") -> str:
    return "-" if value is None else format(value, spec)


def add_ratios(figures: list[Figure]) -> None:
    """Each registry or MLflow figure over the bare app's with the same worker count and clients:
    registrations over the bare POST, reads and lists over the bare GET."""
    bare = {(f.config, f.clients, f.group): f.rps for f in figures if f.config.startswith("bare")}
    for f in figures:
        if f.config.startswith("bare"):
            continue
        workers = "2" if f.config.endswith("--workers 2") else "1"
        group = "bare POST" if f.group == "registration" else "bare GET"
        base = bare.get((f"bare --workers {workers}", f.clients, group))
        f.ratio = f.rps / base if base else None


def print_table(figures: list[Figure], header: list[str]) -> None:
    out = sys.stdout
    for line in header:
        print(line, file=out)
    print(
        "CPU columns: seconds of CPU over the phase (divide by `s` for cores): server = the server's process "
        "tree, pg = PostgreSQL backends of the bench database (a lower bound: a backend that exits during the "
        "phase is not counted), gen = the load generator; load = 1-minute load average before -> after the phase",
        file=out,
    )
    title = (
        f"{'configuration':<18}{'cl':>3} {'phase':<20}{'req/s':>8}{'p50 ms':>8}{'p99 ms':>8}{'err':>5}"
        f"{'x bare':>8}{'s':>5}{'server':>7}{'pg':>6}{'gen':>6}{'load':>12}"
    )
    print(title, file=out)
    print("-" * len(title), file=out)
    for f in figures:
        ratio = "" if f.ratio is None else f"{f.ratio * 100:.0f}%"
        print(
            f"{f.config:<18}{f.clients:>3} {f.phase:<20}{f.rps:>8.1f}{_f(f.p50_ms):>8}{_f(f.p99_ms):>8}"
            f"{f.errors:>5}{ratio:>8}{f.elapsed_s:>5.1f}{f.server_cpu_s:>7.2f}{_f(f.db_cpu_s, '.2f'):>6}"
            f"{f.gen_cpu_s:>6.2f}{f'{f.load_before:.1f}->{f.load_after:.1f}':>12}",
            file=out,
        )


def targets(figures: list[Figure]) -> list[tuple[str, str, str]]:
    """(what, figure, pass/fail) for every target of the issue that this run's figures can answer."""
    rows: list[tuple[str, str, str]] = []

    def verdict(ok: bool) -> str:
        return "pass" if ok else "FAIL"

    for f in figures:
        if f.config == "sqlite" and f.clients == 8 and f.ratio is not None:
            need = {"registration": TARGET_REGISTRATION, "read": TARGET_READ, "list": TARGET_LIST}[f.group]
            rows.append((f"sqlite c8 {f.phase} >= {need:.0%} of bare", f"{f.ratio:.0%}", verdict(f.ratio >= need)))
            p99 = f.p99_ms or 0.0
            rows.append((f"sqlite c8 {f.phase} p99 < 50 ms", f"{p99:.1f} ms", verdict(p99 < TARGET_P99_SQLITE_MS)))
        if f.config.startswith("pg") and f.clients == 8 and not f.config.startswith("bare"):
            p99 = f.p99_ms or 0.0
            rows.append((f"{f.config} c8 {f.phase} p99 < 100 ms", f"{p99:.1f} ms", verdict(p99 < TARGET_P99_PG_MS)))
    one = {(f.phase): f.rps for f in figures if f.config == "pg --workers 1" and f.clients == 32}
    for f in figures:
        if f.config == "pg --workers 2" and f.clients == 32 and one.get(f.phase):
            scale = f.rps / one[f.phase]
            rows.append((f"pg c32 {f.phase}: 2 workers >= 1.4x 1", f"{scale:.2f}x", verdict(scale >= TARGET_SCALING)))
    mlflow: dict[tuple[str, int, str], float] = {}
    for f in figures:  # MLflow's best phase of each group: the comparison never flatters the registry
        if f.config.startswith("mlflow"):
            key = (f.config.split()[-1], f.clients, f.group)
            mlflow[key] = max(mlflow.get(key, 0.0), f.rps)
    for f in figures:
        if f.config.startswith("mlflow") or f.config.startswith("bare"):
            continue
        database = "sqlite" if f.config == "sqlite" else "pg"
        theirs = mlflow.get((database, f.clients, f.group))
        if theirs and f.config in ("sqlite", "pg --workers 1"):
            rows.append(
                (
                    f"{f.config} c{f.clients} {f.phase} >= 10x MLflow",
                    f"{f.rps / theirs:.1f}x",
                    verdict(f.rps / theirs >= TARGET_MLFLOW),
                )
            )
    return rows


def print_targets(rows: list[tuple[str, str, str]]) -> None:
    if not rows:
        return
    print("\ntargets", file=sys.stdout)
    width = max(len(r[0]) for r in rows) + 2
    for what, value, ok in rows:
        print(f"  {what:<{width}}{value:>10}  {ok}", file=sys.stdout)
