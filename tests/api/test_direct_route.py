"""`DirectRoute`: FastAPI documents the endpoint as usual and the request reaches it with its path
parameters and headers as strings; endpoints it could not call faithfully are refused when added."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, Request, Response
from fastapi.testclient import TestClient

from app.api.direct import DirectRoute


def _app() -> FastAPI:
    app = FastAPI()
    router = APIRouter()

    async def echo(
        project: str, name: str, request: Request, x_trace_id: Annotated[str | None, Header()] = None
    ) -> Response:
        body = await request.body()
        return Response(f"{project}|{name}|{x_trace_id}|{body.decode()}", status_code=201)

    router.add_api_route("/p/{project}/n/{name}", echo, methods=["POST"], route_class_override=DirectRoute)
    app.include_router(router)
    return app


def test_the_endpoint_gets_path_parameters_headers_and_the_request() -> None:
    with TestClient(_app()) as client:
        response = client.post("/p/alpha/n/beta", content=b"raw", headers={"X-Trace-Id": "t-1"})
        assert (response.status_code, response.text) == (201, "alpha|beta|t-1|raw")
        assert client.post("/p/alpha/n/beta").text == "alpha|beta|None|"
        assert client.get("/p/alpha/n/beta").status_code == 405


def test_the_operation_is_documented_from_the_signature() -> None:
    with TestClient(_app()) as client:
        operation = client.get("/openapi.json").json()["paths"]["/p/{project}/n/{name}"]["post"]
    where = {(p["name"], p["in"]) for p in operation["parameters"]}
    assert where == {("project", "path"), ("name", "path"), ("x-trace-id", "header")}


def _dependency() -> str:
    return "x"


async def _with_query(request: Request, limit: int = 5) -> Response:
    return Response()


async def _with_dependency(request: Request, value: Annotated[str, Depends(_dependency)]) -> Response:
    return Response()


async def _without_request(project: str) -> Response:
    return Response()


async def _typed_path(request: Request, project: int) -> Response:
    return Response()


@pytest.mark.parametrize("endpoint", [_with_query, _with_dependency, _without_request, _typed_path])
def test_endpoints_it_cannot_call_faithfully_are_refused(endpoint: object) -> None:
    router = APIRouter()
    with pytest.raises(TypeError, match="direct route"):
        router.add_api_route("/p/{project}", endpoint, methods=["POST"], route_class_override=DirectRoute)  # type: ignore[arg-type]
