"""External runs over the API: created running (never sent to a worker) with a token shown once, refused
without a builder or a base model, and a token that expires and dies with the run (tests/client trains)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from app.core.db import utcnow
from app.runs.models import Run
from app.state import AppState
from tests.conftest import RecordingDispatcher, World
from tests.decisions.test_model_chain import Chain

BUILDER = {"id": "https://ci.example/jobs/train-42"}


@pytest.fixture
def chain(world: World) -> Chain:
    return Chain(world)


def _external(chain: Chain, **over: Any) -> Any:
    body = {"kind": "external", "inputs": {"base_model": {"id": chain.base["id"]}}, "builder": BUILDER, **over}
    return chain.trainer.post(chain.url("runs"), json=body)


def test_an_external_run_is_running_at_once_and_never_sent(chain: Chain, stack: AppState) -> None:
    dispatcher = stack.dispatcher
    assert isinstance(dispatcher, RecordingDispatcher)
    before = len(dispatcher.sent)
    response = _external(chain, inputs={"base_model": {"id": chain.base["id"]}, "dataset": {"id": chain.dataset["id"]}})
    assert response.status_code == 201, response.text
    run = response.json()
    assert run["status"] == "running" and run["token"].startswith("rlrun_") and run["token_expires_at"]
    assert run["params"] == {"builder": BUILDER}
    assert set(run["inputs"]) == {"base_model", "dataset"}
    shown = chain.trainer.get(chain.url(f"runs/{run['id']}")).json()
    assert shown["token"] is None and shown["status"] == "running"
    assert len(dispatcher.sent) == before


def test_refused_bodies(chain: Chain) -> None:
    no_builder = _external(chain, builder=None)
    assert no_builder.status_code == 422 and no_builder.json()["errors"][0]["loc"] == ["body", "builder", "id"]
    no_base = _external(chain, inputs={"dataset": {"id": chain.dataset["id"]}})
    assert no_base.status_code == 422 and no_base.json()["code"] == "validation_failed"
    unknown = _external(chain, inputs={"base_model": {"id": chain.base["id"]}, "reward": {"id": chain.base["id"]}})
    assert unknown.json()["code"] == "validation_failed"
    wrong_kind = _external(chain, inputs={"base_model": {"id": chain.dataset["id"]}})
    assert wrong_kind.json()["code"] == "missing_reference"
    viewer = chain.world.member(chain.project, "viewer")
    refused = viewer.post(chain.url("runs"), json={"kind": "external", "builder": BUILDER})
    assert refused.json()["code"] == "forbidden"


def test_the_token_expires_and_checkpoints_take_the_runs_inputs(chain: Chain, stack: AppState) -> None:
    run = _external(chain).json()
    headers = {"Authorization": f"Bearer {run['token']}"}
    path = chain.url(f"runs/{run['id']}")
    inputs = chain.world.client.get(f"{path}/inputs", headers=headers)
    assert inputs.status_code == 200 and inputs.json()["inputs"]["base_model"]["files"]
    named = chain.world.client.post(
        f"{path}/checkpoints",
        headers=headers,
        json={"kind": "policy_checkpoint", "algorithm": "dpo", "reference_model": {"id": chain.base["id"]}},
    )
    assert named.status_code == 422 and named.json()["errors"][0]["loc"] == ["body", "reference_model"]
    with stack.sessions.write() as session:
        session.execute(update(Run).where(Run.id == run["id"]).values(token_expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    expired = chain.world.client.post(f"{path}/events", headers=headers, json={"type": "log", "data": {}})
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
