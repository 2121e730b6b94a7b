"""End to end on CPU: PandaLM batch -> dataset -> reward run -> DPO run and RLOO run, executed by a real
`rlhf-registry worker` process, on the embedded broker (SQLite file) and on Redis; outputs registered
with lineage back to the criteria. And the kill-a-worker test."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest
import redis

from app.state import AppState
from tests.support.services import missing_service
from tests.workers.e2e_support import Registry, build_registry, celery_worker, registry_app, state_with_broker

pytest.importorskip("trl", reason="the train extra is not installed")

SMALL = {"max_steps": 4, "seed": 3, "per_device_batch_size": 4, "max_length": 96, "learning_rate": 1e-3}


def _broker_url(kind: str, tmp: Path) -> str:
    if kind == "embedded":
        return f"sqla+sqlite:///{tmp / 'broker.db'}"
    try:
        redis.Redis(host="127.0.0.1", port=6379, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError as exc:
        missing_service(f"Redis is not reachable on 127.0.0.1:6379: {exc}")
    return f"redis://127.0.0.1:6379/{9 + hash(str(tmp)) % 6}"


def _trace_kinds(registry: Registry, record_id: str) -> set[str]:
    lineage = registry.trainer.get(f"/v1/records/{record_id}/lineage").json()
    return {n["kind"] for n in lineage["nodes"]}


@pytest.mark.parametrize(("broker", "stack_fixture"), [("embedded", "sqlite_stack"), ("redis", "postgres_stack")])
def test_reward_dpo_rloo_runs_register_checkpoints_with_lineage(
    request: pytest.FixtureRequest, tmp_path: Path, broker: str, stack_fixture: str
) -> None:
    """Embedded broker on the embedded stack (SQLite, blob folder); Redis on the production stack."""
    stack: AppState = request.getfixturevalue(stack_fixture)
    state = state_with_broker(stack, _broker_url(broker, tmp_path))
    with registry_app(state) as client, celery_worker(state, tmp_path / "worker.log"):
        registry = build_registry(client, state, tmp_path)
        inputs = {"dataset": {"id": registry.dataset["id"]}, "base_model": {"id": registry.base["id"]}}
        reward_run = registry.start("reward_model", inputs, SMALL, "rm")
        done = registry.wait(reward_run["id"], ("succeeded", "failed"))
        assert done["status"] == "succeeded", (done, (tmp_path / "worker.log").read_text()[-3000:])
        [reward_id] = done["outputs"]
        reward = registry.trainer.get(f"/v1/records/{reward_id}").json()
        assert reward["kind"] == "reward_checkpoint" and reward["spec"]["run_id"] == reward_run["id"]
        metrics = reward["spec"]["metrics"]
        assert 0.0 <= metrics["validation_accuracy"] <= 1.0 and "reward_length_spearman" in metrics
        assert "library_versions" in reward["spec"]["metadata"]
        assert {"criteria", "annotation_batch", "preference_dataset", "base_model"} <= _trace_kinds(registry, reward_id)
        events = registry.trainer.get(registry.url(f"runs/{reward_run['id']}/events")).json()["items"]
        assert any(e["type"] == "metrics" for e in events)

        dpo = registry.start("dpo", inputs, {**SMALL, "beta": 0.2, "checkpoint_every": 2}, "dpo-policy")
        rloo = registry.start(
            "rloo",
            {**inputs, "reward_checkpoint": {"id": reward_id}},
            {**SMALL, "kl_coefficient": 0.05, "checkpoint_every": 2, "num_generations": 2, "max_completion_length": 8},
            "rloo-policy",
        )
        for run in (dpo, rloo):
            finished = registry.wait(run["id"], ("succeeded", "failed"))
            assert finished["status"] == "succeeded", (finished, (tmp_path / "worker.log").read_text()[-3000:])
            checkpoints = [registry.trainer.get(f"/v1/records/{i}").json() for i in finished["outputs"]]
            steps = sorted(c["spec"]["step"] for c in checkpoints)
            assert steps[0] == 2 and len(checkpoints) >= 2
            for checkpoint in checkpoints:
                assert checkpoint["kind"] == "policy_checkpoint" and checkpoint["spec"]["run_id"] == run["id"]
                assert "criteria" in _trace_kinds(registry, checkpoint["id"])
        rloo_checkpoint = registry.trainer.get(
            f"/v1/records/{registry.wait(rloo['id'], ('succeeded',))['outputs'][0]}"
        ).json()
        assert rloo_checkpoint["derived"]["kl_coefficient"] == 0.05
        assert "reward_checkpoint" in {p["role"] for p in rloo_checkpoint["parents"]}


def test_killed_worker_leaves_the_run_failed_with_worker_lost(sqlite_stack: AppState, tmp_path: Path) -> None:
    state = state_with_broker(sqlite_stack, f"sqla+sqlite:///{tmp_path / 'broker.db'}")
    with registry_app(state) as client:
        registry = build_registry(client, state, tmp_path, pairs=60)
        inputs = {"dataset": {"id": registry.dataset["id"]}, "base_model": {"id": registry.base["id"]}}
        with celery_worker(state, tmp_path / "worker.log") as worker:
            run = registry.start(
                "reward_model", inputs, {**SMALL, "max_steps": 100_000}, f"long-{uuid.uuid4().hex[:6]}"
            )
            registry.wait(run["id"], ("running",), timeout_s=120)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                events = registry.trainer.get(registry.url(f"runs/{run['id']}/events")).json()["items"]
                if any(e["type"] == "metrics" for e in events):
                    break
                time.sleep(0.5)
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
        failed = registry.wait(run["id"], ("failed", "succeeded"), timeout_s=60)
    assert failed["status"] == "failed" and failed["error"]["code"] == "worker_lost"
    assert failed["outputs"] == []
