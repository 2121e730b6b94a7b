"""Training runs: start, watch (live progress bar and latest metrics), cancel, list."""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

import typer
from rich.live import Live
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.cli.console import out, print_json, usage_error
from app.cli.references import FORMS, label, reference
from app.client import ApiError, RegistryClient

runs_app = typer.Typer(help="Training runs.", no_args_is_help=True)
FINAL = ("succeeded", "failed", "cancelled")


def _input(text: str) -> tuple[str, Any]:
    role, _, value = text.partition("=")
    if not role or not value:
        raise usage_error(f"--input {text!r}: expected ROLE=NAME@VERSION, ROLE=<record id> or outputs_blob=sha256:...")
    if role == "outputs_blob" or value.startswith("sha256:"):
        return role, value
    return role, reference(value)


def _params(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise usage_error(
            f"--params is not valid JSON: {exc.msg} at column {exc.colno}", "pass a JSON object"
        ) from None
    if not isinstance(value, dict):
        raise usage_error("--params must be a JSON object", "like --params '{\"max_steps\": 20}'")
    return value


@runs_app.command("start")
def start(
    project: str,
    kind: Annotated[str, typer.Option(help="sft | reward_model | dpo | rloo | grpo | ppo | score")],
    inputs: Annotated[list[str], typer.Option("--input", help=f"ROLE=REF, REF being {FORMS} (repeat)")],
    params: Annotated[str, typer.Option(help="JSON object of training parameters")] = "{}",
    output_name: Annotated[str | None, typer.Option()] = None,
    watch_run: Annotated[bool, typer.Option("--watch", help="follow the run until it ends")] = False,
) -> None:
    """Start a run on registered inputs; prints the run id."""
    body = {"kind": kind, "inputs": dict(_input(i) for i in inputs), "params": _params(params)}
    if output_name:
        body["output_name"] = output_name
    with RegistryClient() as client:
        run = client.start_run(project, body)
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
    latest: dict[str, Any] = {}
    with RegistryClient() as client:
        run = client.run(project, run_id)
        progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        task = progress.add_task(f"{run['kind']} {run['status']}", total=run["params"].get("max_steps"))
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
                        out.print(f"registered {event['data']['kind']} {escape(str(event['data']['registered']))}")
                run = client.run(project, run_id)
                if run["status"] in FINAL:
                    break
                time.sleep(poll_seconds)
        outputs = _output_labels(client, run["outputs"])
    if latest:
        out.print(_metrics_table(latest))
    out.print(f"run {run_id} {run['status']}; outputs: {escape(', '.join(outputs)) or 'none'}", soft_wrap=True)
    if run["error"]:
        out.print(f"[red]{escape(run['error']['code'])}[/red]: {escape(str(run['error']['detail']))}", soft_wrap=True)
    if run["status"] != "succeeded":
        raise typer.Exit(1)


@runs_app.command("cancel")
def cancel(project: str, run_id: str) -> None:
    """Cancel a queued or running run."""
    with RegistryClient() as client:
        run = client.cancel_run(project, run_id)
    out.print(f"run {run_id}: {run['status']}")


@runs_app.command("list")
def list_runs(
    project: str,
    as_json: Annotated[bool, typer.Option("--json", help="JSON (every run, in full) instead of a table")] = False,
) -> None:
    """The runs of PROJECT, oldest first, paged through the API; outputs shown as name@version."""
    with RegistryClient() as client:
        items = list(client.iter_runs(project))
        if as_json:
            print_json(items)
            return
        table = Table("run", "kind", "status", "output name", "outputs", "created", "by", title=f"{len(items)} run(s)")
        for run in items:
            table.add_row(
                run["id"],
                run["kind"],
                run["status"],
                escape(run["output_name"]),
                escape(", ".join(_output_labels(client, run["outputs"]))),
                str(run["created_at"] or ""),
                escape(run["created_by"]),
            )
    out.print(table)


def _output_labels(client: RegistryClient, record_ids: list[str]) -> list[str]:
    """Each output as `kind name@version`; an output the token may not read is shown by its id."""
    labels = []
    for record_id in record_ids:
        try:
            record = client.get_record(record_id)
        except ApiError as exc:
            if exc.status != 404:
                raise
            labels.append(record_id)
        else:
            labels.append(f"{record['kind']} {label(record)}")
    return labels
