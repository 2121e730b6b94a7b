"""Gathering what a handoff package holds for one approved deployment (DESIGN.md, Handoff package).

The package covers the deployment's whole upstream closure (policy checkpoint, reward checkpoint or
dataset, batches, prompt sets, criteria, base model, waivers that became parents), the policy checkpoint
series the deployed one was chosen from and the reward-hacking flags of each, every evaluation of a
checkpoint in it (the evidence, campaign evaluations that compared it included), the
waivers covering any of those records, the project policy the approval used, the decisions on them, the
training runs that produced the checkpoints, and the audit events that touched any of it. Everything
added is closed upstream again, so every parent of an included record is included too: that is what
lets an auditor check the lineage offline."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from app.audit.service import event_to_dict
from app.core.digests import digest_of
from app.core.errors import DeploymentNotApproved, ValidationFailed
from app.evaluations import flags as flags_service
from app.kinds.base import EffectivePolicy
from app.kinds.policy import DEFAULT_POLICY
from app.kinds.registry import kinds_where, rank_of
from app.lineage.service import Graph, load_graph
from app.packages import repository
from app.records import repository as records_repository
from app.records.models import Record, RecordEvent
from app.runs.models import Run


@dataclass
class Closure:
    project: str
    deployment: Record
    checkpoint: Record
    approval: RecordEvent
    policy: EffectivePolicy
    records: dict[str, Record]
    graph: Graph
    series: list[Record]
    events: list[RecordEvent]
    audit: list[dict[str, Any]]
    runs: dict[str, Run]
    # reward-hacking flags of each checkpoint of the series, under the policy the approval used
    flags: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    parents_index: dict[str, list[tuple[str, Record]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for record in self.records.values():
            self.parents_index[record.id] = [
                (p["role"], self.records[p["id"]]) for p in record.parents if p["id"] in self.records
            ]

    def of_kind(self, kind: str) -> list[Record]:
        return sorted((r for r in self.records.values() if r.kind == kind), key=lambda r: (r.name, r.version_key))

    def parents(self, record: Record, role: str | None = None) -> list[Record]:
        return [parent for r, parent in self.parents_index.get(record.id, []) if role is None or r == role]

    def children(self, record: Record, kind: str, role: str) -> list[Record]:
        return [r for r in self.of_kind(kind) if any(p["id"] == record.id and p["role"] == role for p in r.parents)]

    def ordered(self) -> list[Record]:
        """Every record, in the order sections and listings follow: by kind rank (upstream first)."""
        return sorted(self.records.values(), key=lambda r: (rank_of(r.kind), r.name, r.version_key, r.id))

    def fingerprint(self, *, format_version: int, key_id: str) -> str:
        """A digest of everything the package is rendered from: the same fingerprint renders the same
        package, so a rebuild with nothing new returns the existing record instead of rendering again."""
        return digest_of(
            {
                "format": format_version,
                "key_id": key_id,
                "deployment": self.deployment.id,
                "records": sorted([r.id, r.digest] for r in self.records.values()),
                "events": [[e.id, e.type, e.actor, e.data] for e in self.events],
                "audit": [e["leaf_hash"] for e in self.audit],
                "runs": sorted([run.id, run.status, run.outputs, run.config] for run in self.runs.values()),
                # staleness depends on criteria outside the closure (a newer MAJOR version)
                "stale": sorted(i for i in self.records if self.graph.stale(i)),
                "flags": sorted([i, [f["flag"] for f in found]] for i, found in self.flags.items()),
            }
        )


def run_id_of(record: Record) -> str | None:
    """The training run that produced a record, as the worker (or the registrant) recorded it."""
    value = record.spec.get("run_id") or (record.spec.get("metadata") or {}).get("run_id")
    return str(value) if value else None


def _parent_id(record: Record, role: str) -> str:
    return str(next(p["id"] for p in record.parents if p["role"] == role))


def approval_of(session: Session, deployment: Record) -> RecordEvent:
    """The approval event of `deployment`; `deployment_not_approved` if it has none (or was rejected)."""
    if deployment.kind != "deployment":
        raise ValidationFailed(
            f"record {deployment.id} is a {deployment.kind}, not a deployment",
            errors=[{"loc": ["body", "deployment"], "msg": "not a deployment"}],
        )
    decided = [e for e in session.scalars(repository.events_of([deployment.id])) if e.type in ("approved", "rejected")]
    if not decided or decided[0].type != "approved":
        state = decided[0].type if decided else "proposed, not yet decided"
        raise DeploymentNotApproved(
            f"deployment {deployment.name} v{deployment.version} is {state}; a handoff package is built only for "
            "an approved deployment (POST .../deployments/{name}/{version}/approve)",
            extra={"deployment": deployment.id},
        )
    return decided[0]


def _series(session: Session, checkpoint: Record) -> list[Record]:
    """The checkpoints the deployed one was chosen from: its name's series, from the same run when the
    deployed one names a run."""
    run = run_id_of(checkpoint)
    series = [
        r
        for r in session.scalars(repository.series_of(checkpoint.project_id, checkpoint.name))
        if run is None or run_id_of(r) == run
    ]
    return sorted(series, key=lambda r: (r.spec.get("step") if r.spec.get("step") is not None else -1, r.version_key))


def _policy_used(session: Session, project_id: str, approval: RecordEvent) -> tuple[EffectivePolicy, Record | None]:
    version = int(approval.data.get("policy_version", 0))
    if version == 0:
        return EffectivePolicy(version=0, spec=DEFAULT_POLICY), None
    params = records_repository.series(project_id, "policy", "default", version=str(version))
    record = session.execute(records_repository.AT_VERSION, params).scalar()
    if record is None:  # a decision always names a registered policy version; refuse rather than guess
        raise ValidationFailed(f"the approval names policy version {version}, which is not registered")
    return EffectivePolicy(version=version, spec=record.spec), record


def gather(session: Session, deployment: Record, project_name: str) -> Closure:
    approval = approval_of(session, deployment)
    checkpoint = session.get(Record, _parent_id(deployment, "policy_checkpoint"))
    assert checkpoint is not None  # edges reference existing records (foreign keys)
    series = _series(session, checkpoint)
    first, reached = load_graph(session, [deployment.id, *(r.id for r in series)], "upstream")
    known = {deployment.id, *(r.id for r in series), *reached}
    model_kinds = kinds_where(is_model=True)
    models = [i for i in known if first.nodes[i].kind in model_kinds]
    evaluations = list(session.scalars(repository.children_of(models, kind="evaluation", role="target")))
    # campaign evaluations name the models they rated as `compared`, not as a target: those of the series
    # (a campaign of another series that shares its reference model is another series' evidence)
    series_ids = [r.id for r in series]
    evaluations += session.scalars(repository.children_of(series_ids, kind="evaluation", role="compared"))
    known |= {e.id for e in evaluations}
    waivers = list(session.scalars(repository.children_of(known, kind="waiver", role="covers")))
    start = [deployment.id, *(r.id for r in series), *(e.id for e in evaluations), *(w.id for w in waivers)]
    graph, reached = load_graph(session, start, "upstream")
    records = {r.id: r for r in session.scalars(repository.records_by_ids({*start, *reached}))}
    policy, policy_record = _policy_used(session, deployment.project_id, approval)
    if policy_record is not None:
        records[policy_record.id] = policy_record
    run_ids = {run for r in records.values() if (run := run_id_of(r)) is not None}
    runs = {run.id: run for run in session.scalars(repository.runs_by_ids(deployment.project_id, run_ids))}
    targets = [f"record:{i}" for i in sorted(records)] + [f"run:{i}" for i in sorted(runs)]
    audit = [event_to_dict(e) for e in session.scalars(repository.audit_events_for(project_name, targets))]
    return Closure(
        project=project_name,
        deployment=deployment,
        checkpoint=checkpoint,
        approval=approval,
        policy=policy,
        records=records,
        graph=graph,
        series=series,
        events=list(session.scalars(repository.events_of(list(records)))),
        audit=audit,
        runs=runs,
        flags={r.id: flags_service.checkpoint_flags(session, r, policy.spec) for r in series},
    )
