"""Registration routes take their kind's model as an ordinary FastAPI body: every malformed body gets
the answer FastAPI gives a model body (checked here against a plain FastAPI route with the registry's
error handlers), nothing is stored, and a body that is JSON but of the wrong shape is answered 401
before its shape when the token is missing or unknown."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import pytest
from fastapi import Body, FastAPI
from fastapi.testclient import TestClient
from pydantic import BaseModel

from app.api import errors
from tests.conftest import World

CASES = {
    "invalid-json": (b'{"spec": ', "application/json"),
    "a-list": (b"[1, 2]", "application/json"),
    "a-string": (b'"text"', "application/json"),
    "empty": (b"", "application/json"),
    "text-plain": (b'{"spec": {}}', "text/plain"),
    "form": (b"spec=1", "application/x-www-form-urlencoded"),
    "bad-utf8": (b'{"spec": "\xff"}', "application/json"),
    "bad-content-type": (b'{"spec": {}}', "application/"),
    "no-content-type": (b'{"spec": {}}', None),
    "too-deep": (b"[" * 100_000, "application/json"),
}


class Echo(BaseModel):
    spec: dict[str, Any] = {}


@pytest.fixture(scope="module")
def fastapi_answers() -> Iterator[TestClient]:
    reference = FastAPI()
    errors.install(reference)

    @reference.post("/echo")
    def echo(body: Annotated[Echo, Body()]) -> Echo:
        return body

    with TestClient(reference, raise_server_exceptions=False) as client:
        yield client


def _answer(response: Any) -> tuple[int, Any]:
    problem = response.json()
    return response.status_code, problem.get("errors")


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_bad_body_gets_fastapis_answer_and_nothing_is_stored(
    world: World, fastapi_answers: TestClient, case: str
) -> None:
    content, content_type = CASES[case]
    headers = {} if content_type is None else {"content-type": content_type}
    project = world.project()
    expected = fastapi_answers.post("/echo", content=content, headers=headers)
    assert expected.status_code in (400, 422), expected.text
    response = world.admin.post(f"/v1/projects/{project}/policies", content=content, headers=headers)
    assert response.headers["content-type"] == "application/problem+json"
    assert _answer(response) == _answer(expected), response.text
    assert world.admin.get(f"/v1/projects/{project}/policies").json()["items"] == []


@pytest.mark.parametrize(
    "content_type", ["application/json", "application/json; charset=utf-8", "application/merge+json"]
)
def test_json_bodies_are_read_whatever_the_json_content_type(world: World, content_type: str) -> None:
    project = world.project()
    response = world.admin.post(
        f"/v1/projects/{project}/policies",
        content=b'{"spec": {"kappa_floor": 0.4}}',
        headers={"content-type": content_type},
    )
    assert response.status_code == 201, response.text
    assert response.json()["spec"]["kappa_floor"] == 0.4


# A body that is not JSON at all is answered 422 by FastAPI before any dependency runs, on every route.
@pytest.mark.parametrize("case", ["a-list", "a-string", "empty"])
def test_the_token_is_checked_before_the_body(world: World, case: str) -> None:
    project = world.project()
    content, content_type = CASES[case]
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        response = world.client.post(
            f"/v1/projects/{project}/policies", content=content, headers={"content-type": str(content_type), **headers}
        )
        assert response.status_code == 401, response.text


def test_the_openapi_document_describes_each_kinds_body(world: World) -> None:
    document = world.client.get("/openapi.json").json()
    operation = document["paths"]["/v1/projects/{project}/policies"]["post"]
    assert {(p["name"], p["in"]) for p in operation["parameters"]} == {("project", "path"), ("authorization", "header")}
    body = operation["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("/PolicyCreate")
    schemas = document["components"]["schemas"]
    assert {"name", "version", "spec"} <= set(schemas["PolicyCreate"]["properties"])
    assert "kappa_floor" in schemas["PolicySpec"]["properties"]
    assert {"target", "spec"} <= set(schemas["EvaluationCreate"]["properties"])
    assert {"rule", "covers"} <= set(schemas["WaiverCreate"]["properties"])
    assert operation["responses"]["201"]["content"]["application/json"]["schema"]["$ref"].endswith("/RecordRegistered")
    assert "audit_leaf_hash" in schemas["RecordRegistered"]["properties"]
