"""Hostile JSON bodies get a located 4xx problem and store nothing, on every kind of route that takes a
body: a registration (read by the route itself), project creation, a decision, POST runs, uploads.

What is refused (`app.core.json_limits`): integers beyond +-(2**53 - 1), lone surrogates, NaN and the
infinities (and 1e999), nesting deeper than 64 levels; names outside `app.core.names`' grammar."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from app.core.json_limits import MAX_DEPTH
from tests.conftest import World, unique
from tests.decisions.test_model_chain import Chain

DIGEST = "sha256:" + "ab" * 32

# JSON text spliced into a body where the placeholder stands
HOSTILE = {
    "2**53": "9007199254740992",
    "-(2**53)-1": "-9007199254740993",
    "2**70": str(2**70),
    "lone-surrogate": '"\\udc00"',
    "lone-surrogate-in-text": '"name\\ud800x"',
    "NaN": "NaN",
    "Infinity": "Infinity",
    "-Infinity": "-Infinity",
    "1e999": "1e999",
    "nested-65": "[" * 65 + "]" * 65,
    "nested-400": "[" * 400 + "]" * 400,
}
HOLE = "@@"


@dataclass(frozen=True)
class Route:
    """A route with a body template (HOLE marks the hostile value), where the value is located in the
    problem, and what a listing shows of what the route stores."""

    method: str
    url: Callable[[World, str, dict[str, str]], str]
    template: str
    loc: list[Any]
    stored: Callable[[World, str, dict[str, str]], Any]


def _policy(world: World, project: str) -> dict[str, Any]:
    response = world.admin.post(f"/v1/projects/{project}/policies", json={"spec": {"gold_share_min": 0.06}})
    assert response.status_code == 201, response.text
    record: dict[str, Any] = response.json()
    return record


def _items(world: World, url: str) -> Any:
    response = world.admin.get(url)
    assert response.status_code == 200, response.text
    return response.json()["items"]


ROUTES = {
    "register-policy": Route(
        "POST",
        lambda w, p, c: f"/v1/projects/{p}/policies",
        '{"name": "default", "spec": {"gold_share_min": @@}}',
        ["body", "spec", "gold_share_min"],
        lambda w, p, c: [r["id"] for r in _items(w, f"/v1/projects/{p}/policies")],
    ),
    "register-waiver": Route(
        "POST",
        lambda w, p, c: f"/v1/projects/{p}/waivers",
        '{"name": "w", "rule": "quarantined", "covers": [{"id": "' + "{policy}" + '"}], '
        '"spec": {"reason": "a reason long enough", "metadata": {"list": [1, @@]}}}',
        ["body", "spec", "metadata", "list", 1],
        lambda w, p, c: _items(w, f"/v1/projects/{p}/waivers"),
    ),
    "create-project": Route(
        "POST",
        lambda w, p, c: "/v1/projects",
        '{"name": "' + "{fresh}" + '", "description": @@}',
        ["body", "description"],
        lambda w, p, c: [q["name"] for q in _items(w, "/v1/projects")],
    ),
    "revoke-decision": Route(
        "POST",
        lambda w, p, c: f"/v1/records/{c['policy']}/revoke",
        '{"reason": @@}',
        ["body", "reason"],
        lambda w, p, c: _items(w, f"/v1/records/{c['policy']}/events"),
    ),
    "post-run": Route(
        "POST",
        lambda w, p, c: f"/v1/projects/{p}/runs",
        '{"kind": "reward_model", "inputs": {}, "params": {"max_steps": @@}}',
        ["body", "params", "max_steps"],
        lambda w, p, c: _items(w, f"/v1/projects/{p}/runs"),
    ),
    "set-member": Route(
        "PUT",
        lambda w, p, c: f"/v1/projects/{p}/members/{c['member']}",
        '{"role": @@}',
        ["body", "role"],
        lambda w, p, c: sorted(m["principal"] for m in _items(w, f"/v1/projects/{p}/members")),
    ),
}


def _assert_problem(response: Any, status: int, loc: list[Any] | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["code"] == "validation_failed" and problem["status"] == status
    if loc is not None:
        assert [e["loc"] for e in problem["errors"]] == [loc], problem


@pytest.mark.parametrize("route_name", sorted(ROUTES))
@pytest.mark.parametrize("hostile", sorted(HOSTILE))
def test_a_hostile_value_is_refused_where_it_stands_and_nothing_is_stored(
    world: World, route_name: str, hostile: str
) -> None:
    route = ROUTES[route_name]
    project = world.project()
    context = {"policy": _policy(world, project)["id"], "member": unique("member"), "fresh": unique("proj")}
    before = route.stored(world, project, context)
    template = route.template.replace("{policy}", context["policy"]).replace("{fresh}", context["fresh"])
    body = template.replace(HOLE, HOSTILE[hostile]).encode()
    response = world.admin.request(
        route.method, route.url(world, project, context), content=body, headers={"content-type": "application/json"}
    )
    loc = route.loc + [0] * (MAX_DEPTH - len(route.loc) + 1) if hostile.startswith("nested") else route.loc
    _assert_problem(response, 422, loc)
    assert route.stored(world, project, context) == before


def test_the_same_bodies_without_the_hostile_value_are_accepted(world: World) -> None:
    """The templates above are bodies the routes take: it is the value that is refused."""
    project = world.project()
    policy = _policy(world, project)
    context = {"policy": policy["id"], "member": world.principal().principal, "fresh": unique("proj")}
    fine = {
        "register-policy": ("0.07", 201),
        "create-project": ('"a project"', 201),
        "set-member": ('"viewer"', 200),
        "register-waiver": ("2", 201),
        "revoke-decision": ('"superseded by a later policy"', 201),
    }
    for name, (value, status) in fine.items():
        route = ROUTES[name]
        template = route.template.replace("{policy}", context["policy"]).replace("{fresh}", context["fresh"])
        response = world.admin.request(
            route.method,
            route.url(world, project, context),
            content=template.replace(HOLE, value).encode(),
            headers={"content-type": "application/json"},
        )
        assert response.status_code == status, (name, response.text)


@pytest.mark.parametrize("levels", [400, 700, 989])
def test_deep_nesting_in_spec_metadata_is_refused_without_a_500(world: World, levels: int) -> None:
    project = world.project()
    nested = "[" * levels + "]" * levels
    body = f'{{"name": "ps", "version": "1.0.0", "spec": {{"sampling_procedure": "s", "metadata": {{"m": {nested}}}}}}}'
    registration = world.admin.post(
        f"/v1/projects/{project}/prompt-sets", content=body.encode(), headers={"content-type": "application/json"}
    )
    run = world.admin.post(
        f"/v1/projects/{project}/runs", content=body.encode(), headers={"content-type": "application/json"}
    )
    # FastAPI parses every body first: deeper than Python's parser goes is FastAPI's 400
    for response in (registration, run):
        _assert_problem(response, 422 if levels < 900 else response.status_code)
        assert response.status_code in (400, 422)
    assert _items(world, f"/v1/projects/{project}/prompt-sets") == []
    assert _items(world, f"/v1/projects/{project}/runs") == []


def _prompt_set(metadata: Any) -> dict[str, Any]:
    prompts = [{"id": "p1", "text": "hello", "source": "synthetic"}]
    return {
        "name": "ps",
        "version": "1.0.0",
        "spec": {"sampling_procedure": "s", "prompts": prompts, "metadata": metadata},
    }


def test_nesting_up_to_the_limit_is_stored_and_one_level_more_is_refused(world: World) -> None:
    project = world.project()
    url = f"/v1/projects/{project}/prompt-sets"
    # the body, spec and metadata are three levels; the list nests inside them
    deepest: Any = []
    for _ in range(MAX_DEPTH - 4):
        deepest = [deepest]
    accepted = world.admin.post(url, json=_prompt_set({"m": deepest}))
    assert accepted.status_code == 201, accepted.text
    refused = world.admin.post(url, json={**_prompt_set({"m": [deepest]}), "version": "1.0.1"})
    _assert_problem(refused, 422)
    assert [r["version"] for r in _items(world, url)] == ["1.0.0"]


def test_a_model_file_of_2_to_the_70_bytes_is_refused(world: World) -> None:
    project = world.project()
    files = [{"path": "config.json", "digest": DIGEST, "size": 2**70}]
    response = world.admin.post(f"/v1/projects/{project}/base-models", json={"name": "m", "spec": {"files": files}})
    _assert_problem(response, 422, ["body", "spec", "files", 0, "size"])
    assert _items(world, f"/v1/projects/{project}/base-models") == []


def test_an_upload_of_2_to_the_70_bytes_is_refused(world: World) -> None:
    response = world.admin.post("/v1/blobs/uploads", json={"digest": DIGEST, "size": 2**70})
    _assert_problem(response, 422, ["body", "size"])


def test_a_body_that_is_not_json_text_is_still_fastapis_400(world: World) -> None:
    project = world.project()
    for url in ("/v1/projects", f"/v1/projects/{project}/policies", f"/v1/projects/{project}/runs"):
        response = world.admin.post(url, content=b"[" * 100_000, headers={"content-type": "application/json"})
        _assert_problem(response, 400)


def test_large_safe_numbers_and_surrogate_pairs_are_stored_as_sent(world: World) -> None:
    project = world.project()
    metadata = {"big": 2**53 - 1, "small": -(2**53 - 1), "emoji": "\U0001f600", "float": 1e300}
    response = world.admin.post(f"/v1/projects/{project}/prompt-sets", json=_prompt_set(metadata))
    assert response.status_code == 201, response.text
    assert response.json()["spec"]["metadata"] == metadata
    raw = json.dumps(_prompt_set(metadata) | {"version": "1.0.1"}).encode()  # the emoji as an escaped pair
    assert b"\\ud83d\\ude00" in raw
    again = world.admin.post(
        f"/v1/projects/{project}/prompt-sets", content=raw, headers={"content-type": "application/json"}
    )
    assert again.status_code == 201, again.text
    assert again.json()["spec"]["metadata"] == metadata


BAD_NAMES = {
    "dot": ".",
    "dot-dot": "..",
    "dots-inside": "a..b",
    "leading-dot": ".name",
    "trailing-dot": "name.",
    "slash": "a/b",
    "space": "a b",
    "newline-after": "name\n",
    "nul": "a\x00b",
    "control": "a\x1bb",
    "bidi-override": "abc\u202edef",
    "rtl-isolate": "abc\u2067x",
    "look-alike": "p\u0430ypal",
    "leading-dash": "-name",
    "leading-underscore": "_name",
    "empty": "",
    "too-long": "a" * 64,
    "not-a-string": 5,
}


@pytest.mark.parametrize("case", sorted(BAD_NAMES))
def test_a_name_outside_the_grammar_is_refused_for_projects_and_records(world: World, case: str) -> None:
    name = BAD_NAMES[case]
    projects = [p["name"] for p in _items(world, "/v1/projects")]
    _assert_problem(world.admin.post("/v1/projects", json={"name": name}), 422, ["body", "name"])
    assert [p["name"] for p in _items(world, "/v1/projects")] == projects
    project = world.project()
    response = world.admin.post(f"/v1/projects/{project}/prompt-sets", json={**_prompt_set({}), "name": name})
    _assert_problem(response, 422, ["body", "name"])
    assert _items(world, f"/v1/projects/{project}/prompt-sets") == []


def test_latest_is_not_a_record_name(world: World) -> None:
    project = world.project()
    response = world.admin.post(f"/v1/projects/{project}/prompt-sets", json={**_prompt_set({}), "name": "latest"})
    _assert_problem(response, 422, ["body", "name"])


@pytest.mark.parametrize("name", ["A", "a" * 63, "Model_v2-final", "0day", "llama-3.1-8b"])
def test_names_inside_the_grammar_are_taken(world: World, name: str) -> None:
    suffix = uuid.uuid4().hex
    project_name = (name + suffix)[-63:] if len(name) > 1 else name + suffix[:8]
    created = world.admin.post("/v1/projects", json={"name": project_name})
    assert created.status_code == 201, created.text
    assert created.json()["name"] == project_name
    project = world.project()
    response = world.admin.post(f"/v1/projects/{project}/prompt-sets", json={**_prompt_set({}), "name": name})
    assert response.status_code == 201, response.text
    assert response.json()["name"] == name
    assert world.admin.get(f"/v1/projects/{project}/prompt-sets/{name}/latest").status_code == 200


def test_parquet_text_that_is_not_utf8_is_refused(world: World) -> None:
    """Arrow reads Parquet strings without checking them; the registry checks them before using them."""
    project = world.project()
    annotator = world.member(project, "annotator")
    offsets = pa.py_buffer(b"\x00\x00\x00\x00\x05\x00\x00\x00")
    topic = pa.Array.from_buffers(pa.string(), 1, [None, offsets, pa.py_buffer(b"a\xed\xb0\x80b")])
    table = pa.table({"id": ["q1"], "text": ["hello"], "source": ["synthetic"], "topic": topic})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    uploaded = annotator.post(
        "/v1/blobs", content=sink.getvalue(), headers={"content-type": "application/octet-stream"}
    )
    assert uploaded.status_code == 201, uploaded.text
    spec = {"sampling_procedure": "s", "prompts_blob": uploaded.json()["digest"]}
    response = annotator.post(
        f"/v1/projects/{project}/prompt-sets", json={"name": "ps", "version": "1.0.0", "spec": spec}
    )
    _assert_problem(response, 422, ["spec", "prompts"])
    assert _items(world, f"/v1/projects/{project}/prompt-sets") == []


def _json_body_operations(world: World) -> list[tuple[str, str, dict[str, Any]]]:
    document = world.client.get("/openapi.json").json()
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if "application/json" in operation.get("requestBody", {}).get("content", {}):
                found.append((method.upper(), path, operation))
    return found


def test_every_operation_that_takes_a_json_body_holds_it_to_the_limits(world: World) -> None:
    operations = _json_body_operations(world)
    assert len(operations) >= 15  # every registration, and the FastAPI routes with a body
    for method, path, operation in operations:
        url = path
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                value = "1" if parameter["schema"].get("type") == "integer" else "p"
                url = url.replace("{" + parameter["name"] + "}", value)
        response = world.admin.request(method, url, content=b'{"x": NaN}', headers={"content-type": "application/json"})
        assert response.status_code == 422, (method, path, response.text)
        assert response.json()["errors"] == [{"loc": ["body", "x"], "msg": response.json()["errors"][0]["msg"]}]


@pytest.mark.parametrize("output_name", ["rm..v2", "..", "a" * 64, "latest"])
def test_a_run_output_name_outside_the_grammar_is_refused_before_it_is_queued(world: World, output_name: str) -> None:
    chain = Chain(world)
    body = {
        "kind": "reward_model",
        "inputs": {"dataset": {"id": chain.dataset["id"]}, "base_model": {"id": chain.base["id"]}},
        "params": {"max_steps": 2, "seed": 1},
        "output_name": output_name,
    }
    _assert_problem(chain.trainer.post(chain.url("runs"), json=body), 422, ["body", "output_name"])
    assert chain.trainer.get(chain.url("runs")).json()["items"] == []
