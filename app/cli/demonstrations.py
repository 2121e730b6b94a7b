"""`rlhf-registry demonstrations import FORMAT FILE`: a demonstration file (TRL prompt-completion or
messages JSONL) registered as a prompt set and a demonstration set, the input of an `sft` run.

What the CLI can check is checked before anything is registered (the file's shape, the prompt source and
its privacy review, the criteria the demonstrations follow); then both sets are uploaded as blobs and
registered, and the figures the server derived are printed.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from app.cli.console import UserError, err, out, usage_error
from app.cli.data import upload
from app.cli.references import FORMS, reference, resolve, split_name
from app.client import RegistryClient
from app.importers import ImportFormatError
from app.importers.demonstrations import FORMATS, DemonstrationImport, from_demonstrations_jsonl

demonstrations_app = typer.Typer(help="Demonstration sets (supervised fine-tuning).", no_args_is_help=True)
SOURCES = ("usage", "synthetic", "expert", "adversarial")
SHAPE_HINT = {
    "prompt-completion": "name the row's fields with --prompt-field and --completion-field",
    "messages": "name the row's message list with --messages-field; its last message is the response",
}


def _lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as fh:
            return [line for line in fh if line.strip()]
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"cannot read {path}: {exc}", "pass a JSONL file (or .jsonl.gz)") from None


def read_file(fmt: str, source: Path, options: dict[str, Any]) -> DemonstrationImport:
    """The importer's result for `source`; a shape it does not have is a `UserError` with a hint."""
    try:
        return from_demonstrations_jsonl(_lines(source), fmt=fmt, **options)
    except ImportFormatError as exc:
        raise UserError(f"{source} is not {fmt} JSONL this importer reads: {exc}", SHAPE_HINT[fmt]) from None


def _write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path


def figures_table(record: dict[str, Any]) -> Table:
    """What the server derived for a demonstration set."""
    derived = record["derived"]
    table = Table(title=escape(f"demonstration set {record['name']} v{record['version']}"))
    table.add_column("figure")
    table.add_column("value", justify="right")
    rows = [
        ("demonstrations", derived["count"]),
        ("prompts covered", derived["prompts_covered"]),
        ("prompt set share", f"{derived['prompt_set_share']:.1%}"),
        ("median response length (chars)", derived["lengths"]["response"]["median"]),
        ("prompts also in preference data", derived["in_preference_data"]["prompts"]),
        *((f"source {key}", value) for key, value in derived["coverage"]["source"].items()),
    ]
    for name, value in rows:
        table.add_row(escape(name), escape(str(value)))
    return table


@demonstrations_app.command("import")
def import_demonstrations(
    fmt: Annotated[str, typer.Argument(metavar="FORMAT", help=" | ".join(FORMATS))],
    source: Annotated[Path, typer.Argument(help="the JSONL file (or .jsonl.gz)")],
    project: Annotated[str, typer.Option()],
    criteria: Annotated[str, typer.Option(help=f"the criteria the demonstrations follow: {FORMS}")],
    prompt_set: Annotated[str, typer.Option(help="NAME@VERSION to register the file's prompts as")],
    name: Annotated[str, typer.Option(help="the demonstration set's name")],
    procedure: Annotated[str, typer.Option(help="how the responses were written or chosen")] = "",
    prompt_source: Annotated[str, typer.Option(help=" | ".join(SOURCES))] = "usage",
    privacy_reviewed: Annotated[bool, typer.Option(help="the prompts were privacy-reviewed")] = False,
    author: Annotated[str | None, typer.Option(help="who wrote every response, when the file does not say")] = None,
    prompt_field: Annotated[str, typer.Option(help="prompt-completion: the prompt's field")] = "prompt",
    completion_field: Annotated[str, typer.Option(help="prompt-completion: the response's field")] = "completion",
    messages_field: Annotated[str, typer.Option(help="messages: the message list's field")] = "messages",
    id_field: Annotated[str | None, typer.Option(help="a field holding each row's own id")] = None,
) -> None:
    """Import a demonstration file: its prompts as a prompt set, its responses as a demonstration set."""
    if fmt not in FORMATS:
        raise usage_error(f"unknown format {fmt!r}", f"one of: {', '.join(FORMATS)}")
    if prompt_source not in SOURCES:
        raise usage_error(f"--prompt-source {prompt_source!r}", f"one of: {', '.join(SOURCES)}")
    named = split_name(prompt_set)
    if named is None or named[1] == "latest":
        raise usage_error(f"--prompt-set {prompt_set!r}: name the new prompt set NAME@VERSION (a semver)")
    criteria_ref = reference(criteria)
    options: dict[str, Any] = {
        "prompt_field": prompt_field,
        "completion_field": completion_field,
        "messages_field": messages_field,
        "id_field": id_field,
        "author": author,
        "source": prompt_source,
        "privacy_reviewed": privacy_reviewed,
    }
    result = read_file(fmt, source, options)
    for loss in result.losses:
        err.print(f"lost in import: {loss}", style="yellow", markup=False, soft_wrap=True)
    if not result.demonstrations:
        raise UserError(f"nothing registered: {source} holds no demonstration")
    if prompt_source == "usage" and not privacy_reviewed:
        raise UserError(
            "nothing registered: the prompts come from usage and are not privacy-reviewed",
            "have them reviewed, then add --privacy-reviewed (or set --prompt-source if they are not usage prompts)",
        )
    with RegistryClient() as client, tempfile.TemporaryDirectory() as tmp:
        # the cited criteria must exist before anything is registered
        resolve(client, criteria, project=project, kind="criteria")
        prompt_ref = {"name": named[0], "version": named[1]}
        sampling = f"The prompts of {source.name} ({fmt}), {len(result.prompts)} prompts."
        prompts_digest = upload(client, _write_jsonl(Path(tmp) / "prompts.jsonl", result.prompts))
        client.register(
            project,
            "prompt-sets",
            {**prompt_ref, "spec": {"sampling_procedure": sampling, "prompts_blob": prompts_digest}},
        )
        rows_digest = upload(client, _write_jsonl(Path(tmp) / "demonstrations.jsonl", result.demonstrations))
        record = client.register(
            project,
            "demonstration-sets",
            {
                "name": name,
                "criteria": criteria_ref,
                "prompt_set": prompt_ref,
                "spec": {
                    "procedure": procedure or f"Imported from {source.name} ({fmt}).",
                    "demonstrations_blob": rows_digest,
                },
            },
        )
    out.print(f"imported {len(result.demonstrations)} demonstrations on {len(result.prompts)} prompts")
    out.print(figures_table(record))
