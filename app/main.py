"""create_app(): settings, state, middleware, error handlers and routers."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool

from app import background
from app.access import service as access_service
from app.access.routes import router as access_router
from app.api import errors
from app.api.health import HealthRead, ReadyRead
from app.api.middleware import BodyLimitMiddleware, RequestContextMiddleware, WriteRateLimitMiddleware
from app.api.openapi import RegistryAPI
from app.audit.routes import router as audit_router
from app.blobs.routes import router as blobs_router
from app.core.election import Election
from app.core.errors import Forbidden, Unavailable
from app.core.logging import configure_logging
from app.core.migrate import require_head
from app.core.settings import Settings, get_settings
from app.decisions.routes import router as decisions_router
from app.evaluations.candidate_routes import router as candidate_router
from app.evaluations.flags_routes import router as flags_router
from app.evaluations.routes import router as evaluations_router
from app.lineage.routes import router as lineage_router
from app.packages.routes import router as packages_router
from app.records.routes import router as records_router
from app.runs.external_routes import router as external_runs_router
from app.runs.queue import broker_reachable
from app.runs.routes import router as runs_router
from app.state import AppState
from app.uploads.routes import router as uploads_router
from app.web.routes import STATIC_DIR
from app.web.routes import router as web_router


def create_app(settings: Settings | None = None, *, state: AppState | None = None) -> FastAPI:
    """The application; tests pass a prepared `state` (its settings win)."""
    if state is None:
        state = AppState.build(settings or get_settings())
    settings = state.settings
    configure_logging(settings.log_level)
    require_head(state.sessions.engine, settings.database_url)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # one process of the deployment, an API process or a worker, runs the periodic duties
        election = background.campaign(state)
        app.state.election = election
        yield
        election.stop()

    app = RegistryAPI(
        title="rlhf-registry",
        version="0.1.0",
        description="Governance and artifact registry for RLHF workflows.",
        lifespan=lifespan,
    )
    app.state.registry = state
    errors.install(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_json_body_bytes)
    if settings.write_rate_limit > 0:
        app.add_middleware(WriteRateLimitMiddleware, per_minute=settings.write_rate_limit)
    app.add_middleware(RequestContextMiddleware)
    routers = (
        access_router,
        # before the collection routes, whose `{name}/{version}` would take `candidate` for a version
        candidate_router,
        records_router,
        decisions_router,
        evaluations_router,
        lineage_router,
        runs_router,
        external_runs_router,
        flags_router,
        uploads_router,
        blobs_router,
        audit_router,
    )
    app.include_router(packages_router)
    for router in routers:
        app.include_router(router)
    app.include_router(web_router)
    app.mount("/web/static", StaticFiles(directory=STATIC_DIR), name="web-static")
    _add_operational_routes(app)
    return app


def _add_operational_routes(app: FastAPI) -> None:
    @app.get("/healthz", tags=["ops"])
    def healthz() -> HealthRead:
        return HealthRead(status="ok")

    @app.get("/readyz", tags=["ops"], responses={200: {"model": ReadyRead}})
    def readyz(request: Request) -> JSONResponse:
        state: AppState = request.app.state.registry
        checks: dict[str, Any] = {}
        try:
            with state.sessions.read() as session:
                session.execute(text("SELECT 1"))
            checks["database"] = "ok"
        except Exception as exc:
            checks["database"] = f"error: {exc.__class__.__name__}"
        try:
            state.blobs.check()
            checks["blobs"] = "ok"
        except Exception as exc:
            checks["blobs"] = f"error: {exc.__class__.__name__}"
        ready = all(value == "ok" for value in checks.values())
        # reported, not required: a run is accepted and stays queued while the broker is down (the outbox
        # sends it later), and taking every replica out of service would refuse reads and registrations too
        checks["broker"] = "ok" if broker_reachable(state.settings) else "unreachable"
        # which process of `serve --workers N` answered, and whether it runs the deployment's background loops
        election: Election | None = getattr(request.app.state, "election", None)
        process = {"pid": os.getpid(), "background": "leader" if election and election.leading else "standby"}
        if ready:
            return JSONResponse({"status": "ready", "checks": checks, "process": process})
        problem = Unavailable("not ready: " + ", ".join(f"{k} {v}" for k, v in checks.items())).to_problem()
        return JSONResponse(
            {**problem, "checks": checks, "process": process}, status_code=503, media_type=errors.PROBLEM
        )

    # the exposition format, not JSON; 401 and 403 where the settings require a token
    @app.get(
        "/metrics",
        tags=["ops"],
        response_class=PlainTextResponse,
        responses={401: {}, 403: {}},
    )
    async def metrics(request: Request) -> Response:
        state: AppState = request.app.state.registry
        settings = state.settings
        # open in development; in production only where RLHF_REGISTRY_METRICS_PUBLIC says so
        needs_token = settings.environment == "production" and not settings.metrics_public
        if needs_token or settings.metrics_require_admin:
            authorization = request.headers.get("authorization")
            await run_in_threadpool(_require_token, state, authorization, admin=settings.metrics_require_admin)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _require_token(state: AppState, authorization: str | None, *, admin: bool) -> None:
    with state.sessions.read() as session:
        principal = access_service.authenticate(session, authorization)
        if admin and not principal.is_global_admin:
            raise Forbidden("/metrics needs a global admin token on this server")
