"""The annotation side: push prompt sets and batches, build preference datasets and export them."""

from __future__ import annotations

import json
import tempfile
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from app.cli.console import byte_progress, out, read_json_object, usage_error
from app.cli.references import FORMS, label, name_and_version, reference
from app.client import RegistryClient

prompts_app = typer.Typer(help="Prompt sets.", no_args_is_help=True)
batches_app = typer.Typer(help="Annotation batches.", no_args_is_help=True)
datasets_app = typer.Typer(help="Preference datasets.", no_args_is_help=True)
BATCH_FIELDS = ("annotator_pool", "tool", "collected_from", "collected_to")


def upload(client: RegistryClient, path: Path) -> str:
    """Upload `path` as a blob with a progress bar; its digest."""
    with byte_progress() as progress:
        task = progress.add_task(f"upload {path.name}", total=path.stat().st_size)
        result = client.upload_file(path, partial(progress.advance, task))
    return str(result["digest"])


def qc_table(record: dict[str, Any]) -> Table:
    """The QC figures the server derived for a batch, and its gate."""
    qc = record["derived"]["qc"]
    table = Table(title=escape(f"QC {record['name']} v{record['version']}: gate {qc['gate'].upper()}"))
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
        table.add_row("[yellow]gate reason[/yellow]", escape(reason))
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
    if file.suffix == ".json":
        body = read_json_object(file, "a prompt-set request body")
    else:
        missing = [flag for flag, value in (("--name", name), ("--version", version)) if not value]
        if not sampling_procedure:
            missing.append("--sampling-procedure")
        if missing:
            raise usage_error(f"JSONL input needs {', '.join(missing)}", "or pass a JSON request body (FILE.json)")
        text = Path(sampling_procedure[1:]).read_text() if sampling_procedure.startswith("@") else sampling_procedure
        file.stat()  # a missing file is reported before anything is sent
        body = {"name": name, "version": version, "spec": {"sampling_procedure": text}}
    with RegistryClient() as client:
        if file.suffix != ".json":
            body["spec"]["prompts_blob"] = upload(client, file)
        record = client.register(project, "prompt-sets", body)
    derived = record["derived"]
    out.print(
        f"prompt_set {record['name']} {record['version']}  id={record['id']}  prompts={derived['count']}",
        markup=False,
        soft_wrap=True,
    )
    out.print("mix: " + ", ".join(f"{k} {derived['mix'][k]:.2f}" for k in ("usage", "synthetic", "edge")))
    for warning in derived["warnings"]:
        out.print(f"[yellow]warning[/yellow]: {escape(warning)}", soft_wrap=True)


@batches_app.command("push")
def batches_push(
    project: str,
    file: Annotated[Path, typer.Argument(help="items as JSONL or Parquet, or a JSON request body")],
    name: Annotated[str | None, typer.Option()] = None,
    criteria: Annotated[str | None, typer.Option(help=f"the criteria: {FORMS}")] = None,
    prompt_set: Annotated[str | None, typer.Option(help=f"the prompt set: {FORMS}")] = None,
    annotator_pool: str = "",
    tool: str = "",
    collected_from: str = "",
    collected_to: str = "",
    ai_model: Annotated[str | None, typer.Option(help="set for AI-assisted batches")] = None,
) -> None:
    """Register an annotation batch (items uploaded as a blob) and print its QC summary."""
    if file.suffix == ".json":
        body = read_json_object(file, "an annotation-batch request body")
    else:
        given = {
            "--name": name,
            "--criteria": criteria,
            "--prompt-set": prompt_set,
            "--annotator-pool": annotator_pool,
            "--tool": tool,
            "--collected-from": collected_from,
            "--collected-to": collected_to,
        }
        missing = [flag for flag, value in given.items() if not value]
        if missing:
            raise usage_error(f"an items file needs {' '.join(missing)}", "or pass a JSON request body (FILE.json)")
        assert criteria is not None and prompt_set is not None  # checked above, for mypy
        file.stat()  # a missing file is reported before anything is sent
        body = {
            "name": name,
            "criteria": reference(criteria),
            "prompt_set": reference(prompt_set),
            "spec": {
                "annotator_pool": annotator_pool,
                "tool": tool,
                "collected_from": collected_from,
                "collected_to": collected_to,
                "ai_assisted": ai_model is not None,
                "ai_model": ai_model,
            },
        }
    with RegistryClient() as client:
        if file.suffix != ".json":
            body["spec"]["items_blob"] = upload(client, file)
        record = client.register(project, "annotation-batches", body)
    out.print(f"annotation_batch {record['name']} v{record['version']}  id={record['id']}", markup=False)
    out.print(qc_table(record))


@datasets_app.command("export")
def datasets_export(
    project: str,
    name: Annotated[str, typer.Argument(metavar="NAME[@VERSION]")],
    dest: Path,
    version: Annotated[str | None, typer.Option(help="default: latest")] = None,
    fmt: Annotated[str, typer.Option("--format", help="jsonl | parquet")] = "jsonl",
    split: Annotated[str, typer.Option(help="train | validation | all")] = "all",
    with_labels: Annotated[bool, typer.Option(help="keep split, votes and per-dimension labels")] = False,
) -> None:
    """Download a preference dataset (digest verified) and write it in the TRL format."""
    if fmt not in ("jsonl", "parquet") or split not in ("train", "validation", "all"):
        raise typer.BadParameter("--format jsonl|parquet, --split train|validation|all")
    name, version = name_and_version(name, version)
    with RegistryClient() as client, tempfile.TemporaryDirectory() as tmp:
        record = client.get(project, "preference-datasets", name, version)
        digest = record["derived"]["files"][0]["digest"]
        local = Path(tmp) / "dataset.parquet"
        with byte_progress() as progress:
            task = progress.add_task("download", total=record["derived"]["files"][0]["size"])
            client.download_blob(digest, local, partial(progress.advance, task))
        # pyarrow is imported here, not with the CLI: it would add about 100 MiB to every command,
        # `verify` included, whose whole budget is 200 MiB
        from app.exporters import export_dataset

        rows = export_dataset(local, dest, fmt=fmt, split=split, with_labels=with_labels)  # type: ignore[arg-type]
    out.print(f"{label(record)}: {rows} rows -> {dest}", markup=False, soft_wrap=True)


@datasets_app.command("build")
def datasets_build(
    project: str,
    name: Annotated[str, typer.Option(help="the dataset's name")],
    batches: Annotated[list[str], typer.Option("--batch", help=f"an annotation batch: {FORMS} (repeat)")],
    seed: Annotated[int, typer.Option(help="seed of the train/validation split by prompt")] = 0,
    drop_ties: Annotated[
        bool, typer.Option("--drop-ties", help="drop pairs whose vote is a tie (the default without --tie-break)")
    ] = False,
    tie_break: Annotated[
        str | None, typer.Option(help="keep ties, broken by length: shorter | longer (the criteria's rule)")
    ] = None,
    validation_share: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="share of prompts held out (default: the policy's)")
    ] = None,
    keep_high_disagreement: Annotated[
        bool, typer.Option("--keep-high-disagreement", help="keep pairs inside the policy's disagreement band")
    ] = False,
    version: Annotated[str | None, typer.Option(help="default: the next integer version")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the registered record as JSON")] = False,
) -> None:
    """Have the server consolidate annotation batches into a preference dataset (TRL format): majority
    vote in canonical orientation, ties dropped or broken, a split by prompt."""
    if drop_ties and tie_break is not None:
        raise usage_error("--drop-ties and --tie-break exclude each other", "ties are either dropped or broken")
    if tie_break not in (None, "shorter", "longer"):
        raise usage_error(f"--tie-break {tie_break!r}: expected shorter or longer")
    spec: dict[str, Any] = {
        "seed": seed,
        "drop_ties": tie_break is None,
        "tie_break": tie_break,
        "exclude_high_disagreement": not keep_high_disagreement,
    }
    if validation_share is not None:
        spec["validation_share"] = validation_share
    body: dict[str, Any] = {"name": name, "batches": [reference(b) for b in batches], "spec": spec}
    if version is not None:
        body["version"] = version
    with RegistryClient() as client:
        record = client.register(project, "preference-datasets", body)
    if as_json:
        print(json.dumps(record, indent=2, default=str))
        return
    out.print(f"preference_dataset {label(record)}  id={record['id']}", markup=False, soft_wrap=True)
    out.print(dataset_table(record))


def dataset_table(record: dict[str, Any]) -> Table:
    """How many votes and pairs went in, what was dropped and why, and the split."""
    counts = record["derived"].get("counts", {})
    table = Table(title=escape(f"{label(record)}: what the build kept"))
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key in ("votes_in", "pairs_in", "pairs_out", "train", "validation", "prompts_out", "tie_broken"):
        if key in counts:
            table.add_row(key.replace("_", " "), str(counts[key]))
    for reason, count in counts.get("dropped", {}).items():
        table.add_row(f"dropped: {reason.replace('_', ' ')}", str(count))
    for warning in record["derived"].get("warnings", []):
        table.add_row("[yellow]warning[/yellow]", escape(str(warning)))
    return table
