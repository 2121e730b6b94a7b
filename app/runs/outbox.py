"""The run row is the outbox of its broker message. `POST /runs` commits the run as queued, due for a
re-send one backoff later, and then sends it once; a send that fails (the broker is down) is logged, never
an error to the client. A background thread, in the one process of the deployment elected for the
periodic duties (`app.background`: an API process or a worker), sends each queued run that no worker has
claimed again whenever it is due, doubling its backoff each time, so a run survives a broker
outage and a broker that lost its queue. A worker claims a run only while it is queued (app.runs.leases),
so the duplicate deliveries this can cause are no-ops.

A run no worker takes is sent again for as long as it stays queued (the broker may have lost it, or no
worker serves its queue): past `STUCK_AFTER` of re-sends each one is logged as a warning, and the
`rlhf_registry_runs_queued` gauge counts the queued runs on every round."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from prometheus_client import Gauge
from sqlalchemy import func, select, update

from app.core.db import utcnow
from app.core.settings import Settings
from app.runs.dispatch import Dispatcher, backoff, queue_for, send_quietly
from app.runs.models import Run
from app.state import AppState

log = logging.getLogger("rlhf_registry.outbox")
BATCH = 100
# a run queued this long without a worker taking it is worth an operator's look
STUCK_AFTER = timedelta(hours=1)
QUEUED = Gauge(
    "rlhf_registry_runs_queued", "Runs queued that no worker has picked up yet (as of the outbox's last round)"
)


def waited(settings: Settings, attempts: int) -> timedelta:
    """How long, at least, a run sent `attempts` times since it was (re)queued has waited: its backoffs."""
    return sum((backoff(settings, n) for n in range(1, attempts + 1)), timedelta())


def redispatch_due(state: AppState, dispatcher: Dispatcher) -> list[str]:
    """Send again every queued run whose re-send is due; returns the ids sent.

    Each run's next re-send is moved by a conditional UPDATE (on the attempts it read) and committed before
    anything is sent, so two dispatchers (API replicas, workers) never both send the same run in a round.
    A run claimed in between is not queued any more and is left alone."""
    now = utcnow()
    with state.sessions.read() as session:  # most rounds find nothing due: no write lock for them
        QUEUED.set(session.execute(select(func.count()).select_from(Run).where(Run.status == "queued")).scalar_one())
        due = session.execute(
            select(Run.id, Run.dispatch_attempts, Run.kind)
            .where(Run.status == "queued", Run.next_dispatch_at <= now)
            .order_by(Run.next_dispatch_at)
            .limit(BATCH)
        ).all()
    if not due:
        return []
    uow = state.unit_of_work(request_id="outbox")
    try:
        taken = []
        for run_id, attempts, kind in due:
            moved = uow.session.execute(
                update(Run)
                .where(Run.id == run_id, Run.status == "queued", Run.dispatch_attempts == attempts)
                .values(dispatch_attempts=attempts + 1, next_dispatch_at=now + backoff(state.settings, attempts + 1))
                .returning(Run.id)
            ).first()
            if moved is not None:
                taken.append((run_id, kind))
                if waited(state.settings, attempts) >= STUCK_AFTER:
                    log.warning(
                        "run %s is still queued, sent %d times over at least %s: is a worker serving its queue?",
                        run_id,
                        attempts,
                        waited(state.settings, attempts),
                    )
        uow.commit()
    finally:
        uow.close()
    sent = []
    for run_id, kind in taken:
        if not send_quietly(dispatcher, run_id, queue_for(kind)):
            break  # the broker is down: the others are due again after their backoff
        sent.append(run_id)
    return sent


class Outbox(threading.Thread):
    """Runs `redispatch_due` every `dispatch_interval_seconds` (in the API and in workers)."""

    def __init__(self, state: AppState) -> None:
        super().__init__(daemon=True, name="run-outbox")
        self.state = state
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.state.settings.dispatch_interval_seconds):
            try:
                sent = redispatch_due(self.state, self.state.dispatcher)
                if sent:
                    log.info("queued runs sent to the broker again: %s", sent)
            except Exception:
                log.exception("sending queued runs again failed")

    def stop(self) -> None:
        self.stopped.set()
