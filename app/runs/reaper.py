"""A background thread that reaps expired run leases every few seconds. It runs in the one process of
the deployment elected for the periodic duties (`app.background`), an API process or a worker; reaping
stays idempotent all the same (each expired run is locked while it is reaped), as a worker also reaps
before each run it executes."""

from __future__ import annotations

import logging
import threading

from app.runs.leases import reap_expired
from app.state import AppState

log = logging.getLogger("rlhf_registry.reaper")


class Reaper(threading.Thread):
    def __init__(self, state: AppState) -> None:
        super().__init__(daemon=True, name="run-lease-reaper")
        self.state = state
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(self.state.settings.reaper_interval_seconds):
            try:
                reaped = reap_expired(self.state, self.state.dispatcher)
                if reaped:
                    log.warning("runs whose worker was lost: %s", reaped)
            except Exception:
                log.exception("reaping expired runs failed")

    def stop(self) -> None:
        self.stopped.set()
