"""The Celery application both sides share: the API sends `execute_run` by name after its commit, the
workers (workers/celery_app.py) register the task on the same app.

Delivery: tasks are acknowledged on receipt (acks_late off), so a broker never delivers a run twice,
however long it trains (Redis' visibility timeout cannot bite). A worker that dies is detected by its
lease expiring instead (app.runs.leases), which requeues the run or fails it with `worker_lost`. A message
the broker lost (down, restarted without persistence, flushed) is sent again by the outbox
(app.runs.outbox), so sending here fails fast rather than retrying for long."""

from __future__ import annotations

from typing import Any

from celery import Celery

from app.core.settings import Settings

TASK_EXECUTE_RUN = "rlhf_registry.execute_run"
QUEUE = "runs"


def make_celery(settings: Settings) -> Celery:
    app = Celery("rlhf_registry", broker=settings.broker_url)
    app.conf.update(
        task_default_queue=QUEUE,
        task_acks_late=False,
        task_ignore_result=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
        broker_connection_timeout=settings.broker_check_timeout_seconds * 2,
        # a request's send after its commit gives up quickly: the outbox sends the run again
        task_publish_retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.2},
    )
    app.conf.broker_transport_options = _transport_options(settings)
    return app


def _transport_options(settings: Settings) -> dict[str, Any]:
    if not settings.broker_url.startswith(("redis://", "rediss://")):
        return {}
    # belt and braces: with acks on receipt nothing is unacked long, but a long visibility timeout keeps
    # Redis from redelivering should that ever change; a host that does not answer fails a connect in seconds
    return {"visibility_timeout": 12 * 3600, "socket_connect_timeout": settings.broker_check_timeout_seconds * 2}


def broker_reachable(settings: Settings) -> bool:
    """Whether the broker accepts a connection within `broker_check_timeout_seconds` (for /readyz)."""
    timeout = settings.broker_check_timeout_seconds
    options = {**_transport_options(settings), "socket_connect_timeout": timeout, "socket_timeout": timeout}
    try:
        with make_celery(settings).connection_for_write(
            connect_timeout=timeout, transport_options=options
        ) as connection:
            connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=timeout)
    except Exception:
        return False
    return True


class CeleryDispatcher:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._app: Celery | None = None

    def send(self, run_id: str, queue: str = QUEUE) -> None:
        if self._app is None:
            self._app = make_celery(self._settings)
        self._app.send_task(TASK_EXECUTE_RUN, args=[run_id], queue=queue)
