"""Run leases: a worker owns a run while it keeps renewing a lease; a run whose lease expired lost its
worker and is requeued (bounded attempts) or failed with `worker_lost`. Because the broker acknowledges
on receipt, this is the only redelivery path, so a run is never executed twice at once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from app.core.db import utcnow
from app.runs.dispatch import Dispatcher, queue_for, schedule_first_send, send_after_commit
from app.runs.models import Run
from app.runs.service import add_event, finish, project_name_of
from app.state import AppState


def claim(state: AppState, run_id: str, worker: str, lease_s: float) -> Run | None:
    """Move a queued run to running under this worker's lease; None if it is not queued any more.

    One conditional UPDATE decides: of two deliveries of the same run (the outbox may send a run again
    before a busy worker takes its first message), the second finds it running, or ended, and does
    nothing. Claimed, the run is no longer due for a re-send."""
    uow = state.unit_of_work(request_id=f"worker:{worker}")
    try:
        now = utcnow()
        claimed = uow.session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status == "queued", Run.cancel_requested.is_(False))
            .values(
                status="running",
                attempt=Run.attempt + 1,
                lease_owner=worker,
                lease_expires_at=now + timedelta(seconds=lease_s),
                started_at=now,
                next_dispatch_at=None,
            )
            .returning(Run.id)
        ).first()
        if claimed is None:
            uow.rollback()
            return None
        run = uow.session.get(Run, run_id, populate_existing=True)
        assert run is not None
        add_event(uow.session, run, "status", {"status": "running", "worker": worker, "attempt": run.attempt})
        uow.audit(
            actor=run.created_by,
            action="run.started",
            target=f"run:{run.id}",
            project=project_name_of(uow.session, run),
            payload={"worker": worker, "attempt": run.attempt},
        )
        uow.commit()
        return run
    finally:
        uow.close()


def renew(state: AppState, run_id: str, worker: str, lease_s: float) -> tuple[bool, bool]:
    """(still ours, cancellation requested)."""
    uow = state.unit_of_work(request_id=f"worker:{worker}")
    try:
        row = uow.session.execute(
            update(Run)
            .where(Run.id == run_id, Run.lease_owner == worker, Run.status == "running")
            .values(lease_expires_at=utcnow() + timedelta(seconds=lease_s))
            .returning(Run.cancel_requested)
        ).first()
        uow.commit()
        return (row is not None, bool(row[0]) if row is not None else False)
    finally:
        uow.close()


def reap_expired(state: AppState, dispatcher: Dispatcher) -> list[str]:
    """Requeue or fail every running run whose lease expired; returns their ids."""
    uow = state.unit_of_work(request_id="reaper")
    try:
        stmt = (
            select(Run)
            .where(Run.status == "running", Run.lease_expires_at < utcnow())
            .with_for_update(skip_locked=True)
        )
        reaped = []
        for run in uow.session.scalars(stmt):
            reaped.append(run.id)
            if run.attempt < run.max_attempts:
                run.status = "queued"
                run.lease_owner = None
                run.lease_expires_at = None
                schedule_first_send(run, state.settings, utcnow())
                add_event(
                    uow.session, run, "status", {"status": "queued", "reason": "worker_lost", "retry": run.attempt + 1}
                )
                uow.after_commit(send_after_commit(dispatcher, run.id, queue_for(run.kind)))
                action = "run.requeued"
            else:
                finish(
                    uow.session,
                    run,
                    "failed",
                    {"code": "worker_lost", "detail": "the worker stopped renewing its lease (killed or lost)"},
                )
                action = "run.failed"
            uow.audit(
                actor="reaper",
                action=action,
                target=f"run:{run.id}",
                project=project_name_of(uow.session, run),
                payload={"attempt": run.attempt, "reason": "worker_lost"},
            )
        uow.commit()
        return reaped
    finally:
        uow.close()
