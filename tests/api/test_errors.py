"""Every error is problem+json with a stable code; nothing leaks a stack trace or SQL."""

from __future__ import annotations

import dataclasses
import json

import pytest
from fastapi.testclient import TestClient

from app.core.db import SessionFactory, make_engine
from app.main import create_app
from app.state import AppState
from tests.conftest import World

PROBLEM_KEYS = {"type", "title", "status", "detail", "code"}


def _is_problem(response: object, status: int, code: str) -> None:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"] == "application/problem+json"  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) >= PROBLEM_KEYS and body["code"] == code and body["status"] == status


def test_request_validation(world: World) -> None:
    response = world.admin.post("/v1/projects", json={"name": 5, "extra": True})
    _is_problem(response, 422, "validation_failed")
    locs = [tuple(e["loc"]) for e in response.json()["errors"]]
    assert ("body", "extra") in locs


def test_bad_project_slug(world: World) -> None:
    _is_problem(world.admin.post("/v1/projects", json={"name": "Not A Slug"}), 422, "validation_failed")


def test_unknown_route_and_wrong_method(world: World) -> None:
    _is_problem(world.admin.get("/v1/nothing-here"), 404, "not_found")
    _is_problem(world.admin.request("DELETE", "/v1/projects"), 405, "method_not_allowed")


def test_json_body_over_limit_by_content_length(stack: AppState) -> None:
    settings = stack.settings.model_copy(update={"max_json_body_bytes": 1000})
    with TestClient(create_app(state=dataclasses.replace(stack, settings=settings))) as client:
        response = client.post(
            "/v1/projects", content=b"{" + b" " * 2000 + b"}", headers={"content-type": "application/json"}
        )
    _is_problem(response, 413, "payload_too_large")


def test_chunked_json_body_over_limit(stack: AppState) -> None:
    settings = stack.settings.model_copy(update={"max_json_body_bytes": 1000})
    with TestClient(create_app(state=dataclasses.replace(stack, settings=settings))) as client:

        def chunks():  # no Content-Length: the middleware must count while reading
            yield b"{"
            for _ in range(30):
                yield b" " * 100
            yield b"}"

        response = client.post("/v1/projects", content=chunks(), headers={"content-type": "application/json"})
    _is_problem(response, 413, "payload_too_large")


def test_unexpected_exception_is_a_500_without_internals(stack: AppState, caplog: pytest.LogCaptureFixture) -> None:
    app = create_app(stack.settings, state=stack)

    @app.get("/v1/boom")
    def boom() -> None:
        raise RuntimeError("SELECT secret FROM internals -- Traceback")

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/v1/boom", headers={"X-Request-ID": "req-123"})
    _is_problem(response, 500, "internal_error")
    text = response.text
    assert "SELECT" not in text and "Traceback" not in text and "RuntimeError" not in text
    assert response.json()["request_id"] == "req-123"
    assert response.headers["x-request-id"] == "req-123"


def test_unauthenticated_has_www_authenticate(world: World) -> None:
    response = world.client.get("/v1/me")
    _is_problem(response, 401, "unauthenticated")
    assert response.headers["www-authenticate"] == "Bearer"


def test_request_id_is_generated_and_logged(world: World) -> None:
    response = world.admin.get("/v1/me")
    assert len(response.headers["x-request-id"]) == 32


def test_health_and_readiness(world: World) -> None:
    assert world.client.get("/healthz").json() == {"status": "ok"}
    ready = world.client.get("/readyz")
    checks = {"database": "ok", "blobs": "ok", "broker": "ok"}
    assert ready.status_code == 200 and ready.json()["checks"] == checks
    metrics = world.client.get("/metrics")
    assert metrics.status_code == 200 and "rlhf_registry_requests_total" in metrics.text


def test_problem_type_is_json_serialisable_everywhere(world: World) -> None:
    for path in ("/v1/me", "/v1/projects/x/criteria", "/v1/records/x"):
        json.dumps(world.client.get(path).json())


def test_readyz_reports_unavailable_database(stack: AppState) -> None:
    app = create_app(stack.settings, state=stack)
    app.state.registry = AppState(
        settings=stack.settings,
        sessions=SessionFactory(make_engine("postgresql://nobody@127.0.0.1:1/none", pool_size=1)),
        blobs=stack.blobs,
        audit=stack.audit,
        signing_key=stack.signing_key,
    )
    with TestClient(app) as client:
        response = client.get("/readyz")
    _is_problem(response, 503, "unavailable")
    assert response.json()["checks"]["blobs"] == "ok"
    assert response.json()["checks"]["database"].startswith("error")
