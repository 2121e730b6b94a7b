"""What the page tests share: a browser-like client with its own cookie jar, signing in, a fully
registered and approved chain, runs with metrics and checkpoints, and a handoff package for its
deployment."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import update

from app.access.models import ApiToken
from app.core.db import utcnow
from app.core.security import hash_token
from app.runs import leases
from app.runs.models import Run
from app.runs.service import add_event, finish
from app.state import AppState
from tests.conftest import Api, World
from tests.factories import batch_body, criteria_body, item, prompt_set_body
from tests.packages.chain import PackageChain
from workers import outputs


def browser(world: World) -> TestClient:
    """A client of the same app with a cookie jar of its own, that does not follow redirects."""
    return TestClient(world.client.app, raise_server_exceptions=False, follow_redirects=False)


def csrf_of(client: TestClient) -> str:
    """Open the sign-in form, as a browser does first: it sets the CSRF cookie the form echoes."""
    form = client.get("/web/sign-in")
    found = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert found is not None, form.text
    return found.group(1)


def sign_in(client: TestClient, token: str, next_path: str = "/web/") -> Any:
    response = client.post("/web/sign-in", data={"token": token, "next": next_path, "csrf": csrf_of(client)})
    assert response.status_code == 303, response.text
    return response


def revoke_token(state: AppState, token: str) -> None:
    with state.sessions.write() as session:
        session.execute(update(ApiToken).where(ApiToken.token_hash == hash_token(token)).values(revoked_at=utcnow()))
        session.commit()


@dataclass
class Site:
    """An approved deployment at the end of a whole chain, a viewer, a run and the deployment's handoff
    package."""

    world: World
    chain: PackageChain
    viewer: Api
    deployment: dict[str, Any]
    run_id: str
    package_id: str

    @property
    def project(self) -> str:
        return self.chain.project


def approved_chain(world: World) -> tuple[PackageChain, dict[str, Any]]:
    """Everything a handoff package needs, up to an approved deployment (the package tests' chain)."""
    chain = PackageChain(world)
    return chain, chain.approved()


def queued_run(chain: PackageChain) -> str:
    body = {
        "kind": "reward_model",
        "inputs": {"dataset": {"id": chain.dataset["id"]}, "base_model": {"id": chain.base["id"]}},
        "params": {"max_steps": 3},
        "output_name": "rm-web",
    }
    response = chain.trainer.post(chain.url("runs"), json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def start_run(state: AppState, run_id: str) -> None:
    assert leases.claim(state, run_id, "web-test-worker", 600.0) is not None


def log_metrics(state: AppState, run_id: str, rows: list[dict[str, float]]) -> None:
    """What a worker streams: one metrics event per log record."""
    uow = state.unit_of_work(request_id="web-test")
    try:
        run = uow.session.get(Run, run_id)
        assert run is not None
        for row in rows:
            add_event(uow.session, run, "metrics", row)
        uow.commit()
    finally:
        uow.close()


def end_run(state: AppState, run_id: str, status: str = "succeeded") -> None:
    uow = state.unit_of_work(request_id="web-test")
    try:
        run = uow.session.get(Run, run_id)
        assert run is not None
        finish(uow.session, run, status, None)
        uow.commit()
    finally:
        uow.close()


def build_package(chain: PackageChain, deployment: dict[str, Any]) -> str:
    """The handoff package of an approved deployment, built by the server (POST .../handoff-packages)."""
    response = chain.build(deployment)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def policy_run(chain: PackageChain, output_name: str = "policy-web") -> str:
    """An rloo run queued through the API against the chain's dataset, base model and reward model."""
    body = {
        "kind": "rloo",
        "inputs": {
            "dataset": {"id": chain.dataset["id"]},
            "base_model": {"id": chain.base["id"]},
            "reward_checkpoint": {"id": chain.reward["id"]},
        },
        "params": {"max_steps": 3},
        "output_name": output_name,
    }
    response = chain.trainer.post(chain.url("runs"), json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def register_checkpoint(
    state: AppState, chain: PackageChain, run_id: str, step: int, metrics: dict[str, Any], folder: Path
) -> str:
    """What a worker does at a checkpoint: upload the folder and register it as the run's output."""
    folder.mkdir(parents=True)
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        (folder / name).write_bytes(f"{run_id}:{step}:{name}".encode() + os.urandom(8))
    with state.sessions.read() as session:
        run = session.get(Run, run_id)
        assert run is not None
        session.expunge(run)
    body = {
        "name": run.output_name,
        "algorithm": "rloo",
        "reference_model": {"id": chain.base["id"]},
        "reward_checkpoint": {"id": chain.reward["id"]},
        "spec": {
            "step": step,
            "kl_coefficient": 0.05,
            "hyperparameters": run.params,
            "run_id": run.id,
            "metrics": metrics,
        },
    }
    return outputs.register_output(
        state, run, "policy_checkpoint", body, outputs.upload_folder(state, folder), f"step-{step}"
    )


def criteria_project(world: World) -> tuple[str, Api, list[dict[str, Any]]]:
    """A project whose criteria went 1.0.0 -> 1.1.0 (a description: minor) -> 2.0.0 (re-ranked: major)."""
    project = world.project()
    reworded = [
        {"name": "accuracy", "description": "Facts are right and sourced.", "rank": 1},
        {"name": "helpfulness", "description": "Answers what was asked, completely.", "rank": 2},
    ]
    reranked = [{**reworded[0], "rank": 2}, {**reworded[1], "rank": 1}]
    bodies = [
        criteria_body("1.0.0"),
        criteria_body("1.1.0", dimensions=reworded),
        criteria_body("2.0.0", dimensions=reranked),
    ]
    versions = []
    for body in bodies:
        response = world.admin.post(f"/v1/projects/{project}/criteria", json=body)
        assert response.status_code == 201, response.text
        versions.append(dict(response.json()))
    return project, world.member(project, "viewer"), versions


def review_items() -> list[dict[str, Any]]:
    """30 pairs by four annotators in two sessions each; ann-4 always picks the response shown first and
    misses every gold item (every third pair carries one)."""
    rows = []
    for p in range(30):
        gold = ("a" if p % 2 else "b") if p % 3 == 0 else None
        for k, annotator in enumerate(("ann-1", "ann-2", "ann-3", "ann-4")):
            shown = "a" if (p // 2 + k) % 2 else "b"
            choice = gold or ("a" if p % 2 else "b")
            if annotator == "ann-4":
                choice = shown
                if gold is not None and choice == gold:
                    shown = choice = "b" if gold == "a" else "a"
            elif (p + k) % 7 == 0:
                choice = "tie"
            minute = 9 * 60 + (p % 15) * 3
            start = f"2026-11-{16 + p // 15:02d}T{minute // 60:02d}:{minute % 60:02d}:00Z"
            end = f"2026-11-{16 + p // 15:02d}T{minute // 60:02d}:{minute % 60 + 2:02d}:00Z"
            rows.append(
                item(
                    f"p{p}", f"q{p % 20}", annotator, choice, shown_first=shown, gold=gold,
                    session_id=f"day-{p // 15}", started_at=start, submitted_at=end,
                )
            )  # fmt: skip
    return rows


def batch_project(world: World) -> tuple[Api, dict[str, Any], dict[str, Any]]:
    """A viewer and two versions of a 120-item batch (`review_items`) in a project of their own: v1 with
    its items inline, v2 with the same items in an uploaded JSONL blob."""
    project = world.project()
    annotator = world.member(project, "annotator")
    items = review_items()
    jsonl = "".join(json.dumps(row) + "\n" for row in items).encode()
    digest = annotator.post("/v1/blobs", content=jsonl).json()["digest"]
    inline = batch_body(items)
    in_blob = batch_body([])
    del in_blob["spec"]["items"]
    in_blob["spec"]["items_blob"] = digest
    steps = [
        (world.admin, "policies", {"spec": {}}),
        (world.admin, "criteria", criteria_body()),
        (annotator, "prompt-sets", prompt_set_body()),
        (annotator, "annotation-batches", inline),
        (annotator, "annotation-batches", in_blob),
    ]
    registered = []
    for api, collection, body in steps:
        response = api.post(f"/v1/projects/{project}/{collection}", json=body)
        assert response.status_code == 201, response.text
        registered.append(dict(response.json()))
    return world.member(project, "viewer"), registered[-2], registered[-1]
