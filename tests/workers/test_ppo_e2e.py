"""PPO end to end: a reward model trained by a main worker (the `runs` queue), then a `ppo` run against it sent
by the API to the `ppo` queue and trained by a real worker of the PPO environment (`.venv-ppo`, TRL 1.12.0),
with its checkpoint series registered with lineage. And the API's refusal while no PPO worker is configured."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from app.core.errors import ValidationFailed
from app.runs.dispatch import PPO_QUEUE, send_quietly
from app.runs.queue import QUEUE
from app.runs.service import validate_request
from app.state import AppState
from tests.support.services import missing_service
from tests.workers.e2e_support import (
    Registry,
    build_registry,
    celery_worker,
    registry_app,
    state_with_broker,
    worker_env,
)

PPO_CLI = Path(__file__).resolve().parents[2] / ".venv-ppo" / "bin" / "rlhf-registry"
PARAMS = {
    "max_steps": 3,
    "seed": 3,
    "per_device_batch_size": 4,
    "max_length": 96,
    "learning_rate": 1e-3,
    "kl_coefficient": 0.05,
    "checkpoint_every": 2,
    "max_completion_length": 8,
    "max_eval_prompts": 4,
}


REWARD_PARAMS = {"max_steps": 2, "seed": 3, "per_device_batch_size": 4, "max_length": 96, "learning_rate": 1e-3}


class QueueRecorder:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def send(self, run_id: str, queue: str = QUEUE) -> None:
        self.sent.append((run_id, queue))


def test_ppo_is_refused_naming_the_setting_while_no_ppo_worker_is_configured() -> None:
    # refused before the inputs are read: no database is touched
    with pytest.raises(ValidationFailed) as refused:
        validate_request(None, "p", {"kind": "ppo", "inputs": {}}, ppo_workers=False)  # type: ignore[arg-type]
    assert refused.value.code == "validation_failed"
    assert "RLHF_REGISTRY_PPO_WORKERS" in refused.value.detail and "rloo" in refused.value.detail
    assert refused.value.errors == [
        {"loc": ["body", "kind"], "msg": "no ppo worker configured: set RLHF_REGISTRY_PPO_WORKERS=1"}
    ]


def test_ppo_runs_go_to_the_ppo_queue_and_others_to_runs() -> None:
    recorder = QueueRecorder()
    assert send_quietly(recorder, "a", PPO_QUEUE) and send_quietly(recorder, "b")
    assert recorder.sent == [("a", "ppo"), ("b", "runs")]


@contextmanager
def ppo_worker(state: AppState, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`rlhf-registry worker --queues ppo` of the PPO environment, in its own process group, killed at the end."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(PPO_CLI), "worker", "--queues", PPO_QUEUE],
            env=worker_env(state),
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


def _reward_checkpoint(registry: Registry, tmp: Path) -> dict[str, Any]:
    """A reward model trained by the main worker (the `runs` queue) on the base model, so on its tokenizer."""
    inputs = {"dataset": {"id": registry.dataset["id"]}, "base_model": {"id": registry.base["id"]}}
    run = registry.start("reward_model", inputs, REWARD_PARAMS, "rm")
    done = registry.wait(run["id"], ("succeeded", "failed"))
    assert done["status"] == "succeeded", (done, _logs(tmp))
    [reward_id] = done["outputs"]
    reward = registry.trainer.get(f"/v1/records/{reward_id}").json()
    assert reward["spec"]["metadata"]["library_versions"]["trl"] != "1.12.0"  # the main environment's TRL
    return dict(reward)


def _logs(tmp: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(tmp.glob("*.log")))


def test_a_ppo_run_trains_in_the_ppo_environment_and_registers_its_series(
    sqlite_stack: AppState, tmp_path: Path
) -> None:
    pytest.importorskip("transformers", reason="the train extra is not installed")
    if not PPO_CLI.exists():
        missing_service(f"the PPO worker environment is not built ({PPO_CLI}): run `make test` or `make worker-ppo`")
    state = state_with_broker(sqlite_stack, f"sqla+sqlite:///{tmp_path / 'broker.db'}", ppo_workers=True)
    with (
        registry_app(state) as client,
        celery_worker(state, tmp_path / "worker.log"),
        ppo_worker(state, tmp_path / "ppo-worker.log"),
    ):
        registry = build_registry(client, state, tmp_path, pairs=40)
        reward = _reward_checkpoint(registry, tmp_path)
        inputs = {
            "dataset": {"id": registry.dataset["id"]},
            "base_model": {"id": registry.base["id"]},
            "reward_checkpoint": {"id": reward["id"]},
        }
        run = registry.start("ppo", inputs, PARAMS, "ppo-policy")
        finished = registry.wait(run["id"], ("succeeded", "failed", "cancelled"))
        assert finished["status"] == "succeeded", (finished, _logs(tmp_path))

        checkpoints = sorted(
            (registry.trainer.get(f"/v1/records/{i}").json() for i in finished["outputs"]),
            key=lambda c: c["spec"]["step"],
        )
        assert [c["spec"]["step"] for c in checkpoints] == [2, 3]  # the series, then the final model
        for checkpoint in checkpoints:
            assert checkpoint["kind"] == "policy_checkpoint" and checkpoint["spec"]["algorithm"] == "ppo"
            assert checkpoint["spec"]["run_id"] == run["id"] and checkpoint["spec"]["kl_coefficient"] == 0.05
            # trained by the PPO environment's TRL, not the main worker's
            assert checkpoint["spec"]["metadata"]["library_versions"]["trl"] == "1.12.0"
            assert checkpoint["spec"]["metadata"]["config"]["trl_config_class"] == "PPOConfig"
            assert "mean_reward" in checkpoint["spec"]["metrics"]
            lineage = registry.trainer.get(f"/v1/records/{checkpoint['id']}/lineage").json()
            kinds = {n["kind"] for n in lineage["nodes"]}
            assert {"criteria", "preference_dataset", "reward_checkpoint", "base_model"} <= kinds

        events = registry.trainer.get(registry.url(f"runs/{run['id']}/events")).json()["items"]
        steps = [e["data"] for e in events if e["type"] == "metrics"]
        assert [s["step"] for s in steps] == [1, 2, 3]
        for step in steps:
            assert {"objective/kl", "objective/scores", "loss/policy_avg", "loss/value_avg"} <= set(step)
