"""What the page tests share: a browser-like client with its own cookie jar, signing in, a fully
registered and approved chain, a run with metrics, and a handoff package for its deployment."""

from __future__ import annotations

import re
from dataclasses import dataclass
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
from tests.packages.chain import PackageChain


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
