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
        raise usage_error(
            f"--input {text!r}: expected ROLE=NAME@VERSION, ROLE=<record id>, outputs_blob=sha256:... or "
            "policy_run=<run id>"
        )
    # a blob digest and a campaign's policy run (a run, not a record) go as given
    if role in ("outputs_blob", "policy_run") or value.startswith("sha256:"):
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
    kind: Annotated[str, typer.Option(help="sft | reward_model | dpo | rloo | grpo | ppo | score | campaign | judge")],
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


FIGURES = (
    ("mean reward", "mean_reward"),
    ("KL", "kl_to_reference"),
    ("length", "mean_completion_length"),
    ("length~reward", "length_reward_correlation"),
    ("adversarial reward", "adversarial_mean_reward"),
)


@runs_app.command("checkpoints")
def checkpoints(
    project: str,
    run_id: str,
    flagged: Annotated[
        bool, typer.Option("--flagged", help="print only the flagged checkpoints, one name@version a line")
    ] = False,
) -> None:
    """A policy run's checkpoint series: each checkpoint's figures and reward-hacking alarms."""
    with RegistryClient() as client:
        report = client.run_checkpoints(project, run_id)
    series = report["series"]
    if flagged:
        for checkpoint in report["checkpoints"]:
            if checkpoint["flags"]:
                out.print(f"{series}@{checkpoint['version']}", markup=False)
        return
    table = Table("checkpoint", "step", *(title for title, _ in FIGURES), "alarms", title=f"run {run_id}")
    for checkpoint in report["checkpoints"]:
        table.add_row(
            escape(f"{series}@{checkpoint['version']}"),
            "-" if checkpoint["step"] is None else str(checkpoint["step"]),
            *("-" if checkpoint[key] is None else f"{checkpoint[key]:.4g}" for _, key in FIGURES),
            escape(", ".join(f["flag"] for f in checkpoint["flags"])) or "none",
        )
    out.print(table)
    for checkpoint in report["checkpoints"]:
        for flag in checkpoint["flags"]:
            out.print(
                f"{series}@{checkpoint['version']} {flag['flag']}: {flag['detail']}", markup=False, soft_wrap=True
            )
