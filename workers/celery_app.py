"""The Celery worker: `rlhf-registry worker` (or `celery -A workers.celery_app worker`)."""

from __future__ import annotations

import os
import socket
import threading

from celery.signals import worker_ready

from app.core.settings import get_settings
from app.runs import leases
from app.runs.outbox import Outbox
from app.runs.queue import TASK_EXECUTE_RUN, make_celery
from app.runs.reaper import Reaper
from app.state import AppState
from workers import executor

settings = get_settings()
celery = make_celery(settings)
_state: AppState | None = None
_lock = threading.Lock()


def state() -> AppState:
    global _state
    with _lock:
        if _state is None:
            _state = AppState.build(settings)
    return _state


def worker_id() -> str:
    return settings.worker_id or f"{socket.gethostname()}:{os.getpid()}"


@worker_ready.connect  # type: ignore[untyped-decorator]
def _start_reaper_and_outbox(**_: object) -> None:
    # workers send queued runs again too, so runs are not stranded while no API process runs
    Reaper(state()).start()
    Outbox(state()).start()


@celery.task(name=TASK_EXECUTE_RUN)  # type: ignore[untyped-decorator]
def execute_run(run_id: str) -> None:
    current = state()
    leases.reap_expired(current, current.dispatcher)
    executor.execute(current, run_id, worker_id())
