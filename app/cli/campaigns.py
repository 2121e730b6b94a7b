"""`rlhf-registry campaigns export|import`: an evaluation campaign's blinded tasks out to evaluators, and
their judgments back in as an evaluation whose ratings the server computes.

The judgments file is read here with the server's own parser before anything is uploaded, so a file of
the wrong shape is refused with its rows named, and nothing is registered."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.markup import escape
from rich.table import Table

from app.cli.console import UserError, err, out, usage_error
from app.cli.data import upload
from app.cli.references import FORMS, label, name_and_version, resolve
from app.client import RegistryClient

campaigns_app = typer.Typer(help="Evaluation campaigns: blinded tasks out, judgments in.", no_args_is_help=True)
FORMATS = ("jsonl", "label-studio", "argilla")
TYPES = ("human_preference", "ai_preference")
COLLECTION = "evaluation-campaigns"


def _format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise usage_error(f"unknown format {fmt!r}", f"one of: {', '.join(FORMATS)}")
    return fmt


@campaigns_app.command("export")
def export(
    project: str,
    campaign: Annotated[str, typer.Argument(metavar="NAME[@VERSION]", help="default version: latest")],
    fmt: Annotated[str, typer.Option("--format", help=" | ".join(FORMATS))] = "jsonl",
    out_file: Annotated[Path | None, typer.Option("--out", "-o", help="default: NAME-vVERSION-FORMAT.json[l]")] = None,
    label_config: Annotated[
        Path | None, typer.Option(help="label-studio: also write the project's labeling config (XML) here")
    ] = None,
) -> None:
    """Write a campaign's blinded tasks (ids, prompts, Response A and B; never the models) for evaluators."""
    _format(fmt)
    if label_config is not None and fmt != "label-studio":
        raise usage_error("--label-config goes with --format label-studio")
    name, version = name_and_version(campaign, None)
    with RegistryClient() as client:
        record = client.get(project, COLLECTION, name, version)
        dest = out_file or Path(f"{name}-v{record['version']}-{fmt}.{'jsonl' if fmt == 'jsonl' else 'json'}")
        client.export_tasks(project, name, record["version"], fmt, dest)
    if label_config is not None:
        from app.evaluations.formats import LABEL_STUDIO_CONFIG

        label_config.write_text(LABEL_STUDIO_CONFIG, encoding="utf-8")
    counts = record["derived"]["counts"]
    out.print(
        f"{counts['tasks']} tasks on {counts['prompts']} prompts of {label(record)} -> {dest}",
        markup=False,
        soft_wrap=True,
    )


def _judgments(source: Path, fmt: str) -> list[dict[str, Any]]:
    """The file's judgments as the server will read them; its problems, by row, as one error."""
    from app.core.errors import ValidationFailed
    from app.evaluations.formats import Format, parse_judgments

    try:
        return parse_judgments(source.read_bytes(), cast(Format, fmt))
    except ValidationFailed as exc:
        for problem in (exc.errors or [])[:20]:
            where = ".".join(str(part) for part in problem["loc"][2:]) or "file"
            err.print(f"  row {escape(where)}: {escape(str(problem['msg']))}", soft_wrap=True)
        raise UserError(f"{source} is not a {fmt} judgments file: {exc.detail}", "fix the rows listed above") from None


@campaigns_app.command("import")
def import_judgments(
    project: str,
    campaign: Annotated[str, typer.Argument(help=f"the campaign judged: {FORMS}")],
    source: Annotated[Path, typer.Argument(help="the judgments: the tool's export, or JSON lines")],
    name: Annotated[str, typer.Option(help="the evaluation's name")],
    fmt: Annotated[str, typer.Option("--format", help=" | ".join(FORMATS))] = "jsonl",
    kind: Annotated[str, typer.Option("--type", help=" | ".join(TYPES))] = "human_preference",
    evaluator: Annotated[
        list[str] | None,
        typer.Option(
            help="TOOL_USER=PRINCIPAL: who an evaluator of the file is in the registry (repeatable); "
            "Label Studio names users by email or ls-user-<id>, Argilla by user id"
        ),
    ] = None,
) -> None:
    """Register the judgments of a campaign's tasks as an evaluation; the server rates every checkpoint."""
    _format(fmt)
    if kind not in TYPES:
        raise usage_error(f"--type {kind!r}", f"one of: {', '.join(TYPES)}")
    names = dict(_pair(item) for item in evaluator or [])
    judgments = _judgments(source, fmt)
    if not judgments:
        raise UserError(f"nothing registered: {source} holds no judgment", "export the annotations once they are done")
    evaluators = {j["evaluator"] for j in judgments}
    unknown = sorted(set(names) - evaluators)
    if unknown:
        raise UserError(
            f"--evaluator names {unknown}, who judged nothing in {source.name}", f"evaluators: {sorted(evaluators)}"
        )
    err.print(f"{len(judgments)} judgments by {len(evaluators)} evaluator(s) in {source.name}", soft_wrap=True)
    with RegistryClient() as client:
        judged = resolve(client, campaign, project=project, kind="evaluation_campaign")
        spec: dict[str, Any] = {"type": kind, "evidence_blob": upload(client, source), "evidence_format": fmt}
        if names:
            spec["evaluator_names"] = names
        record = client.register(project, "evaluations", {"name": name, "campaign": {"id": judged["id"]}, "spec": spec})
    out.print(f"evaluation {label(record)}  id={record['id']}  of campaign {label(judged)}", markup=False)
    if record["derived"].get("ratings"):
        out.print(ratings_table(record))


def _pair(item: str) -> tuple[str, str]:
    tool_user, sep, principal = item.partition("=")
    if not sep or not tool_user or not principal:
        raise usage_error(f"--evaluator {item!r}", "give TOOL_USER=PRINCIPAL, e.g. --evaluator ls-user-3=ann")
    return tool_user, principal


@campaigns_app.command("candidate")
def candidate(
    project: str,
    series: Annotated[str, typer.Argument(help="a policy-checkpoint series (its name)")],
    human_only: Annotated[bool, typer.Option(help="only people's judgments, never an AI judge's")] = False,
) -> None:
    """The series' deployment candidate: the checkpoint its latest campaign evaluation rates highest."""
    with RegistryClient() as client:
        answer = client.candidate(project, series, human_only=human_only)
    evaluation = answer["evaluation"]
    judged_by = "an AI judge" if evaluation["ai_judged"] else "people"
    record = {"name": evaluation["name"], "version": evaluation["version"], "derived": answer}
    out.print(ratings_table(record))
    err.print(f"{evaluation['judgments']} judgments by {judged_by}", soft_wrap=True)
    chosen = answer["candidate"]
    if chosen is None:
        raise UserError(f"no checkpoint of {series} could be rated", "collect judgments that compare its checkpoints")
    out.print(f"{chosen['name']}@{chosen['version']}", markup=False)


def ratings_table(record: dict[str, Any]) -> Table:
    """Every model's rating with its interval and its win rate against the reference, as derived."""
    table = Table(title=escape(f"ratings {label(record)}"))
    for column in ("model", "step", "role", "rating [95% interval]", "win rate vs reference"):
        table.add_column(column)
    for rating in record["derived"]["ratings"]:
        versus = rating.get("vs_reference")
        table.add_row(
            escape(f"{rating['name']}@{rating['version']}"),
            "-" if rating["step"] is None else str(rating["step"]),
            rating["role"],
            _interval(rating["rating"], rating["low"], rating["high"]),
            "-" if not versus else f"{_interval(versus['win_rate'], versus['low'], versus['high'])} n={versus['n']}",
        )
    candidate = record["derived"].get("candidate")
    if candidate:
        table.caption = escape(f"candidate: {candidate['name']}@{candidate['version']}. {candidate['advice']}")
    return table


def _interval(value: float | None, low: float | None, high: float | None) -> str:
    if value is None:
        return "-"
    bounds = "" if low is None or high is None else f" [{low:.2f}, {high:.2f}]"
    return f"{value:.2f}{bounds}"
