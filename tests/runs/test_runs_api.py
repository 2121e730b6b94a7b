"""Runs over the API: every rule is checked before anything is queued; the task is sent after the
commit, and a send that fails is left to the outbox; Idempotency-Key; cancellation; events; leases and the
reaper (no training here: tests/workers trains)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import threading
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import update

from app.core.db import utcnow
from app.main import create_app
from app.runs import leases
from app.runs import service as runs_service
from app.runs.dispatch import backoff, first_sends
from app.runs.models import Run
from app.runs.outbox import STUCK_AFTER, redispatch_due, waited
from app.state import AppState
from tests.conftest import RecordingDispatcher, World
from tests.decisions.test_model_chain import Chain


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
    assert first_sends.wait_idle(10)
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


class BrokerDown:
    """A dispatcher whose broker refuses every connection."""

    def send(self, run_id: str) -> None:
        raise ConnectionRefusedError(f"broker down; {run_id} not sent")


def _row(stack: AppState, run_id: str) -> Run:
    with stack.sessions.read() as session:
        run = session.get(Run, run_id)
        assert run is not None
        return run


def _make_due(stack: AppState, run_id: str) -> None:
    with stack.sessions.write() as session:
        session.execute(update(Run).where(Run.id == run_id).values(next_dispatch_at=utcnow() - timedelta(seconds=1)))
        session.commit()


def test_broker_down_still_queues_and_the_outbox_sends_later(
    chain: Chain, stack: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stack, "dispatcher", BrokerDown())
    response = _run(chain)
    assert response.status_code == 202, response.text
    run = response.json()
    assert chain.trainer.get(chain.url(f"runs/{run['id']}")).json()["status"] == "queued"
    first = _row(stack, run["id"])
    assert first.dispatch_attempts == 1 and first.next_dispatch_at is not None

    recording = RecordingDispatcher()
    assert run["id"] not in redispatch_due(stack, recording)  # not due before its backoff
    _make_due(stack, run["id"])
    assert redispatch_due(stack, BrokerDown()) == []  # still down: logged, due again later
    second = _row(stack, run["id"])
    assert second.dispatch_attempts == 2 and second.next_dispatch_at is not None
    assert second.next_dispatch_at > first.next_dispatch_at
    _make_due(stack, run["id"])
    assert run["id"] in redispatch_due(stack, recording)
    assert recording.sent.count(run["id"]) == 1

    assert leases.claim(stack, run["id"], "worker-a", lease_s=30) is not None
    _make_due(stack, run["id"])
    assert run["id"] not in redispatch_due(stack, recording)  # a claimed run is never sent again
    assert leases.claim(stack, run["id"], "worker-b", lease_s=30) is None  # a second delivery is a no-op


class LoopProbe:
    """Records, for each send, whether it ran on an event loop's thread (where a blocking send stalls every
    request the loop serves)."""

    def __init__(self) -> None:
        self.on_loop: list[bool] = []

    def send(self, run_id: str) -> None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            self.on_loop.append(False)
        else:
            self.on_loop.append(True)


def test_the_first_send_never_runs_on_the_event_loop(
    chain: Chain, stack: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = LoopProbe()
    monkeypatch.setattr(stack, "dispatcher", probe)
    assert _run(chain).status_code == 202
    assert first_sends.wait_idle(10)
    assert probe.on_loop == [False]


class HeldBroker:
    """A broker that does not answer until the test lets it; records whether it was let go in time."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.released: list[bool] = []

    def send(self, run_id: str) -> None:
        self.released.append(self.release.wait(timeout=10))


def test_a_send_that_hangs_does_not_hold_the_answer(
    chain: Chain, stack: AppState, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = HeldBroker()
    monkeypatch.setattr(stack, "dispatcher", broker)
    try:
        response = _run(chain)
    finally:
        broker.release.set()  # only once the POST answered: a send the answer waited on times out instead
    assert response.status_code == 202, response.text
    assert first_sends.wait_idle(15)
    assert broker.released == [True]


def test_a_run_no_worker_takes_is_sent_again_with_a_warning_and_counted(
    chain: Chain, stack: AppState, caplog: pytest.LogCaptureFixture
) -> None:
    run = _run(chain).json()
    attempts = next(n for n in range(1, 100) if waited(stack.settings, n) >= STUCK_AFTER)
    with stack.sessions.write() as session:
        session.execute(update(Run).where(Run.id == run["id"]).values(dispatch_attempts=attempts))
        session.commit()
    _make_due(stack, run["id"])
    with caplog.at_level(logging.WARNING, logger="rlhf_registry.outbox"):
        assert run["id"] in redispatch_due(stack, RecordingDispatcher())
    stuck = [r.getMessage() for r in caplog.records if run["id"] in r.getMessage()]
    assert len(stuck) == 1 and f"sent {attempts} times" in stuck[0]
    queued = REGISTRY.get_sample_value("rlhf_registry_runs_queued")
    assert queued is not None and queued >= 1
    with stack.sessions.write() as session:  # requeued, as the reaper does: sent once, not stuck
        session.execute(update(Run).where(Run.id == run["id"]).values(dispatch_attempts=1))
        session.commit()
    _make_due(stack, run["id"])
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rlhf_registry.outbox"):
        assert run["id"] in redispatch_due(stack, RecordingDispatcher())
    assert not [r for r in caplog.records if run["id"] in r.getMessage()]


def test_no_trace_is_shown_for_runs_that_failed_with_one(chain: Chain, stack: AppState) -> None:
    run = _run(chain).json()
    error = {"code": "trainer_failed", "detail": "CUDA out of memory", "trace": "Traceback (most recent call last):"}
    with stack.sessions.write() as session:
        row = session.get(Run, run["id"])
        assert row is not None
        runs_service.finish(session, row, "failed", error)
        runs_service.add_event(session, row, "log", {"message": "step 3", "trace": "Traceback (most recent call"})
        session.commit()
    shown = chain.trainer.get(chain.url(f"runs/{run['id']}")).json()
    assert shown["error"] == {"code": "trainer_failed", "detail": "CUDA out of memory"}
    events = chain.trainer.get(chain.url(f"runs/{run['id']}/events")).json()["items"]
    assert events[-2]["data"] == {
        "status": "failed",
        "error": {"code": "trainer_failed", "detail": "CUDA out of memory"},
    }
    assert events[-1]["data"] == {"message": "step 3"}
    listed = chain.trainer.get(chain.url("runs")).json()["items"]
    assert "Traceback" not in json.dumps(listed) and "Traceback" not in json.dumps(events)


def test_resends_back_off_exponentially_up_to_a_cap(stack: AppState) -> None:
    settings = stack.settings.model_copy(update={"dispatch_backoff_seconds": 2.0, "dispatch_backoff_max_seconds": 10.0})
    assert [backoff(settings, n).total_seconds() for n in range(1, 6)] == [2.0, 4.0, 8.0, 10.0, 10.0]


def test_idempotency_key_returns_the_first_run(chain: Chain, stack: AppState) -> None:
    dispatcher = stack.dispatcher
    assert isinstance(dispatcher, RecordingDispatcher)
    body = {
        "kind": "reward_model",
        "inputs": {"dataset": {"id": chain.dataset["id"]}, "base_model": {"id": chain.base["id"]}},
        "params": {"max_steps": 2, "seed": 1},
        "output_name": "rm-idem",
    }
    key = {"Idempotency-Key": f"retry-{chain.project}"}
    first = chain.trainer.post(chain.url("runs"), json=body, headers=key)
    assert first.status_code == 202, first.text
    assert first_sends.wait_idle(10)
    sent = len(dispatcher.sent)
    reordered = {"output_name": "rm-idem", "params": {"seed": 1, "max_steps": 2}, **body}
    again = chain.trainer.post(chain.url("runs"), json=reordered, headers=key)
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    assert first_sends.wait_idle(10)
    assert len(dispatcher.sent) == sent  # the retry queues nothing
    changed = chain.trainer.post(chain.url("runs"), json={**body, "output_name": "other"}, headers=key)
    assert changed.status_code == 422 and changed.json()["code"] == "validation_failed"
    assert changed.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    other_trainer = chain.world.member(chain.project, "trainer")
    theirs = other_trainer.post(chain.url("runs"), json=body, headers=key)
    assert theirs.status_code == 202 and theirs.json()["id"] != first.json()["id"]
    without_key = chain.trainer.post(chain.url("runs"), json=body)
    assert without_key.status_code == 202 and without_key.json()["id"] != first.json()["id"]
    bad_key = chain.trainer.post(chain.url("runs"), json=body, headers={"Idempotency-Key": "a b"})
    assert bad_key.status_code == 422 and bad_key.json()["code"] == "validation_failed"


def _base_model(chain: Chain, paths: list[str]) -> dict[str, Any]:
    files = []
    for path in paths:
        data = f"{chain.project}:{path}".encode()
        blob = chain.trainer.post("/v1/blobs", content=data).json()
        files.append({"path": path, "digest": blob["digest"], "size": len(data)})
    response = chain.trainer.post(chain.url("base-models"), json={"name": "partial", "spec": {"files": files}})
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.mark.parametrize(
    ("paths", "lacking"),
    [
        (["config.json", "model.safetensors"], "tokenizer"),
        (["tokenizer.json", "model.safetensors"], "config.json"),
        (["config.json", "tokenizer.json", "weights/model.safetensors"], "weights"),
        (["config.json", "tokenizer_config.json", "model.safetensors"], "tokenizer"),
    ],
)
def test_base_model_that_is_no_usable_folder_is_refused(chain: Chain, paths: list[str], lacking: str) -> None:
    base = _base_model(chain, paths)
    response = _run(chain, inputs={"dataset": {"id": chain.dataset["id"]}, "base_model": {"id": base["id"]}})
    assert response.status_code == 422 and response.json()["code"] == "validation_failed"
    assert lacking in response.json()["detail"]
    assert response.json()["errors"][0]["loc"] == ["body", "inputs", "base_model"]


def test_usable_folder_layouts_are_accepted(chain: Chain) -> None:
    base = _base_model(chain, ["config.json", "tokenizer_config.json", "vocab.json", "pytorch_model.bin"])
    response = _run(chain, inputs={"dataset": {"id": chain.dataset["id"]}, "base_model": {"id": base["id"]}})
    assert response.status_code == 202, response.text


def test_external_base_model_cannot_enter_a_run(chain: Chain) -> None:
    external = chain.trainer.post(
        chain.url("base-models"),
        json={"name": "ext", "spec": {"external": {"hub_id": "org/model", "revision": "b" * 40}}},
    ).json()
    response = _run(chain, inputs={"dataset": {"id": chain.dataset["id"]}, "base_model": {"id": external["id"]}})
    assert response.status_code == 422 and response.json()["code"] == "validation_failed"


@pytest.mark.parametrize(
    "params",
    [
        {"warmup_steps": "ten"},  # TRL's type is a number
        {"lr_scheduler_type": "zigzag"},  # not one of TRL's schedulers
        {"max_steps": 2, "per_device_batch_size": 0},
        {"output_dir": "/tmp/elsewhere"},  # the worker's
        {"max_length": 64, "max_completion_length": 64},
    ],
)
def test_param_types_and_ranges_are_checked_before_queueing(chain: Chain, params: dict[str, Any]) -> None:
    response = _run(chain, params=params)
    assert response.status_code == 422 and response.json()["code"] == "validation_failed"
    assert response.json()["errors"][0]["loc"][:2] == ["body", "params"]


def test_readyz_reports_an_unreachable_broker_and_stays_ready(stack: AppState) -> None:
    down = stack.settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"})
    with TestClient(create_app(state=dataclasses.replace(stack, settings=down))) as client:
        response = client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"]["broker"] == "unreachable"
    with TestClient(create_app(state=stack)) as client:
        assert client.get("/readyz").json()["checks"]["broker"] == "ok"
