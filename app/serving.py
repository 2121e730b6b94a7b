"""What `rlhf-registry serve` runs in each uvicorn worker process, and the checks it makes once before.

With `--workers N`, uvicorn's parent process binds the socket and starts N children; each imports this
module and calls `create_served_app()`, reading its settings from the same `RLHF_REGISTRY_*` environment
the parent was started with. The parent never builds an application itself."""

from __future__ import annotations

import gc
import sys

from fastapi import FastAPI

from app.core.db import make_engine
from app.core.migrate import require_head, upgrade
from app.core.settings import Settings, get_settings
from app.core.signing import load_signing_key
from app.main import create_app

APP_FACTORY = "app.serving:create_served_app"


def prepare(settings: Settings) -> None:
    """Migrate the embedded SQLite database; refuse any other database that is not at the migration head
    (one clear error in the parent, rather than N children failing to start and being restarted). A
    development signing key missing so far is generated here, once, rather than by N children at once."""
    load_signing_key(settings)
    if settings.is_sqlite:
        upgrade(settings.database_url)
        return
    engine = make_engine(settings.database_url, pool_size=1)
    try:
        require_head(engine, settings.database_url)
    finally:
        engine.dispose()


def tune_for_serving() -> None:
    """Two interpreter settings for a long-running server, each measured with bench/api.py.

    Everything imported and built so far lives as long as the process: frozen out of the cyclic
    collector, so full collections scan only what requests allocate (shorter pauses on list pages). A
    1 ms GIL switch interval instead of 5 ms: a unit of work in the thread pool releases the GIL on every
    database call and then waits for the event loop's thread to give it back."""
    gc.collect()
    gc.freeze()
    sys.setswitchinterval(0.001)


def create_served_app() -> FastAPI:
    """The application of one worker process, tuned for serving."""
    application = create_app(get_settings())
    tune_for_serving()
    return application
