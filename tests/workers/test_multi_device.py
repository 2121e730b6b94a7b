"""Runs with `params.devices: 2`, executed by a real `rlhf-registry worker` process: the worker launches
two training processes (DDP over gloo on this CPU, the code path of GPUs), registers what the first one
reports, checks that both end with the same weights, and kills every process of the group on cancel."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from app.state import AppState
from tests.conftest import World
from tests.decisions.test_model_chain import Chain
from tests.workers.e2e_support import Registry, build_registry, celery_worker, registry_app, state_with_broker
from workers.launch import Channel, LaunchTimedOut, train_on_devices
from workers.trainers.ranked import send
from workers.trainers.spec import TrainJob

pytest.importorskip("trl", reason="the train extra is not installed")

PER_DEVICE = 2
TWO = {"max_steps": 3, "seed": 3, "per_device_batch_size": PER_DEVICE, "max_length": 96, "learning_rate": 1e-3}


def test_devices_outside_one_to_the_maximum_are_refused_where_they_are(world: World) -> None:
    chain = Chain(world)
    inputs = {"dataset": {"id": chain.dataset["id"]}, "base_model": {"id": chain.base["id"]}}
    most = world.state.settings.run_max_devices
    for value in (0, -1, 1.5, True, "2", most + 1):
        body = {"kind": "reward_model", "inputs": inputs, "params": {"max_steps": 2, "devices": value}}
        response = chain.trainer.post(chain.url("runs"), json=body)
        assert response.status_code == 422, (value, response.text)
        problem = response.json()
        assert problem["code"] == "validation_failed" and problem["errors"][0]["loc"] == ["body", "params", "devices"]
    assert problem["setting"] == "RLHF_REGISTRY_RUN_MAX_DEVICES"
    scored = {"kind": "score", "inputs": {"reward_checkpoint": {"id": chain.reward["id"]}}, "params": {"devices": 2}}
    response = chain.trainer.post(chain.url("runs"), json=scored)
    assert response.status_code == 422 and response.json()["errors"][0]["loc"] == ["body", "params", "devices"]
    body = {"kind": "reward_model", "inputs": inputs, "params": {"max_steps": 2, "devices": most}}
    response = chain.trainer.post(chain.url("runs"), json=body)
    assert response.status_code == 202, response.text
    assert response.json()["params"]["devices"] == most


def _events(registry: Registry, run_id: str) -> list[dict[str, Any]]:
    return list(registry.trainer.get(registry.url(f"runs/{run_id}/events?limit=500")).json()["items"])


def _log_data(events: list[dict[str, Any]], key: str) -> Any:
    return next(e["data"][key] for e in events if e["type"] == "log" and key in e["data"])


def _check_both_trained(registry: Registry, run_id: str, steps: int) -> list[dict[str, Any]]:
    """Both processes trained every step and ended with the same weights; the step metrics count the
    examples of both (the global batch)."""
    events = _events(registry, run_id)
    ranks = _log_data(events, "ranks")
    assert [r["rank"] for r in ranks] == [0, 1] and all(r["step"] == steps for r in ranks), ranks
    assert ranks[0]["weights"] == ranks[1]["weights"] and ranks[0]["weights"].startswith("sha256:")
    assert _log_data(events, "devices") == 2
    training = [e["data"] for e in events if e["type"] == "metrics" and "loss" in e["data"]]
    assert [m["step"] for m in training] == list(range(1, steps + 1))
    assert all(m["samples"] == m["step"] * 2 * PER_DEVICE for m in training), training
    return events


def test_reward_and_dpo_runs_train_on_two_processes(sqlite_stack: AppState, tmp_path: Path) -> None:
    state = state_with_broker(sqlite_stack, f"sqla+sqlite:///{tmp_path / 'broker.db'}")
    log = tmp_path / "worker.log"
    with registry_app(state) as client, celery_worker(state, log):
        registry = build_registry(client, state, tmp_path, pairs=40)
        inputs = {"dataset": {"id": registry.dataset["id"]}, "base_model": {"id": registry.base["id"]}}

        reward_run = registry.start("reward_model", inputs, {**TWO, "devices": 2}, "rm-two")
        done = registry.wait(reward_run["id"], ("succeeded", "failed", "cancelled"))
        assert done["status"] == "succeeded", (done, log.read_text()[-3000:])
        _check_both_trained(registry, reward_run["id"], 3)
        [reward_id] = done["outputs"]
        reward = registry.trainer.get(f"/v1/records/{reward_id}").json()
        assert reward["spec"]["hyperparameters"]["devices"] == 2
        assert 0.0 <= reward["spec"]["metrics"]["validation_accuracy"] <= 1.0

        params = {**TWO, "devices": 2, "beta": 0.2, "checkpoint_every": 2, "max_eval_prompts": 4}
        dpo_run = registry.start("dpo", inputs, params, "dpo-two")
        done = registry.wait(dpo_run["id"], ("succeeded", "failed", "cancelled"))
        assert done["status"] == "succeeded", (done, log.read_text()[-3000:])
        _check_both_trained(registry, dpo_run["id"], 3)
        checkpoints = [registry.trainer.get(f"/v1/records/{i}").json() for i in done["outputs"]]
        assert sorted(c["spec"]["step"] for c in checkpoints) == [2, 3]
        assert all(c["spec"]["run_id"] == dpo_run["id"] for c in checkpoints)


def test_cancelling_a_run_on_two_processes_kills_every_process(sqlite_stack: AppState, tmp_path: Path) -> None:
    state = state_with_broker(sqlite_stack, f"sqla+sqlite:///{tmp_path / 'broker.db'}")
    log = tmp_path / "worker.log"
    with registry_app(state) as client, celery_worker(state, log):
        registry = build_registry(client, state, tmp_path, pairs=40)
        inputs = {"dataset": {"id": registry.dataset["id"]}, "base_model": {"id": registry.base["id"]}}
        run = registry.start("reward_model", inputs, {**TWO, "max_steps": 100_000, "devices": 2}, "rm-cancelled")
        deadline = time.monotonic() + 240
        while not any(e["type"] == "metrics" for e in _events(registry, run["id"])):
            now = registry.trainer.get(registry.url(f"runs/{run['id']}")).json()
            assert now["status"] in ("queued", "running"), (now, log.read_text()[-3000:])
            assert time.monotonic() < deadline, (_events(registry, run["id"]), log.read_text()[-3000:])
            time.sleep(0.5)
        group = _log_data(_events(registry, run["id"]), "process_group")
        os.killpg(group, 0)  # the training processes run
        response = registry.trainer.post(registry.url(f"runs/{run['id']}/cancel"))
        assert response.status_code == 200, response.text
        done = registry.wait(run["id"], ("succeeded", "failed", "cancelled"), timeout_s=60)
        assert done["status"] == "cancelled" and done["outputs"] == [], done
        # the worker ends the run once the group is gone
        with pytest.raises(ProcessLookupError):
            os.killpg(group, 0)


def test_a_launch_past_its_timeout_is_killed_group_and_all(tmp_path: Path) -> None:
    launched: list[dict[str, Any]] = []
    job = TrainJob(kind="reward_model", params={"max_steps": 2, "devices": 2}, output_dir=tmp_path / "output")
    with pytest.raises(LaunchTimedOut) as raised:
        train_on_devices(job, 2, tmp_path / "launch", timeout_s=1.0, on_log=launched.append)
    assert raised.value.code == "run_timed_out" and "RLHF_REGISTRY_RUN_LAUNCH_TIMEOUT_SECONDS" in raised.value.detail
    with pytest.raises(ProcessLookupError):
        os.killpg(launched[0]["process_group"], 0)


def test_the_channel_hands_over_whole_lines_only(tmp_path: Path) -> None:
    path = tmp_path / "channel.jsonl"
    send(path, {"type": "metrics", "step": 1})
    with path.open("a", encoding="utf-8") as fh:
        fh.write('{"type": "metr')
    channel = Channel(path)
    assert channel.new_events() == [{"type": "metrics", "step": 1}]
    with path.open("a", encoding="utf-8") as fh:
        fh.write('ics", "step": 2}\n')
    assert channel.new_events() == [{"type": "metrics", "step": 2}]
    assert channel.new_events() == []
