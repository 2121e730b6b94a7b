"""Sending a run's message to the broker, and when a still-queued run is sent again (the outbox's backoff).

A send that fails is logged and left to the outbox (app.runs.outbox): the run row, committed before any
send, is what says a run must execute. The first send of a run a request queued is made on a thread of its
own (`FirstSends`): a send to a broker that does not answer blocks for seconds, and the request's unit of
work (or a worker's) should not wait for it."""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from app.core.settings import Settings
from app.runs.models import Run
from app.runs.queue import QUEUE

log = logging.getLogger("rlhf_registry.outbox")

# ppo runs train in a worker environment of their own (workers/ppo: the last TRL that ships PPOTrainer),
# whose workers consume this queue; every other kind goes to QUEUE
PPO_QUEUE = "ppo"


class Dispatcher(Protocol):
    def send(self, run_id: str, queue: str = QUEUE) -> None: ...


def queue_for(kind: str) -> str:
    """The broker queue a run of `kind` is sent to."""
    return PPO_QUEUE if kind == "ppo" else QUEUE


def _send(dispatcher: Dispatcher, run_id: str, queue: str) -> None:
    # QUEUE is every dispatcher's default, so a message to it names no queue
    if queue == QUEUE:
        dispatcher.send(run_id)
    else:
        dispatcher.send(run_id, queue=queue)


def backoff(settings: Settings, attempts: int) -> timedelta:
    """How long after its `attempts`-th send a still-queued run is sent again: doubling, capped."""
    seconds = settings.dispatch_backoff_seconds * 2 ** max(attempts - 1, 0)
    return timedelta(seconds=min(seconds, settings.dispatch_backoff_max_seconds))


def schedule_first_send(run: Run, settings: Settings, now: datetime) -> None:
    """A run (re)queued now is sent once after the commit, and again one backoff later if still queued."""
    run.dispatch_attempts = 1
    run.next_dispatch_at = now + backoff(settings, 1)


def send_quietly(dispatcher: Dispatcher, run_id: str, queue: str = QUEUE) -> bool:
    """Send a run's message to `queue`; a failure is logged and left to the outbox, which sends it again."""
    try:
        _send(dispatcher, run_id, queue)
    except Exception as exc:
        log.warning("run %s not sent to the broker (%s: %s); it will be sent again", run_id, type(exc).__name__, exc)
        return False
    return True


def send_after_commit(dispatcher: Dispatcher, run_id: str, queue: str = QUEUE) -> Callable[[], None]:
    """What the unit of work that queued a run does once it committed: send it, quietly."""

    def send() -> None:
        send_quietly(dispatcher, run_id, queue)

    return send


class FirstSends:
    """The first send of each run a request queued, made in order on one daemon thread of this process, so
    that neither the request's event loop nor a thread-pool worker waits on the broker. Bounded: while the
    broker is down and sends queue up here, a run beyond `capacity` is left to the outbox."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._queue: queue.Queue[tuple[Dispatcher, str, str]] = queue.Queue(maxsize=capacity)
        self._start = threading.Lock()
        self._thread: threading.Thread | None = None
        self._idle = threading.Condition()
        self._pending = 0

    def after_commit(self, dispatcher: Dispatcher, run_id: str, to: str = QUEUE) -> Callable[[], None]:
        """What the unit of work that queued a run does once it committed: hand the send to the thread."""

        def hand_over() -> None:
            self.submit(dispatcher, run_id, to)

        return hand_over

    def submit(self, dispatcher: Dispatcher, run_id: str, to: str = QUEUE) -> None:
        self._ensure_started()
        with self._idle:
            self._pending += 1
        try:
            self._queue.put_nowait((dispatcher, run_id, to))
        except queue.Full:
            self._done()
            log.warning("run %s not sent now (too many sends waiting on the broker); it will be sent again", run_id)

    def wait_idle(self, timeout: float) -> bool:
        """Whether every send handed over so far was made (or failed) within `timeout` seconds."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def _ensure_started(self) -> None:
        with self._start:
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, daemon=True, name="run-first-sends")
                self._thread.start()

    def _loop(self) -> None:
        while True:
            dispatcher, run_id, to = self._queue.get()
            try:
                send_quietly(dispatcher, run_id, to)
            finally:
                self._done()

    def _done(self) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()


# one per process: the API's requests share it, as they share the broker connection
first_sends = FirstSends()
