"""`rlhf-registry import FORMAT SOURCE`: an annotation tool's export (or a public preference dataset)
registered as a prompt set and an annotation batch.

Everything the CLI can check is checked before anything is registered: the export's shape, the dates,
the AI model and the privacy review the registry will ask for (each refusal names the flag to add), and
the criteria the batch cites. Only then are the prompt set and the batch uploaded and registered.
"""

from __future__ import annotations

import gzip
import json
import tempfile
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer

from app import importers
from app.cli.console import UserError, err, out, read_json, usage_error
from app.cli.data import qc_table, upload
from app.cli.references import FORMS, reference, resolve, split_name
from app.client import RegistryClient

FORMATS = ("label-studio", "argilla", "hf-jsonl", "pandalm", "prd-vicuna80")
# the field options each format takes: command-line option -> the importer's keyword
FIELD_OPTIONS: dict[str, dict[str, str]] = {
    "label-studio": {
        "--prompt-field": "prompt_field",
        "--response-a-field": "response_a_field",
        "--response-b-field": "response_b_field",
        "--model-a-field": "model_a_field",
        "--model-b-field": "model_b_field",
        "--question": "choice_from_name",
    },
    "argilla": {
        "--prompt-field": "prompt_field",
        "--response-a-field": "response_a_field",
        "--response-b-field": "response_b_field",
        "--model-a-field": "model_a_field",
        "--model-b-field": "model_b_field",
        "--question": "question",
    },
    "hf-jsonl": {
        "--prompt-field": "prompt_field",
        "--chosen-field": "chosen_field",
        "--rejected-field": "rejected_field",
    },
    "pandalm": {},
    "prd-vicuna80": {},
}
SHAPE_HINT = {
    "label-studio": "name the export's fields with --prompt-field, --response-a-field, --response-b-field "
    "(and the preference tag with --question)",
    "argilla": "name the dataset's fields with --prompt-field, --response-a-field, --response-b-field "
    "(and the preference question with --question)",
    "hf-jsonl": "name the row's fields with --prompt-field, --chosen-field, --rejected-field",
    "pandalm": "pass PandaLM's data/testset-v1.json",
    "prd-vicuna80": "pass the folder of PRD's Vicuna-80 review files",
}


def _json_lines(path: Path) -> list[str]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [line for line in fh if line.strip()]


def _records(path: Path) -> list[Any]:
    """A JSON list, JSON lines, or one JSON object (a single record, pretty-printed or not)."""
    text = path.read_text(encoding="utf-8")
    if text.lstrip().startswith("["):
        return list(read_json(path))
    lines = [line for line in text.splitlines() if line.strip()]
    try:
        return [json.loads(line) for line in lines]
    except json.JSONDecodeError as exc:
        if len(lines) > 1 and text.lstrip().startswith("{"):
            return [read_json(path)]
        raise UserError(f"{path} is neither JSON nor JSON lines: {exc.msg}", "fix the file") from None


def run_importer(fmt: str, source: Path, options: dict[str, Any]) -> importers.ImportResult:
    """Read `source` with the importer of `fmt`; a shape it does not have is a `UserError` with a hint."""
    readers: dict[str, Callable[[], importers.ImportResult]] = {
        "label-studio": lambda: importers.from_label_studio(read_json(source), **options),
        "argilla": lambda: importers.from_argilla(_records(source), **options),
        "hf-jsonl": lambda: importers.from_hf_preference_jsonl(_json_lines(source), **options),
        "pandalm": lambda: importers.from_pandalm(source, **options),
        "prd-vicuna80": lambda: importers.from_prd_vicuna80(source, **options),
    }
    try:
        return readers[fmt]()
    except importers.ImportFormatError as exc:
        raise UserError(f"{source} is not a {fmt} export this importer reads: {exc}", SHAPE_HINT[fmt]) from None


def _field_options(fmt: str, given: dict[str, str | None]) -> dict[str, str]:
    accepted = FIELD_OPTIONS[fmt]
    options: dict[str, str] = {}
    for flag, value in given.items():
        if value is None:
            continue
        if flag not in accepted:
            takers = ", ".join(f for f, names in FIELD_OPTIONS.items() if flag in names)
            raise usage_error(f"{flag} does not apply to {fmt}", f"it applies to: {takers}")
        options[accepted[flag]] = value
    return options


def _day(flag: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        date.fromisoformat(value)
    except ValueError:
        raise usage_error(f"{flag} {value!r} is not a date", "write it as YYYY-MM-DD") from None
    return value


def batch_problems(
    result: importers.ImportResult, meta: dict[str, Any], prompt_source: str, reviewed: bool
) -> list[str]:
    """What the registry would refuse in this import, each with the flag that fixes it."""
    problems = []
    if not result.items:
        problems.append("the export holds no usable judgement (see the losses above)")
    if not meta.get("collected_from") or not meta.get("collected_to"):
        problems.append(
            "the export carries no annotation dates: add --collected-from YYYY-MM-DD --collected-to YYYY-MM-DD"
        )
    elif meta["collected_to"] < meta["collected_from"]:
        problems.append(f"collected_to {meta['collected_to']} is before collected_from {meta['collected_from']}")
    if meta.get("ai_assisted") and not meta.get("ai_model"):
        problems.append("annotators saw suggestions from a model the export does not name: add --ai-model NAME")
    if prompt_source == "usage" and not reviewed and result.prompts:
        problems.append(
            "the prompts come from usage and are not privacy-reviewed: have them reviewed, then add "
            "--privacy-reviewed (or set --prompt-source if they are not usage prompts)"
        )
    return problems


def import_export(
    fmt: Annotated[str, typer.Argument(metavar="FORMAT", help=" | ".join(FORMATS))],
    source: Annotated[Path, typer.Argument(help="the export file (or folder for prd-vicuna80)")],
    project: Annotated[str, typer.Option()],
    criteria: Annotated[str, typer.Option(help=f"the criteria the annotators followed: {FORMS}")],
    prompt_set: Annotated[str, typer.Option(help="NAME@VERSION to register the imported prompts as")],
    batch: Annotated[str, typer.Option(help="batch name")],
    prompt_source: Annotated[str, typer.Option(help="usage | synthetic | expert | adversarial")] = "usage",
    privacy_reviewed: Annotated[bool, typer.Option(help="the prompts were privacy-reviewed")] = False,
    sampling_procedure: str = "",
    collected_from: Annotated[str | None, typer.Option(help="YYYY-MM-DD, when the export has no dates")] = None,
    collected_to: Annotated[str | None, typer.Option(help="YYYY-MM-DD, when the export has no dates")] = None,
    ai_model: Annotated[str | None, typer.Option(help="the assisting model, when the export does not name it")] = None,
    prompt_field: Annotated[
        str | None, typer.Option(help="label-studio, argilla, hf-jsonl: the field holding the prompt")
    ] = None,
    response_a_field: Annotated[
        str | None, typer.Option(help="label-studio, argilla: the field holding the first response")
    ] = None,
    response_b_field: Annotated[
        str | None, typer.Option(help="label-studio, argilla: the field holding the second one")
    ] = None,
    chosen_field: Annotated[str | None, typer.Option(help="hf-jsonl: field holding the chosen response")] = None,
    rejected_field: Annotated[str | None, typer.Option(help="hf-jsonl: field holding the rejected one")] = None,
    model_a_field: Annotated[
        str | None, typer.Option(help="label-studio, argilla: the field naming the first model")
    ] = None,
    model_b_field: Annotated[
        str | None, typer.Option(help="label-studio, argilla: the field naming the second model")
    ] = None,
    question: Annotated[
        str | None,
        typer.Option(
            help="argilla: the preference question (default: `preference`, else `ranking` as "
            "Settings.for_ranking names it); label-studio: the preference tag's name"
        ),
    ] = None,
) -> None:
    """Import an export: register its prompts as a prompt set and its judgements as a batch."""
    if fmt not in FORMATS:
        raise usage_error(f"unknown format {fmt!r}", f"one of: {', '.join(FORMATS)}")
    if prompt_source not in ("usage", "synthetic", "expert", "adversarial"):
        raise usage_error(f"--prompt-source {prompt_source!r}", "one of: usage, synthetic, expert, adversarial")
    named = split_name(prompt_set)
    if named is None or named[1] == "latest":
        raise usage_error(f"--prompt-set {prompt_set!r}: name the new prompt set NAME@VERSION (a semver)")
    criteria_ref = reference(criteria)
    given = {
        "--prompt-field": prompt_field,
        "--response-a-field": response_a_field,
        "--response-b-field": response_b_field,
        "--chosen-field": chosen_field,
        "--rejected-field": rejected_field,
        "--model-a-field": model_a_field,
        "--model-b-field": model_b_field,
        "--question": question,
    }
    options: dict[str, Any] = _field_options(fmt, given)
    dates = {
        "collected_from": _day("--collected-from", collected_from),
        "collected_to": _day("--collected-to", collected_to),
    }

    result = run_importer(fmt, source, {**options, "source": prompt_source, "privacy_reviewed": privacy_reviewed})
    for loss in result.losses:
        err.print(f"lost in import: {loss}", style="yellow", markup=False, soft_wrap=True)
    chosen = {**dates, "ai_model": ai_model}
    meta = {k: v for k, v in {**result.batch_meta, **{k: v for k, v in chosen.items() if v}}.items() if v is not None}
    problems = batch_problems(result, meta, prompt_source, privacy_reviewed)
    if problems:
        raise UserError("nothing registered: " + "; ".join(problems))

    with RegistryClient() as client, tempfile.TemporaryDirectory() as tmp:
        # the cited criteria must exist before anything is registered
        resolve(client, criteria, project=project, kind="criteria")
        prompts_file = Path(tmp) / "prompts.jsonl"
        prompts_file.write_text("".join(json.dumps(p) + "\n" for p in result.prompts))
        items_file = Path(tmp) / "items.jsonl"
        items_file.write_text("".join(json.dumps(i) + "\n" for i in result.items))
        procedure = (
            sampling_procedure or f"Imported from a {fmt} export ({source.name}); {len(result.prompts)} prompts."
        )
        prompt_ref = {"name": named[0], "version": named[1]}
        client.register(
            project,
            "prompt-sets",
            {**prompt_ref, "spec": {"sampling_procedure": procedure, "prompts_blob": upload(client, prompts_file)}},
        )
        record = client.register(
            project,
            "annotation-batches",
            {
                "name": batch,
                "criteria": criteria_ref,
                "prompt_set": prompt_ref,
                "spec": {**meta, "items_blob": upload(client, items_file)},
            },
        )
    out.print(f"imported {len(result.items)} judgements on {len(result.prompts)} prompts")
    out.print(qc_table(record))
