"""The rows of a registration have the same limits inline, as JSONL and as Parquet: at most
`max_batch_rows` rows, each with at most `max_row_bytes` bytes of text; beyond either, 413
`payload_too_large` naming the limit, and nothing is stored."""

from __future__ import annotations

import dataclasses
import io
import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.state import AppState
from tests.conftest import Api, World
from tests.factories import agreeing_items, batch_body, criteria_body, prompt, prompt_set_body

MAX_ROWS = 30
MAX_ROW_BYTES = 3000


@pytest.fixture
def limited(stack: AppState) -> Iterator[World]:
    settings = stack.settings.model_copy(update={"max_batch_rows": MAX_ROWS, "max_row_bytes": MAX_ROW_BYTES})
    state = dataclasses.replace(stack, settings=settings)
    with TestClient(create_app(state=state), raise_server_exceptions=False) as client:
        yield World(state, client)


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(row) + "\n" for row in rows).encode()


def _parquet(rows: list[dict[str, Any]]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    return sink.getvalue()


def _upload(api: Api, data: bytes) -> str:
    response = api.post("/v1/blobs", content=data, headers={"content-type": "application/octet-stream"})
    assert response.status_code in (200, 201), response.text
    return str(response.json()["digest"])


def _prompt_set(api: Api, project: str, form: str, rows: list[dict[str, Any]], version: str) -> Any:
    spec: dict[str, Any] = {"sampling_procedure": "s"}
    if form == "inline":
        spec["prompts"] = rows
    else:
        spec["prompts_blob"] = _upload(api, _jsonl(rows) if form == "jsonl" else _parquet(rows))
    body = {"name": "limited", "version": version, "spec": spec}
    return api.post(f"/v1/projects/{project}/prompt-sets", json=body)


def _too_large(response: Any, limit: int, loc: list[Any]) -> None:
    assert response.status_code == 413, response.text
    problem = response.json()
    assert problem["code"] == "payload_too_large" and problem["limit"] == limit
    assert problem["errors"][0]["loc"] == loc


FORMS = ["inline", "jsonl", "parquet"]


@pytest.mark.parametrize("form", FORMS)
def test_one_row_over_the_size_limit_is_refused_in_every_form(limited: World, form: str) -> None:
    project = limited.project()
    annotator = limited.member(project, "annotator")
    rows = [prompt(f"q{i}", "synthetic") for i in range(3)]
    # the limit counts the bytes of text, whatever JSON spends writing them (here 6 bytes per byte)
    others = sum(len(value.encode()) for key, value in rows[1].items() if key != "text" and isinstance(value, str))
    rows[1]["text"] = "\x01" * (MAX_ROW_BYTES - others)
    assert _prompt_set(annotator, project, form, rows, "1.0.0").status_code == 201
    rows[2]["text"] += "é" * (MAX_ROW_BYTES // 2)
    _too_large(_prompt_set(annotator, project, form, rows, "1.0.1"), MAX_ROW_BYTES, ["spec", "prompts", 2])
    assert [r["version"] for r in limited.admin.get(f"/v1/projects/{project}/prompt-sets").json()["items"]] == ["1.0.0"]


@pytest.mark.parametrize("form", FORMS)
def test_more_rows_than_the_limit_are_refused_in_every_form(limited: World, form: str) -> None:
    project = limited.project()
    annotator = limited.member(project, "annotator")
    rows = [prompt(f"q{i}", "synthetic") for i in range(MAX_ROWS)]
    assert _prompt_set(annotator, project, form, rows, "1.0.0").status_code == 201
    rows.append(prompt("one-more", "synthetic"))
    _too_large(_prompt_set(annotator, project, form, rows, "1.0.1"), MAX_ROWS, ["spec", "prompts"])


def test_a_jsonl_line_longer_than_arrows_block_is_read_when_its_row_is_within_the_limit(stack: AppState) -> None:
    settings = stack.settings.model_copy(update={"max_row_bytes": 3 * 1024 * 1024})
    state = dataclasses.replace(stack, settings=settings)
    with TestClient(create_app(state=state), raise_server_exceptions=False) as client:
        world = World(state, client)
        project = world.project()
        annotator = world.member(project, "annotator")
        rows = [prompt("q0", "synthetic", text="x" * (2 * 1024 * 1024)), prompt("q1", "synthetic")]
        for form, version in (("jsonl", "1.0.0"), ("parquet", "1.0.1")):
            response = _prompt_set(annotator, project, form, rows, version)
            assert response.status_code in (200, 201), response.text
            assert response.json()["derived"]["count"] == 2


def test_an_annotation_batch_from_parquet_is_held_to_the_same_limits(limited: World) -> None:
    project = limited.project()
    annotator = limited.member(project, "annotator")
    assert limited.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body()).status_code == 201
    prompts = prompt_set_body([prompt(f"q{i}") for i in range(20)])
    assert limited.admin.post(f"/v1/projects/{project}/prompt-sets", json=prompts).status_code == 201
    items = agreeing_items(n_pairs=11)  # 33 items
    for row in items:
        row.pop("dimensions")
    body = batch_body([])
    body["spec"].pop("items")
    body["spec"]["items_blob"] = _upload(annotator, _parquet(items))
    _too_large(annotator.post(f"/v1/projects/{project}/annotation-batches", json=body), MAX_ROWS, ["spec", "items"])
    items = items[:MAX_ROWS]
    items[-1]["justification"] = "y" * MAX_ROW_BYTES
    body["spec"]["items_blob"] = _upload(annotator, _parquet(items))
    response = annotator.post(f"/v1/projects/{project}/annotation-batches", json=body)
    _too_large(response, MAX_ROW_BYTES, ["spec", "items", MAX_ROWS - 1])
    assert limited.admin.get(f"/v1/projects/{project}/annotation-batches").json()["items"] == []


def test_a_jsonl_line_too_long_for_any_row_within_the_limit_is_refused_before_it_is_parsed(limited: World) -> None:
    project = limited.project()
    annotator = limited.member(project, "annotator")
    rows = [prompt("q0", "synthetic"), prompt("q1", "synthetic", text="x" * (2 * 1024 * 1024))]
    _too_large(_prompt_set(annotator, project, "jsonl", rows, "1.0.0"), MAX_ROW_BYTES, ["spec", "prompts", 1])
