"""What a run page and the run comparison show: a run by its output name and its number among the runs
of that name, the records it produced by name and version, its charts (app.web.run_charts) and its
metrics table with the columns that matter first; for a policy run, the reward-hacking flags of each
checkpoint and the latest campaign ratings of its series (app.web.choice)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from app.access import service as access_service
from app.access.models import Project
from app.access.service import Identity
from app.core.errors import NotFound, ValidationFailed
from app.kinds.registry import kinds_where
from app.lineage import service as lineage_service
from app.records.models import Record
from app.runs import service as runs_service
from app.runs.models import Run
from app.web import choice, repository
from app.web.run_charts import RunSource, charts, chosen_metrics, numeric

MAX_RUN_EVENTS = 20_000
METRIC_ROWS = 100
LOG_ROWS = 30
MAX_COMPARED = 6
LIVE_STATUSES = frozenset({"queued", "running"})
MAIN_COLUMNS = 5
# shown beside loss, reward and KL when logged: what a reader checks next
ALSO_MAIN = ("rewards/accuracies", "learning_rate", "grad_norm")
CHECKPOINT_KINDS = kinds_where(trained=True)


def run_label(run: Run, ordinal: int) -> str:
    """How people name a run: its output name and which run of that name it is."""
    return f"{run.output_name} · run {ordinal}"


def visible_run(session: Session, actor: Identity, run_id: str) -> tuple[Run, str]:
    run = session.execute(repository.run_by_id(run_id)).scalar()
    if run is None or not access_service.can_view_project(session, actor, run.project_id):
        raise NotFound(f"run {run_id} not found")
    return run, runs_service.project_name_of(session, run)


def _log(session: Session, run: Run) -> tuple[list[Any], list[dict[str, Any]]]:
    events = runs_service.events_after(session, run.id, 0, MAX_RUN_EVENTS)
    return events, [{"step": e.data.get("step"), **e.data} for e in events if e.type == "metrics"]


def split_columns(rows: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """(main, other) metric columns: loss, reward and KL and a few more when logged; the rest on demand."""
    keys = {key for row in rows for key in row if key != "step"}
    main = chosen_metrics(keys)
    main += [k for k in ALSO_MAIN if k in keys and k not in main]
    main = main[:MAIN_COLUMNS]
    return main, sorted(keys - set(main))


def checkpoints(session: Session, outputs: list[Record], log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each checkpoint a run registered: its step (a reward model's final one: the last logged step), its
    own figures and the summary figures of evaluations registered against it, oldest step first."""
    targets = [r for r in outputs if r.kind in CHECKPOINT_KINDS]
    evaluations: dict[str, list[Record]] = {}
    for target_id, evaluation in session.execute(repository.evaluations_of([r.id for r in targets])):
        evaluations.setdefault(target_id, []).append(evaluation)
    last_step = max((s for row in log if (s := numeric(row.get("step"))) is not None), default=None)
    found = []
    for record in targets:
        metrics = record.derived.get("metrics") or {}
        steps = (numeric(record.derived.get("step")), numeric(metrics.get("step")), last_step)
        step = next((s for s in steps if s is not None), None)
        figures = {k: v for k, v in metrics.items() if k != "step" and numeric(v) is not None}
        for evaluation in evaluations.get(record.id, []):
            for key, value in (evaluation.spec.get("summary") or {}).items():
                if numeric(value) is not None:
                    figures[f"{evaluation.spec.get('type', 'evaluation')} · {key}"] = value
        found.append(
            {
                "id": record.id,
                "kind": record.kind,
                "name": record.name,
                "version": record.version,
                "step": step,
                "figures": figures,
                "evaluations": [
                    {"id": e.id, "name": e.name, "version": e.version} for e in evaluations.get(record.id, [])
                ],
            }
        )
    return sorted(found, key=lambda c: (c["step"] is None, c["step"] or 0, int(c["version"])))


def _source(label: str, log: list[dict[str, Any]], found: list[dict[str, Any]]) -> RunSource:
    return RunSource(label, log, [(int(c["step"]), c["figures"]) for c in found if c["step"] is not None])


def run_page(session: Session, run: Run, project_name: str) -> dict[str, Any]:
    events, log = _log(session, run)
    ordinal = int(session.execute(repository.run_ordinal(run)).scalar_one())
    label = run_label(run, ordinal)
    outputs_by_id = {r.id: r for r in session.scalars(repository.records_by_ids(run.outputs))} if run.outputs else {}
    outputs: list[dict[str, Any]] = []
    if run.outputs:
        graph, _ = lineage_service.load_graph(session, run.outputs, "upstream")
        names = {run.project_id: project_name}
        outputs = [lineage_service.node_summary(graph, rid, names) for rid in run.outputs if rid in graph.nodes]
    found = checkpoints(session, [outputs_by_id[i] for i in run.outputs if i in outputs_by_id], log)
    inputs = [
        {"role": role, **value} if isinstance(value, dict) else {"role": role, "digest": value}
        for role, value in run.inputs.items()
        if role != "policy_run"
    ]
    series = run.inputs.get("policy_run")
    if isinstance(series, dict):  # a campaign's policy run, pinned as the models it compares
        inputs += [{"role": "policy_run", **model} for model in (series["reference"], *series["checkpoints"])]
    main, other = split_columns(log)
    campaigns = choice.of_run(session, run, found)
    return {
        "run": runs_service.run_to_dict(run),
        "label": label,
        "project": project_name,
        "live": run.status in LIVE_STATUSES,
        "inputs": inputs,
        "outputs": outputs,
        "checkpoints": found,
        "flagged": [c for c in found if c.get("flags")],
        "campaigns": campaigns,
        "main_columns": main,
        "other_columns": other,
        "metrics": log[-METRIC_ROWS:],
        "metrics_total": len(log),
        "charts": charts([_source(label, log, found)]),
        "statuses": [e for e in events if e.type == "status"],
        "logs": [e for e in events if e.type == "log"][-LOG_ROWS:],
        "last_seq": run.last_seq,
    }


def compare_page(session: Session, project: Project, run_ids: list[str]) -> dict[str, Any]:
    """Two to six runs of one project on the same charts, each in its own colour."""
    ids = list(dict.fromkeys(run_ids))
    if not 2 <= len(ids) <= MAX_COMPARED:
        raise ValidationFailed(
            f"compare two to {MAX_COMPARED} runs: name each with run=ID",
            errors=[{"loc": ["query", "run"], "msg": f"{len(ids)} distinct run(s) given"}],
        )
    runs = {r.id: r for r in session.scalars(repository.runs_by_ids(project.id, ids))}
    missing = [i for i in ids if i not in runs]
    if missing:
        raise NotFound(f"project {project.name} has no run {missing[0]}")
    ids.sort()  # oldest first, whatever order the form sent: a run keeps its colour between visits
    ordinals = {row.id: int(row.ordinal) for row in session.execute(repository.run_ordinals(project.id))}
    compared: list[dict[str, Any]] = []
    sources: list[RunSource] = []
    for colour, run_id in enumerate(ids):
        run = runs[run_id]
        _, log = _log(session, run)
        outputs = list(session.scalars(repository.records_by_ids(run.outputs))) if run.outputs else []
        found = checkpoints(session, outputs, log)
        label = run_label(run, int(ordinals[run_id]))
        main, _ = split_columns(log)
        last = log[-1] if log else {}
        sources.append(_source(label, log, found))
        compared.append(
            {
                "run": runs_service.run_to_dict(run),
                "label": label,
                "colour": colour,
                "checkpoints": found,
                "last": {"step": last.get("step"), **{c: last.get(c) for c in main}},
                "main_columns": main,
            }
        )
    return {
        "project": project.name,
        "compared": compared,
        "charts": charts(sources),
    }
