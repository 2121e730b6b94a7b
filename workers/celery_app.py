"""The Celery worker: `rlhf-registry worker` (or `celery -A workers.celery_app worker`)."""

from __future__ import annotations

import os
import socket
import threading

from celery.signals import worker_ready, worker_shutdown

from app import background
from app.core.election import Election
from app.core.settings import get_settings
from app.runs import leases
from app.runs.queue import TASK_EXECUTE_RUN, make_celery
from app.state import AppState
from workers import executor

settings = get_settings()
celery = make_celery(settings)
_state: AppState | None = None
_lock = threading.Lock()
_election: Election | None = None


def state() -> AppState:
    global _state
    with _lock:
        if _state is None:
            _state = AppState.build(settings)
    return _state


def worker_id() -> str:
    return settings.worker_id or f"{socket.gethostname()}:{os.getpid()}"


@worker_ready.connect  # type: ignore[untyped-decorator]
def _campaign_for_duties(**_: object) -> None:
    # workers campaign with the API processes for the periodic duties (app/background.py), so that runs
    # are reaped and re-sent while no API process runs, and never by two processes at once
    global _election
    _election = background.campaign(state())


@worker_shutdown.connect  # type: ignore[untyped-decorator]
def _stand_down(**_: object) -> None:
    if _election is not None:
        _election.stop()


@celery.task(name=TASK_EXECUTE_RUN)  # type: ignore[untyped-decorator]
def execute_run(run_id: str) -> None:
    current = state()
    leases.reap_expired(current, current.dispatcher)
    executor.execute(current, run_id, worker_id())
