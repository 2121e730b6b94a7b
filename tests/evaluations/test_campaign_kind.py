"""Evaluation campaigns through the API: a policy series and its reference answering the prompt set, the
blinded tasks the server derives from a recorded seed, each refusal located, and the tasks route."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.evaluations.tasks import load_tasks, task_id_of
from app.records.models import Record
from app.state import AppState
from tests.conftest import Api, World
from tests.packages.chain import PackageChain

PROMPT_IDS = [f"q{i}" for i in range(20)]  # the chain's prompt set: prompt_mix(20)
CAMPAIGNS = "evaluation-campaigns"


def reply(prompt_id: str, model: str) -> str:
    """A model's response, telling nothing of the model."""
    return "reply " + hashlib.sha256(f"{prompt_id}:{model}".encode()).hexdigest()[:10]


def response_rows(models: Sequence[str], prompts: Sequence[str] = PROMPT_IDS) -> list[dict[str, Any]]:
    return [{"prompt_id": p, "model": m, "response": reply(p, m)} for p in prompts for m in models]


def models_of(chain: PackageChain) -> list[str]:
    """The reference first, then the series in step order."""
    return [chain.base["id"], *(c["id"] for c in chain.series)]


def campaign_body(chain: PackageChain, rows: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    digest = chain.blob("".join(json.dumps(r) + "\n" for r in rows).encode())
    return {
        "name": "policy-campaign",
        # out of step order: the server orders the series
        "checkpoints": [{"id": c["id"]} for c in reversed(chain.series)],
        "reference": {"id": chain.base["id"]},
        "prompt_set": {"name": "core-prompts", "version": "1.0.0"},
        "spec": {"responses_blob": digest, "generation": {"max_new_tokens": 64, "temperature": 0.7}, **spec},
    }


def register(chain: PackageChain, body: dict[str, Any], api: Api | None = None) -> Any:
    return (api or chain.trainer).post(chain.url(CAMPAIGNS), json=body)


@pytest.fixture(scope="module")
def chain(stack: AppState, _clients: TestClient) -> PackageChain:
    return PackageChain(World(stack, _clients))


def _record(state: AppState, record_id: str) -> Record:
    with state.sessions.read() as session:
        record = session.get(Record, record_id)
        assert record is not None
        session.expunge(record)
        return record


def test_a_campaign_derives_blinded_tasks_from_its_seed(chain: PackageChain, stack: AppState) -> None:
    body = campaign_body(chain, response_rows(models_of(chain)), seed=7)
    response = register(chain, body)
    assert response.status_code == 201, response.text
    campaign = response.json()
    derived = campaign["derived"]
    reference, *checkpoints = models_of(chain)
    assert [(m["id"], m["role"], m["step"]) for m in derived["models"]] == [
        (reference, "reference", None),
        *((c, "checkpoint", step) for c, step in zip(checkpoints, (50, 100, 150), strict=True)),
    ]
    assert derived["models"][1]["name"] == derived["series"] == "policy"
    assert (derived["pairing"], derived["seed"]) == ("reference", 7)
    assert derived["counts"] == {
        "prompts": 20,
        "tasks": 60,
        "by_source": {"adversarial": 3, "synthetic": 4, "usage": 13},
        "incomplete_prompts": 0,
    }
    [tasks_file] = derived["files"]
    assert tasks_file["path"] == "tasks.jsonl"

    tasks = load_tasks(_record(stack, campaign["id"]), stack.blobs)
    assert len(tasks) == 60 and len({t["task_id"] for t in tasks}) == 60
    for task in tasks:
        left, right = task["left_model"], task["right_model"]
        assert reference in (left, right) and task["comparison"] == "reference"
        assert task["task_id"] == task_id_of(7, task["prompt_id"], left, right)
        assert (task["response_left"], task["response_right"]) == (
            reply(task["prompt_id"], left),
            reply(task["prompt_id"], right),
        )
        assert task["prompt"].startswith(f"Question {task['prompt_id']}:")
    assert 15 < sum(t["left_model"] == reference for t in tasks) < 45  # drawn, not fixed

    # the same content is the same record; another seed draws other tasks
    again = register(chain, body)
    assert (again.status_code, again.json()["id"]) == (200, campaign["id"])
    other = register(chain, campaign_body(chain, response_rows(models_of(chain)), seed=8)).json()
    assert other["derived"]["files"][0]["digest"] != tasks_file["digest"]


def test_pairing_all_and_prompts_not_answered_by_every_model(chain: PackageChain) -> None:
    rows = response_rows(models_of(chain))
    # the last checkpoint never answered q0; q1 only has the reference's answer
    rows = [r for r in rows if not (r["prompt_id"] == "q0" and r["model"] == chain.series[-1]["id"])]
    rows = [r for r in rows if r["prompt_id"] != "q1" or r["model"] == chain.base["id"]]
    response = register(chain, {**campaign_body(chain, rows, pairing="all"), "name": "all-pairs"})
    assert response.status_code == 201, response.text
    counts = response.json()["derived"]["counts"]
    assert counts["prompts"] == 18 and counts["incomplete_prompts"] == 2
    assert counts["tasks"] == 18 * (3 + 3)


def _refused(chain: PackageChain, body: dict[str, Any]) -> list[dict[str, Any]]:
    response = register(chain, {**body, "name": "refused"})
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "validation_failed"
    return list(problem["errors"])


def test_bad_responses_are_refused_by_row(chain: PackageChain) -> None:
    models = models_of(chain)
    rows = response_rows(models, ["q2", "q3"])
    rows[1] = {**rows[1], "prompt_id": "no-such-prompt"}
    rows[2] = {**rows[2], "model": chain.reward["id"]}  # a record, but not a model of the campaign
    rows.append(dict(rows[5]))
    errors = _refused(chain, campaign_body(chain, rows))
    where = ["spec", "responses_blob"]
    assert [e["loc"] for e in errors] == [[*where, 1, "prompt_id"], [*where, 2, "model"], [*where, len(rows) - 1]]
    assert "second response" in errors[2]["msg"] and "row 5" in errors[2]["msg"]

    unknown = _refused(chain, campaign_body(chain, [{**rows[0], "tokens": 12}]))
    assert unknown[0]["loc"] == [*where, "tokens"]
    # nothing comparable: no prompt has a response from every model
    assert _refused(chain, campaign_body(chain, response_rows(models[:2])))[0]["loc"] == where


def test_the_models_must_be_one_series_and_its_reference(chain: PackageChain) -> None:
    rows = response_rows(models_of(chain))
    first = {"id": chain.series[0]["id"]}
    duplicated = {**campaign_body(chain, rows), "checkpoints": [first, {"id": chain.series[1]["id"]}, first]}
    assert [e["loc"] for e in _refused(chain, duplicated)] == [["body", "checkpoints", 2]]

    other_base = chain.ok(
        chain.trainer,
        "base-models",
        {"name": "other-base", "spec": {"files": chain.files("other"), "architecture": "llama", "license": "mit"}},
    )
    stranger = chain.ok(
        chain.trainer,
        "policy-checkpoints",
        {
            "name": "policy-b",
            "algorithm": "rloo",
            "reward_checkpoint": {"id": chain.reward["id"]},
            "reference_model": {"id": other_base["id"]},
            "spec": {"files": chain.files("policy-b"), "step": 10},
        },
    )
    mixed = {**campaign_body(chain, rows), "checkpoints": [first, {"id": stranger["id"]}]}
    [errors] = [_refused(chain, mixed)]
    assert [e["loc"] for e in errors] == [["body", "checkpoints", 1]] * 2
    assert "series 'policy-b'" in errors[0]["msg"] and "reference_model" in errors[1]["msg"]

    other_reference = {**campaign_body(chain, rows), "reference": {"id": other_base["id"]}}
    assert [e["loc"] for e in _refused(chain, other_reference)] == [["body", "checkpoints", n] for n in range(3)]
    listed = chain.trainer.get(chain.url(CAMPAIGNS), params={"name": "refused"}).json()
    assert listed["items"] == []  # nothing was stored by any refusal


def test_only_a_trainer_registers_a_campaign(chain: PackageChain) -> None:
    response = register(chain, campaign_body(chain, response_rows(models_of(chain))), api=chain.annotator)
    assert response.status_code == 403


@pytest.mark.parametrize(
    ("fmt", "media", "extension"),
    [
        ("jsonl", "application/x-ndjson", "jsonl"),
        ("label-studio", "application/json", "json"),
        ("argilla", "application/json", "json"),
    ],
)
def test_the_tasks_route_serves_blinded_exports(chain: PackageChain, fmt: str, media: str, extension: str) -> None:
    campaign = register(chain, campaign_body(chain, response_rows(models_of(chain)))).json()
    path = chain.url(f"{CAMPAIGNS}/{campaign['name']}/{campaign['version']}/tasks")
    viewer = chain.world.member(chain.project, "viewer")
    response = viewer.get(path, params={"format": fmt})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(media)
    filename = f"{campaign['name']}-v{campaign['version']}-{fmt}.{extension}"
    assert response.headers["content-disposition"] == f'attachment; filename="{filename}"'
    body = response.text
    for model in campaign["derived"]["models"]:
        assert model["id"] not in body and f"{model['name']}@" not in body
    for hidden in ('"step"', "left_model", "right_model", "comparison", '"source"', '"policy"', "tiny-base"):
        assert hidden not in body
    assert body.count("reply ") == 2 * campaign["derived"]["counts"]["tasks"]


def test_the_tasks_route_refuses_what_it_cannot_serve(chain: PackageChain) -> None:
    outsider = chain.world.principal()
    base = chain.url(f"{CAMPAIGNS}/policy-campaign/1/tasks")
    assert outsider.get(base).status_code == 404
    assert chain.trainer.get(chain.url(f"{CAMPAIGNS}/no-such-campaign/1/tasks")).json()["code"] == "not_found"
    assert chain.trainer.get(base, params={"format": "csv"}).json()["code"] == "validation_failed"
