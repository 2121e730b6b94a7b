"""The broker (Redis, without persistence) stopped and started: run submissions answer 202 while it is
down, a retried submission with the same Idempotency-Key returns the first run, and each run reaches a
final state exactly once after the broker is back, though the restarted broker lost every message."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from app.state import AppState
from tests.conftest import World
from tests.decisions.test_model_chain import Chain
from tests.faults.load import Clients, assert_audit_verifies
from tests.support.topology import Topology

FINAL = ("succeeded", "failed", "cancelled")


@pytest.fixture
def chain(topo: Topology) -> Iterator[Chain]:
    """The records a training run takes (a preference dataset and a base model), over replica 0."""
    state = AppState.build(topo.settings())
    with httpx.Client(base_url=topo.urls[0], timeout=30) as http:
        yield Chain(World(state, http))  # type: ignore[arg-type]  # World takes any httpx client
    state.sessions.engine.dispose()


def run_body(chain: Chain) -> dict[str, Any]:
    return {
        "kind": "reward_model",
        "inputs": {"dataset": {"id": chain.dataset["id"]}, "base_model": {"id": chain.base["id"]}},
        "params": {"max_steps": 1, "seed": 1},
        "output_name": "broker-outage",
    }


def wait_final(clients: Clients, project: str, run_id: str, *, timeout_s: float = 150) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        got = clients.call(1, "GET", f"/v1/projects/{project}/runs/{run_id}")
        if got.ok and got.body["status"] in FINAL:
            return dict(got.body)
        assert time.monotonic() < deadline, f"run {run_id} not final within {timeout_s:.0f} s: {got}"
        time.sleep(0.5)


def test_broker_outage_accepts_runs_and_executes_each_once(topo: Topology, clients: Clients, chain: Chain) -> None:
    trainer = {"Authorization": f"Bearer {chain.trainer.token}"}
    runs_path = f"/v1/projects/{chain.project}/runs"
    topo.stop("redis")
    submitted = []
    for replica in (0, 1):
        headers = {**trainer, "Idempotency-Key": f"outage-{replica}"}
        answer = clients.call(replica, "POST", runs_path, json=run_body(chain), headers=headers)
        assert answer.status == 202 and answer.body["status"] == "queued", answer
        submitted.append(answer.body["id"])
    retried = clients.call(
        1, "POST", runs_path, json=run_body(chain), headers={**trainer, "Idempotency-Key": "outage-0"}
    )
    assert retried.status == 200 and retried.body["id"] == submitted[0], retried
    ready = clients.call(0, "GET", "/readyz")
    assert ready.body["checks"]["broker"] != "ok", ready
    topo.start("redis")

    for run_id in submitted:
        run = wait_final(clients, chain.project, run_id)
        assert run["attempt"] == 1, run
        assert clients.call(0, "GET", f"{runs_path}/{run_id}").body == run
        events = clients.call(0, "GET", f"{runs_path}/{run_id}/events", headers=trainer)
        assert events.ok, events
        statuses = [e["data"]["status"] for e in events.body["items"] if e["type"] == "status"]
        assert statuses == ["queued", "running", run["status"]], statuses
    listed = clients.call(0, "GET", runs_path, headers=trainer)
    assert sorted(r["id"] for r in listed.body["items"]) == sorted(submitted)
    assert_audit_verifies(clients)
