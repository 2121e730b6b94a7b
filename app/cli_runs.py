"""CLI for training runs: start, watch (live progress bar and latest metrics), cancel."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.cli_data import fail, ref
from app.client import ApiError, RegistryClient

runs_app = typer.Typer(help="Training runs.", no_args_is_help=True)
out = Console()
FINAL = ("succeeded", "failed", "cancelled")


def _input(text: str) -> tuple[str, Any]:
    role, _, value = text.partition("=")
    if not role or not value:
        raise typer.BadParameter(f"{text!r}: expected ROLE=NAME@VERSION, ROLE=<record id> or outputs_blob=sha256:...")
    if role == "outputs_blob" or value.startswith("sha256:"):
        return role, value
    return role, ref(value) if "@" in value else {"id": value}


@runs_app.command("start")
def start(
    project: str,
    kind: Annotated[str, typer.Option(help="reward_model | dpo | rloo | grpo | ppo | score")],
    inputs: Annotated[list[str], typer.Option("--input", help="ROLE=NAME@VERSION or ROLE=ID (repeat)")],
    params: Annotated[str, typer.Option(help="JSON object of training parameters")] = "{}",
    output_name: Annotated[str | None, typer.Option()] = None,
    watch_run: Annotated[bool, typer.Option("--watch", help="follow the run until it ends")] = False,
) -> None:
    """Start a run on registered inputs; prints the run id."""
    body = {"kind": kind, "inputs": dict(_input(i) for i in inputs), "params": json.loads(params)}
    if output_name:
        body["output_name"] = output_name
    with RegistryClient() as client:
        try:
            run = client.start_run(project, body)
        except ApiError as exc:
            fail(exc)
    out.print(f"run {run['id']} queued")
    if watch_run:
        watch(project, run["id"])


def _metrics_table(metrics: dict[str, Any]) -> Table:
    table = Table(show_header=False, box=None)
    for key, value in sorted(metrics.items()):
        if key != "step":
            table.add_row(key, f"{value:.4g}" if isinstance(value, float) else str(value))
    return table


@runs_app.command("watch")
def watch(project: str, run_id: str, poll_seconds: float = 1.0) -> None:
    """Follow a run: a progress bar over its steps and its latest metrics, until it ends."""
    with RegistryClient() as client:
        try:
            run = client.run(project, run_id)
            total = run["params"].get("max_steps")
            progress = Progress(
                TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()
            )
            task = progress.add_task(f"{run['kind']} {run['status']}", total=total)
            latest: dict[str, Any] = {}
            seq = 0
            with Live(progress, console=out, refresh_per_second=4):
                while True:
                    for event in client.run_events(project, run_id, after=seq):
                        seq = event["seq"]
                        if event["type"] == "metrics":
                            latest = event["data"]
                            progress.update(task, completed=latest.get("step", 0))
                        elif event["type"] == "status":
                            progress.update(task, description=f"{run['kind']} {event['data']['status']}")
                        elif event["type"] == "log" and "registered" in event["data"]:
                            out.print(f"registered {event['data']['kind']} {event['data']['registered']}")
                    run = client.run(project, run_id)
                    if run["status"] in FINAL:
                        break
                    time.sleep(poll_seconds)
        except ApiError as exc:
            fail(exc)
    if latest:
        out.print(_metrics_table(latest))
    out.print(f"run {run_id} {run['status']}; outputs: {', '.join(run['outputs']) or 'none'}")
    if run["error"]:
        out.print(f"[red]{run['error']['code']}[/red]: {run['error']['detail']}")
    if run["status"] != "succeeded":
        raise typer.Exit(1)


@runs_app.command("cancel")
def cancel(project: str, run_id: str) -> None:
    with RegistryClient() as client:
        try:
            run = client.cancel_run(project, run_id)
        except ApiError as exc:
            fail(exc)
    out.print(f"run {run_id}: {run['status']}")
