"""What users do to the registry's API, measured side by side with a bare FastAPI app.

    .venv/bin/python bench/api.py                       # every configuration, 8 and 32 clients
    .venv/bin/python bench/api.py --quick --only sqlite # a few seconds per phase (the test runs this)
    .venv/bin/python bench/api.py --mlflow /path/to/mlflow   # also MLflow's registry server

One run, one load generator (bench/api_load.py: closed-loop keep-alive HTTP/1.1 connections on one
asyncio loop in this process), 8 and then 32 concurrent clients, and for each configuration:

  bare --workers N   bench/bare_app.py: `async def` GET and POST (a body the size of a registration's)
                     on uvicorn with httptools and uvloop, N worker processes, like `serve`
  sqlite             `rlhf-registry serve` on the embedded default (one process, SQLite, blob folder)
  pg --workers 1|2   `rlhf-registry serve --workers N` on a fresh PostgreSQL database (127.0.0.1:5432),
                     dropped afterwards; skipped with a note where `serve` has no `--workers`
  mlflow sqlite|pg   with --mlflow: MLflow's registry server (bench/api_mlflow.py)

Phases (bench/api_bodies.py): a registration of every kind a client registers from a small JSON body,
reads by id, by `name/version`, by `name/latest`, list pages and an upstream lineage trace. Every
figure is printed with the bare app's ratio, the CPU seconds of the server's processes, PostgreSQL's
backends and the load generator, and the load average around the phase. A non-2xx answer is an error:
counted, printed, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # `python bench/api.py` from anywhere

from bench import api_bodies as bodies
from bench.api_load import LoadGenerator, Phase, Req
from bench.api_report import Figure, add_ratios, measure, print_table, print_targets, targets
from bench.api_servers import (
    PgBackends,
    fresh_database,
    log,
    pids_cpu,
    serve_options,
    start_bare,
    start_registry,
    tree_cpu,
)

CONFIGS = ("sqlite", "pg1", "pg2")


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.gen = LoadGenerator(args.timeout)
        self.figures: list[Figure] = []
        self.notes: list[str] = []
        self.runs = 0
        self.options = ""  # `serve --help`, read once per run

    def phase(self, phase: Phase, config: str, clients: int, server_pid: int, db: PgBackends | None = None) -> None:
        db_cpu = (lambda: pids_cpu(db.pids())) if db is not None else None
        self.figures.append(
            measure(
                self.gen,
                phase,
                config=config,
                clients=clients,
                seconds=self.args.duration,
                warmup=self.args.warmup,
                server_cpu=lambda: tree_cpu(server_pid),
                db_cpu=db_cpu,
            )
        )

    def bare(self, workers: int) -> None:
        with contextlib.ExitStack() as stack:
            server = start_bare(stack, workers, self.workdir)
            post = bodies.bare_post_body(self.args.post_bytes)
            config = f"bare --workers {workers}"
            for clients in self.args.clients:
                get = Phase("bare GET", "bare GET", server.port, lambda n: Req("GET", "/get"))
                self.phase(get, config, clients, server.proc.pid)
                self.phase(
                    Phase("bare POST", "bare POST", server.port, lambda n: Req("POST", "/post", post)),
                    config,
                    clients,
                    server.proc.pid,
                )
                server.check_alive(config)

    def registry(self, config: str, database_url: str | None, workers: int | None, db: PgBackends | None) -> None:
        with contextlib.ExitStack() as stack:
            registry = start_registry(
                stack, self.workdir / config.replace(" ", ""), database_url, workers, self.options
            )
            server = registry.server
            fixture = bodies.set_up(server.port, registry.token)
            headers = f"Authorization: Bearer {registry.token}\r\n".encode()
            seen = bodies.Registered()
            for clients in self.args.clients:
                self.runs += 1
                run = f"{self.runs}{os.getpid() % 1000}"
                for label, (collection, body) in bodies.registrations(fixture, run).items():
                    phase = bodies.registration_phase(label, collection, body, server.port, headers, seen)
                    self.phase(phase, config, clients, server.proc.pid, db)
                    server.check_alive(phase.name)
                pages = bodies.list_queries(server.port, registry.token, seen.collections)
                for phase in bodies.read_phases(server.port, headers, seen, pages):
                    self.phase(phase, config, clients, server.proc.pid, db)
                    server.check_alive(phase.name)

    def run(self) -> None:
        self.options = serve_options()
        has_workers = "--workers" in self.options
        wanted = self.args.only
        self.bare(1)
        if "sqlite" in wanted:
            self.registry("sqlite", None, 1 if has_workers else None, None)
        for config, workers in (("pg1", 1), ("pg2", 2)):
            if config not in wanted:
                continue
            if not has_workers:
                self.notes.append(f"{config} skipped: `rlhf-registry serve` has no --workers option in this build")
                log(f"NOTE: {self.notes[-1]}")
                continue
            if workers == 2:
                self.bare(2)
            with fresh_database() as (url, name):
                db = PgBackends(name)
                try:
                    self.registry(f"pg --workers {workers}", url, workers, db)
                finally:
                    db.close()
        if self.args.mlflow:
            from bench.api_mlflow import run_mlflow

            run_mlflow(self, Path(self.args.mlflow))


def header(args: argparse.Namespace, bench: Bench, load_start: tuple[float, float, float]) -> list[str]:
    return [
        "",
        f"rlhf-registry API bench, {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}: "
        f"{os.cpu_count()} cores shared by the servers, PostgreSQL and the load generator",
        f"load average at start {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f}; "
        f"{args.duration:g} s per phase after {args.warmup:g} s of warm-up; clients {args.clients}",
        f"load generator: {bench.gen.name}, in the bench process (its CPU is the `gen` column)",
        f"bare POST body {args.post_bytes} bytes; registry ratios: registrations over bare POST, reads over bare GET",
        *[f"NOTE: {note}" for note in bench.notes],
        "",
    ]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="What users do to the registry's API, against a bare FastAPI app.")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measured phase (default 3)")
    parser.add_argument("--warmup", type=float, default=0.5, help="uncounted seconds before each phase")
    parser.add_argument("--quick", action="store_true", help="0.5 s per phase, 0.1 s warm-up (a smoke run)")
    parser.add_argument("--clients", type=int, nargs="+", default=[8, 32], help="concurrent clients (default 8 32)")
    parser.add_argument(
        "--only", default=",".join(CONFIGS), help=f"comma-separated configurations among {', '.join(CONFIGS)}"
    )
    parser.add_argument("--mlflow", default=None, help="path to an `mlflow` executable: also measure its registry")
    parser.add_argument("--post-bytes", type=int, default=600, help="size of the bare POST's JSON body")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before a request counts as failed")
    parser.add_argument("--json", default=None, help="also write every figure to this JSON file")
    args = parser.parse_args(argv)
    if args.quick:
        args.duration, args.warmup = 0.5, 0.1
    args.only = {c.strip() for c in args.only.split(",") if c.strip()}
    if not args.only <= set(CONFIGS) or args.duration <= 0 or min(args.clients) < 1:
        parser.error(f"--only takes {CONFIGS}; --duration and --clients must be positive")
    return args


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm)  # stop the servers on `kill` too, through the exit stacks
    load_start = os.getloadavg()
    failure: str | None = None
    with tempfile.TemporaryDirectory(prefix="rlhf-bench-api-") as tmp:
        bench = Bench(args, Path(tmp))
        try:
            bench.run()
        except KeyboardInterrupt:
            log("interrupted; servers stopped")
            return 130
        except RuntimeError as exc:  # a server that would not start or died: print what was measured
            failure = str(exc)
        finally:
            bench.gen.close()
    add_ratios(bench.figures)
    print_table(bench.figures, header(args, bench, load_start))
    print_targets(targets(bench.figures))
    errors = [f for f in bench.figures if f.errors]
    for f in errors:
        print(f"ERRORS in {f.config} c{f.clients} {f.phase}: {f.errors}", file=sys.stdout)
        for sample in f.error_samples:
            print(f"  {sample}", file=sys.stdout)
    print("FAILED: some requests failed" if errors else "\nall requests succeeded (2xx)", file=sys.stdout)
    if args.json:
        Path(args.json).write_text(json.dumps([f.as_json() for f in bench.figures], indent=1))
    if failure is not None:
        print(f"FAILED: the bench stopped early: {failure}", file=sys.stdout)
        return 2
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
