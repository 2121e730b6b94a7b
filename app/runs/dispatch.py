"""Sending a run's message to the broker, and when a still-queued run is sent again (the outbox's backoff).

A send that fails is logged and left to the outbox (app.runs.outbox): the run row, committed before any
send, is what says a run must execute."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from app.core.settings import Settings
from app.runs.models import Run

log = logging.getLogger("rlhf_registry.outbox")


class Dispatcher(Protocol):
    def send(self, run_id: str) -> None: ...


def backoff(settings: Settings, attempts: int) -> timedelta:
    """How long after its `attempts`-th send a still-queued run is sent again: doubling, capped."""
    seconds = settings.dispatch_backoff_seconds * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.dispatch_backoff_max_seconds))


def schedule_first_send(run: Run, settings: Settings, now: datetime) -> None:
    """A run (re)queued now is sent once after the commit, and again one backoff later if still queued."""
    run.dispatch_attempts = 1
    run.next_dispatch_at = now + backoff(settings, 1)


def send_quietly(dispatcher: Dispatcher, run_id: str) -> bool:
    """Send a run's message; a failure is logged and left to the outbox, which sends it again."""
    try:
        dispatcher.send(run_id)
    except Exception as exc:
        log.warning("run %s not sent to the broker (%s: %s); it will be sent again", run_id, type(exc).__name__, exc)
        return False
    return True


def send_after_commit(dispatcher: Dispatcher, run_id: str) -> Callable[[], None]:
    """What the unit of work that queued a run does once it committed: send it, quietly."""

    def send() -> None:
        send_quietly(dispatcher, run_id)

    return send
