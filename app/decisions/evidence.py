"""Evidence that proves itself: what each required evaluation type must show before it counts.

A label is not evidence. An evaluation typed `adversarial` whose figures are the training run's own
reward on its validation prompts, or a `human_preference` whose evaluator is the run itself, passes a
check that only reads types. So approval checks, per evaluation of a type the policy requires
(`deployment_requires`), what the type claims:

- `human_preference`, `human_rating`: its evaluators (`spec.evaluators`, or the judgments' evaluators a
  campaign evaluation derived) are people: principals with a membership in the project, no `ai:` or
  `run:` name among them, and none of them registered the checkpoint or started its run (who trained a
  model does not grade it); and they made at least the policy's `human_judgments_min` judgments (a
  campaign evaluation: those of the checkpoint against the reference; otherwise `summary.judgments`).
  AI judgments (`ai_preference`) are their own type and never count as human evidence.
- `adversarial`: it evaluated the deployed checkpoint itself (`target`) on a registered prompt set
  (parent `prompt_set`) that has adversarial prompts, and its evidence blob holds per-prompt results
  (JSONL or Parquet rows with `prompt_id`) covering every one of them.
- `kl`: measured against the checkpoint's own reference model (parent `reference`): a KL to another
  model says nothing of the drift the KL constraint bounds.
- `length_reward_correlation`: `summary.correlation` (finite, within [-1, 1]) and the `summary.sample_size`
  (at least 2) it was computed on: a correlation without its sample size cannot be weighed.

Each failure names its evaluation and rule; approval refuses them as `evaluation_evidence_insufficient`
unless a waiver covers the deployment."""

from __future__ import annotations

import math
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy.orm import Session

from app.access import service as access_service
from app.access.models import Project
from app.core.errors import ValidationFailed
from app.evaluations.flags import limit
from app.kinds.evaluation import MACHINE_PREFIXES
from app.kinds.prompt_set import prompts_of
from app.kinds.tables import read_blob_table
from app.records.models import Record
from app.runs.models import Run
from app.storage.base import BlobStore

HUMAN_TYPES = ("human_preference", "human_rating")
RESULT_SCHEMA = pa.schema([pa.field("prompt_id", pa.string())])
SHOWN = 5  # ids named in a refusal's detail; the rest are counted


def parent_records(session: Session, record: Record, role: str) -> list[Record]:
    found = (session.get(Record, p["id"]) for p in record.parents if p["role"] == role)
    return [parent for parent in found if parent is not None]


def checkpoint_authors(session: Session, checkpoint: Record) -> set[str]:
    """Who registered the checkpoint and who started the run it names (`spec.run_id`)."""
    authors = {checkpoint.created_by}
    run_id = checkpoint.spec.get("run_id")
    run = session.get(Run, run_id) if run_id else None
    if run is not None and run.project_id == checkpoint.project_id:
        authors.add(run.created_by)
    return authors


def _listed(names: list[str]) -> str:
    more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
    return ", ".join(names[:SHOWN]) + more


def _is_campaign(evaluation: Record) -> bool:
    return any(p["role"] == "campaign" for p in evaluation.parents)


def _judgments(evaluation: Record, checkpoint: Record) -> int:
    if _is_campaign(evaluation):
        rating = next((r for r in evaluation.derived.get("ratings") or [] if r["model"] == checkpoint.id), None)
        versus = (rating or {}).get("vs_reference") or {}
        return int(versus.get("n") or 0)
    count = evaluation.spec.get("summary", {}).get("judgments")
    return count if isinstance(count, int) and not isinstance(count, bool) else 0


def _human_failures(
    session: Session, evaluation: Record, checkpoint: Record, policy: dict[str, Any]
) -> list[tuple[str, str]]:
    source = evaluation.derived if _is_campaign(evaluation) else evaluation.spec
    evaluators = sorted(set(source.get("evaluators") or []))
    project = session.get(Project, checkpoint.project_id)
    assert project is not None  # a record's project exists (foreign key)
    members = {m["principal"] for m in access_service.list_members(session, project)}
    machines = [e for e in evaluators if e.startswith(MACHINE_PREFIXES)]
    strangers = [e for e in evaluators if e not in machines and e not in members]
    authors = sorted(checkpoint_authors(session, checkpoint) & set(evaluators))
    failures: list[tuple[str, str]] = []
    if not evaluators:
        failures.append(("human_evaluators", "names no evaluators"))
    if machines:
        failures.append(("human_evaluators", f"names machine evaluators ({_listed(machines)}), not people"))
    if strangers:
        failures.append(
            ("human_evaluators", f"names evaluators who are not members of the project: {_listed(strangers)}")
        )
    if authors:
        failures.append(("independent_evaluators", f"{_listed(authors)} registered the checkpoint or started its run"))
    judgments, floor = _judgments(evaluation, checkpoint), int(limit(policy, "human_judgments_min"))
    if judgments < floor:
        failures.append(
            (
                "human_judgments",
                f"holds {judgments} judgments of the checkpoint; the policy needs {floor} (human_judgments_min)",
            )
        )
    return failures


def _covered_prompts(store: BlobStore, digest: str) -> set[str] | None:
    """The prompt ids of an evidence blob's per-prompt rows; None when it is not such a table."""
    try:
        table = read_blob_table(store, digest, RESULT_SCHEMA, where=["spec", "evidence_blob"])
    except ValidationFailed:
        return None
    return {p for p in table["prompt_id"].to_pylist() if p is not None}


def _adversarial_failures(session: Session, store: BlobStore, evaluation: Record) -> list[tuple[str, str]]:
    """The deployment itself holds only evaluations of its checkpoint, and an adversarial evaluation's one
    model parent is its target: that it evaluated the deployed checkpoint needs no check here."""
    prompt_sets = parent_records(session, evaluation, "prompt_set")
    if not prompt_sets:
        return [("adversarial_prompt_set", "names no prompt set (parent prompt_set)")]
    prompt_set = prompt_sets[0]
    prompts = prompts_of(prompt_set, store)
    adversarial = sorted(prompts.filter(pc.equal(prompts["source"], "adversarial"))["id"].to_pylist())
    if not adversarial:
        return [
            ("adversarial_prompt_set", f"prompt set {prompt_set.name} v{prompt_set.version} has no adversarial prompts")
        ]
    digest = evaluation.spec.get("evidence_blob")
    covered = _covered_prompts(store, digest) if digest else None
    if covered is None:
        what = "is not per-prompt results (JSONL or Parquet rows with prompt_id)" if digest else "is missing"
        return [("adversarial_results", f"its evidence_blob {what}")]
    missing = [p for p in adversarial if p not in covered]
    if missing:
        return [("adversarial_results", f"has no result for the adversarial prompts {_listed(missing)}")]
    return []


def _kl_failures(evaluation: Record, checkpoint: Record) -> list[tuple[str, str]]:
    own = {p["id"] for p in checkpoint.parents if p["role"] == "reference_model"}
    measured = {p["id"] for p in evaluation.parents if p["role"] == "reference"}
    if not measured:
        return [("kl_reference", "names no reference model it measured against (parent reference)")]
    if measured != own:
        return [("kl_reference", "was measured against another model than the checkpoint's reference model")]
    return []


def _correlation_failures(evaluation: Record) -> list[tuple[str, str]]:
    summary = evaluation.spec.get("summary", {})
    correlation, size = summary.get("correlation"), summary.get("sample_size")
    failures: list[tuple[str, str]] = []
    number = isinstance(correlation, int | float) and not isinstance(correlation, bool)
    if not number or not math.isfinite(correlation) or not -1.0 <= correlation <= 1.0:
        failures.append(("correlation_figures", "summary.correlation must be a number within [-1, 1]"))
    if not isinstance(size, int) or isinstance(size, bool) or size < 2:
        failures.append(("correlation_figures", "summary.sample_size must be the number of samples, at least 2"))
    return failures


def evaluation_failures(
    session: Session, store: BlobStore, evaluation: Record, checkpoint: Record, policy: dict[str, Any]
) -> list[tuple[str, str]]:
    """(rule, what is wrong) for one evaluation of the deployed checkpoint; [] when it proves its type."""
    kind = evaluation.spec["type"]
    if kind in HUMAN_TYPES:
        return _human_failures(session, evaluation, checkpoint, policy)
    if kind == "adversarial":
        return _adversarial_failures(session, store, evaluation)
    if kind == "kl":
        return _kl_failures(evaluation, checkpoint)
    if kind == "length_reward_correlation":
        return _correlation_failures(evaluation)
    return []


def insufficient_evidence(
    session: Session, store: BlobStore, deployment: Record, checkpoint: Record, policy: dict[str, Any]
) -> list[dict[str, Any]]:
    """Every failing rule of the deployment's evaluations of a type the policy requires, each
    {evaluation, name, version, type, rule, detail}."""
    required = set(policy["deployment_requires"])
    out = []
    for evaluation in parent_records(session, deployment, "evaluations"):
        if evaluation.spec["type"] not in required:
            continue
        for rule, detail in evaluation_failures(session, store, evaluation, checkpoint, policy):
            out.append(
                {
                    "evaluation": evaluation.id,
                    "name": evaluation.name,
                    "version": evaluation.version,
                    "type": evaluation.spec["type"],
                    "rule": rule,
                    "detail": detail,
                }
            )
    return out
