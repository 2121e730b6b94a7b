"""The Celery application both sides share: the API sends `execute_run` by name after its commit, the
workers (workers/celery_app.py) register the task on the same app.

Delivery: tasks are acknowledged on receipt (acks_late off), so a broker never delivers a run twice,
however long it trains (Redis' visibility timeout cannot bite). A worker that dies is detected by its
lease expiring instead (app.runs.leases), which requeues the run or fails it with `worker_lost`."""

from __future__ import annotations

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
    )
    if settings.broker_url.startswith(("redis://", "rediss://")):
        # belt and braces: with acks on receipt nothing is unacked long, but a long visibility timeout
        # keeps Redis from redelivering should that ever change
        app.conf.broker_transport_options = {"visibility_timeout": 12 * 3600}
    return app


class CeleryDispatcher:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._app: Celery | None = None

    def send(self, run_id: str) -> None:
        if self._app is None:
            self._app = make_celery(self._settings)
        self._app.send_task(TASK_EXECUTE_RUN, args=[run_id], queue=QUEUE)
