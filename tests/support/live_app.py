"""The app over settings of a test's own, served by uvicorn in a thread on a free loopback port: real HTTP
for the tests that need what a TestClient cannot give (a store or a connection that fails mid-request)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx
import uvicorn

from app.core import migrate
from app.core.settings import Settings
from app.main import create_app
from app.state import AppState
from bench.serving import HOST, free_port
from tests.conftest import RecordingDispatcher, World


@dataclass
class Live:
    url: str
    state: AppState
    world: World


@contextmanager
def served(settings: Settings) -> Iterator[Live]:
    """The app over `settings` (migrated first; runs are recorded, not sent), until the block ends."""
    migrate.upgrade(settings.database_url)
    state = AppState.build(settings)
    state.dispatcher = RecordingDispatcher()
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(state=state), host=HOST, port=port, log_level="critical"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    try:
        with httpx.Client(base_url=f"http://{HOST}:{port}", timeout=30) as client:
            yield Live(f"http://{HOST}:{port}", state, World(state, client))  # type: ignore[arg-type]
    finally:
        server.should_exit = True
        thread.join(timeout=15)
        state.sessions.engine.dispose()
