"""CLI for the annotation side: push prompt sets and batches, import tool exports, export datasets."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn
from rich.table import Table

from app import importers
from app.client import ApiError, RegistryClient

prompts_app = typer.Typer(help="Prompt sets.", no_args_is_help=True)
batches_app = typer.Typer(help="Annotation batches.", no_args_is_help=True)
datasets_app = typer.Typer(help="Preference datasets.", no_args_is_help=True)
import_app = typer.Typer(help="Import an annotation tool's export as a prompt set and a batch.", no_args_is_help=True)

out = Console()
err = Console(stderr=True)


def fail(exc: ApiError) -> None:
    err.print(f"[red]error {exc.status} {exc.code}[/red]: {exc.problem.get('detail', '')}")
    for item in (exc.problem.get("errors") or [])[:20]:
        err.print(f"  {'.'.join(str(x) for x in item.get('loc', []))}: {item.get('msg')}")
    raise typer.Exit(1)


def ref(text: str) -> dict[str, str]:
    """`name@version` -> a reference."""
    name, _, version = text.partition("@")
    if not name or not version:
        raise typer.BadParameter(f"{text!r}: expected NAME@VERSION")
    return {"name": name, "version": version}


def byte_progress() -> Progress:
    """A progress bar over bytes, on stderr (stdout stays for results)."""
    return Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err,
    )


def upload(client: RegistryClient, path: Path) -> str:
    with byte_progress() as progress:
        task = progress.add_task(f"upload {path.name}", total=path.stat().st_size)
        result = client.upload_file(path, partial(progress.advance, task))
    return str(result["digest"])


def qc_table(record: dict[str, Any]) -> Table:
    qc = record["derived"]["qc"]
    table = Table(title=f"QC {record['name']} v{record['version']}: gate {qc['gate'].upper()}")
    table.add_column("figure")
    table.add_column("value", justify="right")

    def fmt(value: Any) -> str:
        return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)

    rows: list[tuple[str, Any]] = [
        ("items", record["derived"]["items"]),
        ("cohen kappa (mean)", qc["cohen_kappa"]["mean"]),
        ("cohen kappa (min)", qc["cohen_kappa"]["min"]),
        ("krippendorff alpha", qc["krippendorff_alpha"]),
        ("gold accuracy", qc["gold_accuracy"]["overall"]),
        ("position bias (share first)", qc["position_bias"]["share_first"]),
        ("position bias p-value", qc["position_bias"]["p_value"]),
        ("length bias (share longer)", qc["length_bias"]["share_longer"]),
        ("tie rate", qc["tie_rate"]),
        ("high-disagreement rate", qc["high_disagreement_rate"]),
        ("sessions over limit", qc["sessions_over_limit"]["count"]),
        ("policy version", qc["policy_version"]),
    ]
    for name, value in rows:
        table.add_row(name, fmt(value))
    for reason in qc.get("gate_reasons", []):
        table.add_row("[yellow]gate reason[/yellow]", reason)
    return table


@prompts_app.command("push")
def prompts_push(
    project: str,
    file: Annotated[Path, typer.Argument(help="JSONL of prompts, or a JSON request body")],
    name: Annotated[str | None, typer.Option(help="prompt-set name (JSONL input)")] = None,
    version: Annotated[str | None, typer.Option(help="semver (JSONL input)")] = None,
    sampling_procedure: Annotated[str, typer.Option(help="text, or @FILE to read it from a file")] = "",
) -> None:
    """Register a prompt set; JSONL prompts are uploaded as a blob with a progress bar."""
    with RegistryClient() as client:
        try:
            if file.suffix == ".json":
                body = json.loads(file.read_text())
            else:
                if not (name and version and sampling_procedure):
                    raise typer.BadParameter("JSONL input needs --name, --version and --sampling-procedure")
                text = (
                    Path(sampling_procedure[1:]).read_text()
                    if sampling_procedure.startswith("@")
                    else sampling_procedure
                )
                body = {
                    "name": name,
                    "version": version,
                    "spec": {"sampling_procedure": text, "prompts_blob": upload(client, file)},
                }
            record = client.register(project, "prompt-sets", body)
        except ApiError as exc:
            fail(exc)
    derived = record["derived"]
    out.print(f"prompt_set {record['name']} {record['version']}  id={record['id']}  prompts={derived['count']}")
    out.print("mix: " + ", ".join(f"{k} {derived['mix'][k]:.2f}" for k in ("usage", "synthetic", "edge")))
    for warning in derived["warnings"]:
        out.print(f"[yellow]warning[/yellow]: {warning}")


@batches_app.command("push")
def batches_push(
    project: str,
    file: Annotated[Path, typer.Argument(help="items as JSONL or Parquet, or a JSON request body")],
    name: Annotated[str | None, typer.Option()] = None,
    criteria: Annotated[str | None, typer.Option(help="NAME@VERSION")] = None,
    prompt_set: Annotated[str | None, typer.Option(help="NAME@VERSION")] = None,
    annotator_pool: str = "",
    tool: str = "",
    collected_from: str = "",
    collected_to: str = "",
    ai_model: Annotated[str | None, typer.Option(help="set for AI-assisted batches")] = None,
) -> None:
    """Register an annotation batch (items uploaded as a blob) and print its QC summary."""
    with RegistryClient() as client:
        try:
            if file.suffix == ".json":
                body = json.loads(file.read_text())
            else:
                if not (
                    name and criteria and prompt_set and annotator_pool and tool and collected_from and collected_to
                ):
                    raise typer.BadParameter(
                        "items files need --name --criteria --prompt-set --annotator-pool --tool "
                        "--collected-from --collected-to"
                    )
                body = {
                    "name": name,
                    "criteria": ref(criteria),
                    "prompt_set": ref(prompt_set),
                    "spec": {
                        "annotator_pool": annotator_pool,
                        "tool": tool,
                        "collected_from": collected_from,
                        "collected_to": collected_to,
                        "ai_assisted": ai_model is not None,
                        "ai_model": ai_model,
                        "items_blob": upload(client, file),
                    },
                }
            record = client.register(project, "annotation-batches", body)
        except ApiError as exc:
            fail(exc)
    out.print(f"annotation_batch {record['name']} v{record['version']}  id={record['id']}")
    out.print(qc_table(record))


Format = Literal["label-studio", "argilla", "hf-jsonl", "pandalm", "prd-vicuna80"]


def _run_importer(fmt: str, source: Path, options: dict[str, Any]) -> importers.ImportResult:
    readers: dict[str, Callable[[], importers.ImportResult]] = {
        "label-studio": lambda: importers.from_label_studio(json.loads(source.read_text()), **options),
        "argilla": lambda: importers.from_argilla(_json_or_jsonl(source), **options),
        "hf-jsonl": lambda: importers.from_hf_preference_jsonl(_lines(source), **options),
        "pandalm": lambda: importers.from_pandalm(source, **options),
        "prd-vicuna80": lambda: importers.from_prd_vicuna80(source, **options),
    }
    if fmt not in readers:
        raise typer.BadParameter(f"unknown format {fmt!r}; one of {sorted(readers)}")
    return readers[fmt]()


def _lines(path: Path) -> list[str]:
    import gzip

    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return [line for line in fh if line.strip()]


def _json_or_jsonl(path: Path) -> list[dict[str, Any]]:
    text = path.read_text()
    if text.lstrip().startswith("["):
        return list(json.loads(text))
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def import_export(
    fmt: Annotated[
        str,
        typer.Argument(metavar="FORMAT", help="label-studio | argilla | hf-jsonl | pandalm | prd-vicuna80"),
    ],
    source: Annotated[Path, typer.Argument(help="the export file (or folder for prd-vicuna80)")],
    project: Annotated[str, typer.Option()],
    criteria: Annotated[str, typer.Option(help="NAME@VERSION the annotators followed")],
    prompt_set: Annotated[str, typer.Option(help="NAME@VERSION to register the imported prompts as")],
    batch: Annotated[str, typer.Option(help="batch name")],
    prompt_source: Annotated[str, typer.Option(help="usage | synthetic | expert | adversarial")] = "usage",
    privacy_reviewed: Annotated[bool, typer.Option(help="the prompts were privacy-reviewed")] = False,
    sampling_procedure: str = "",
    collected_from: Annotated[str | None, typer.Option(help="YYYY-MM-DD, when the export has no dates")] = None,
    collected_to: Annotated[str | None, typer.Option(help="YYYY-MM-DD, when the export has no dates")] = None,
    ai_model: Annotated[str | None, typer.Option(help="the assisting model, when the export does not name it")] = None,
) -> None:
    """Import an export: register its prompts as a prompt set and its judgements as a batch."""
    result = _run_importer(fmt, source, {"source": prompt_source, "privacy_reviewed": privacy_reviewed})
    for loss in result.losses:
        err.print(f"[yellow]lost in import[/yellow]: {loss}")
    ps = ref(prompt_set)
    with RegistryClient() as client, tempfile.TemporaryDirectory() as tmp:
        try:
            prompts_file = Path(tmp) / "prompts.jsonl"
            prompts_file.write_text("".join(json.dumps(p) + "\n" for p in result.prompts))
            procedure = (
                sampling_procedure or f"Imported from a {fmt} export ({source.name}); {len(result.prompts)} prompts."
            )
            client.register(
                project,
                "prompt-sets",
                {
                    **ps,
                    "spec": {"sampling_procedure": procedure, "prompts_blob": upload(client, prompts_file)},
                },
            )
            items_file = Path(tmp) / "items.jsonl"
            items_file.write_text("".join(json.dumps(i) + "\n" for i in result.items))
            given = {"collected_from": collected_from, "collected_to": collected_to, "ai_model": ai_model}
            meta = {**result.batch_meta, **{k: v for k, v in given.items() if v is not None}}
            meta = {k: v for k, v in meta.items() if v is not None}
            record = client.register(
                project,
                "annotation-batches",
                {
                    "name": batch,
                    "criteria": ref(criteria),
                    "prompt_set": ps,
                    "spec": {**meta, "items_blob": upload(client, items_file)},
                },
            )
        except ApiError as exc:
            fail(exc)
    out.print(f"imported {len(result.items)} judgements on {len(result.prompts)} prompts")
    out.print(qc_table(record))


@datasets_app.command("export")
def datasets_export(
    project: str,
    name: str,
    dest: Path,
    version: str = "latest",
    fmt: Annotated[str, typer.Option("--format", help="jsonl | parquet")] = "jsonl",
    split: Annotated[str, typer.Option(help="train | validation | all")] = "all",
    with_labels: Annotated[bool, typer.Option(help="keep split, votes and per-dimension labels")] = False,
) -> None:
    """Download a preference dataset (digest verified) and write it in the TRL format."""
    if fmt not in ("jsonl", "parquet") or split not in ("train", "validation", "all"):
        raise typer.BadParameter("--format jsonl|parquet, --split train|validation|all")
    with RegistryClient() as client, tempfile.TemporaryDirectory() as tmp:
        try:
            record = client.get(project, "preference-datasets", name, version)
            digest = record["derived"]["files"][0]["digest"]
            local = Path(tmp) / "dataset.parquet"
            with byte_progress() as progress:
                task = progress.add_task("download", total=record["derived"]["files"][0]["size"])
                client.download_blob(digest, local, partial(progress.advance, task))
        except ApiError as exc:
            fail(exc)
        # pyarrow is imported here, not with the CLI: it would add about 100 MiB to every command,
        # `verify` included, whose whole budget is 200 MiB
        from app.exporters import export_dataset

        rows = export_dataset(local, dest, fmt=fmt, split=split, with_labels=with_labels)  # type: ignore[arg-type]
    out.print(f"{rows} rows -> {dest}")
