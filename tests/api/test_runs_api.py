"""Runs over the API: every rule is checked before anything is queued; the task is sent after the
commit; cancellation; events; leases and the reaper (no training here: tests/workers trains)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from app.core.db import utcnow
from app.runs import leases
from app.runs.models import Run
from app.state import AppState
from tests.api.test_model_chain import Chain
from tests.conftest import RecordingDispatcher, World


@pytest.fixture
def chain(world: World) -> Chain:
    return Chain(world)


def _run(chain: Chain, **over: Any) -> Any:
    body = {
        "kind": "reward_model",
        "inputs": {"dataset": {"id": chain.dataset["id"]}, "base_model": {"id": chain.base["id"]}},
        "params": {"max_steps": 2, "seed": 1},
        "output_name": "rm-run",
        **over,
    }
    return chain.trainer.post(chain.url("runs"), json=body)


def test_run_is_recorded_queued_and_sent_after_commit(chain: Chain, stack: AppState) -> None:
    dispatcher = stack.dispatcher
    assert isinstance(dispatcher, RecordingDispatcher)
    response = _run(chain)
    assert response.status_code == 202, response.text
    run = response.json()
    assert run["status"] == "queued" and run["inputs"]["dataset"]["digest"] == chain.dataset["digest"]
    assert dispatcher.sent[-1] == run["id"]
    assert chain.trainer.get(chain.url(f"runs/{run['id']}")).json()["status"] == "queued"
    events = chain.trainer.get(chain.url(f"runs/{run['id']}/events")).json()["items"]
    assert [(e["seq"], e["type"], e["data"]["status"]) for e in events] == [(1, "status", "queued")]
    assert run["id"] in [r["id"] for r in chain.trainer.get(chain.url("runs")).json()["items"]]


def test_refused_run_sends_nothing(chain: Chain, stack: AppState) -> None:
    dispatcher = stack.dispatcher
    assert isinstance(dispatcher, RecordingDispatcher)
    before = len(dispatcher.sent)
    missing = _run(chain, inputs={"dataset": {"id": chain.dataset["id"]}})
    assert missing.status_code == 422 and missing.json()["code"] == "missing_reference"
    unknown = _run(chain, kind="sft")
    assert unknown.json()["code"] == "validation_failed"
    bad_param = _run(chain, params={"max_steps": 2, "no_such_knob": 3})
    assert bad_param.status_code == 422 and bad_param.json()["code"] == "validation_failed"
    wrong_kind = _run(chain, inputs={"dataset": {"id": chain.base["id"]}, "base_model": {"id": chain.base["id"]}})
    assert wrong_kind.json()["code"] == "missing_reference"
    viewer = chain.world.member(chain.project, "viewer")
    assert viewer.post(chain.url("runs"), json={"kind": "reward_model"}).json()["code"] == "forbidden"
    assert len(dispatcher.sent) == before


def test_quarantined_inputs_cannot_enter_a_run(chain: Chain) -> None:
    chain.approver.post(f"/v1/records/{chain.batch['id']}/revoke", json={"reason": "fabricated"})
    response = _run(chain)
    assert response.status_code == 409 and response.json()["code"] == "quarantined"


def test_ppo_is_refused_naming_rloo_when_trl_lacks_it(chain: Chain) -> None:
    pytest.importorskip("trl")
    import importlib.util

    if importlib.util.find_spec("trl.experimental.ppo") is not None:
        pytest.skip("this TRL still ships PPO")
    response = _run(
        chain,
        kind="ppo",
        inputs={
            "dataset": {"id": chain.dataset["id"]},
            "base_model": {"id": chain.base["id"]},
            "reward_checkpoint": {"id": chain.reward["id"]},
        },
    )
    assert response.status_code == 422 and "rloo" in response.json()["detail"]


def test_cancel(chain: Chain) -> None:
    run = _run(chain).json()
    cancelled = chain.trainer.post(chain.url(f"runs/{run['id']}/cancel"))
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    again = chain.trainer.post(chain.url(f"runs/{run['id']}/cancel"))
    assert again.status_code == 409 and again.json()["code"] == "run_not_cancellable"


def test_expired_lease_fails_the_run_with_worker_lost(chain: Chain, stack: AppState) -> None:
    run = _run(chain).json()
    assert leases.claim(stack, run["id"], "worker-a", lease_s=30) is not None
    assert leases.claim(stack, run["id"], "worker-b", lease_s=30) is None  # never executed twice
    assert leases.renew(stack, run["id"], "worker-a", 30) == (True, False)
    _expire(stack, run["id"])
    assert run["id"] in leases.reap_expired(stack, stack.dispatcher)
    after = chain.trainer.get(chain.url(f"runs/{run['id']}")).json()
    assert after["status"] == "failed" and after["error"]["code"] == "worker_lost"
    assert leases.renew(stack, run["id"], "worker-a", 30) == (False, False)  # the lost worker learns it


def test_expired_lease_is_retried_when_attempts_remain(chain: Chain, stack: AppState) -> None:
    run = _run(chain).json()
    with stack.sessions.write() as session:
        session.execute(update(Run).where(Run.id == run["id"]).values(max_attempts=2))
        session.commit()
    leases.claim(stack, run["id"], "worker-a", lease_s=30)
    _expire(stack, run["id"])
    dispatcher = stack.dispatcher
    assert isinstance(dispatcher, RecordingDispatcher)
    leases.reap_expired(stack, dispatcher)
    assert dispatcher.sent[-1] == run["id"]
    assert chain.trainer.get(chain.url(f"runs/{run['id']}")).json()["status"] == "queued"
    claimed = leases.claim(stack, run["id"], "worker-b", lease_s=30)
    assert claimed is not None and claimed.attempt == 2


def _expire(stack: AppState, run_id: str) -> None:
    with stack.sessions.write() as session:
        session.execute(update(Run).where(Run.id == run_id).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
