"""The OpenAPI document lists each operation's problem+json errors by rule, for routes added later too."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import FastAPI, Header
from pydantic import BaseModel

from app.api.openapi import PROBLEM_DETAILS, RegistryAPI
from app.main import create_app
from app.state import AppState
from tests.conftest import World

PROBLEM_CONTENT = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method, op) for path, item in document["paths"].items() for method, op in item.items()]


def error_statuses(operation: dict[str, Any]) -> set[int]:
    return {int(code) for code in operation["responses"] if int(code) >= 400}


def test_every_operation_lists_its_errors_as_problems(sqlite_stack: AppState) -> None:
    document = create_app(state=sqlite_stack).openapi()
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert document["components"]["schemas"]["Problem"] == PROBLEM_DETAILS
    for path, method, operation in operations(document):
        for code, response in operation["responses"].items():
            if int(code) >= 400:
                assert response["content"] == PROBLEM_CONTENT, (method, path, code)
        statuses = error_statuses(operation)
        parameters = {(p["in"], p["name"].lower()) for p in operation.get("parameters", [])}
        assert 503 in statuses, (method, path)
        if ("header", "authorization") in parameters:
            assert {401, 403} <= statuses, (method, path)
            assert operation["responses"]["401"]["headers"]["WWW-Authenticate"]["required"] is True
        if "{" in path:
            assert 404 in statuses, (method, path)
        if method in ("post", "put", "patch"):
            assert {400, 409, 413, 422, 429} <= statuses, (method, path)


class Thing(BaseModel):
    name: str


def test_a_route_added_after_the_app_is_built_gets_the_same_rules(sqlite_stack: AppState) -> None:
    app = create_app(state=sqlite_stack)
    app.openapi()  # built and cached once before the routes below exist

    @app.post("/v1/things/{thing}")
    def put_thing(thing: str, body: Thing, authorization: Annotated[str | None, Header()] = None) -> Thing:
        return body

    @app.get("/open")
    def open_route() -> dict[str, str]:
        return {}

    document = app.openapi()
    write = document["paths"]["/v1/things/{thing}"]["post"]
    assert error_statuses(write) == {400, 401, 403, 404, 409, 413, 422, 429, 503}
    assert error_statuses(document["paths"]["/open"]["get"]) == {503}


def test_a_status_a_route_declares_itself_is_a_problem_too() -> None:
    app: FastAPI = RegistryAPI()

    @app.get("/guarded", responses={403: {"description": "only on Tuesdays"}})
    def guarded() -> dict[str, str]:
        return {}

    forbidden = app.openapi()["paths"]["/guarded"]["get"]["responses"]["403"]
    assert forbidden == {"description": "only on Tuesdays", "content": PROBLEM_CONTENT}


def test_a_validation_error_on_the_wire_is_the_documented_problem(world: World) -> None:
    """FastAPI's 422 is documented as a Problem because the handler sends one: check a real one."""
    project = world.project()
    response = world.admin.get(f"/v1/projects/{project}/criteria", params={"limit": 0})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert set(PROBLEM_DETAILS["required"]) <= set(body) and body["code"] == "validation_failed"
    for item in body["errors"]:
        assert set(item) <= set(PROBLEM_DETAILS["properties"]["errors"]["items"]["properties"])
