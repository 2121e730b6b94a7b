"""A policy run's checkpoint series on tiny models, for the runs that evaluate it (`campaign`, `judge`):
a registry with a tiny base model, an untrained tiny reward model (a judge with opinions of its own) and
a `dpo` run of two checkpoints, each run executed in this process by the worker's own code
(`workers.executor.execute`)."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from app.state import AppState
from tests.conftest import RecordingDispatcher
from tests.support.tiny_models import build_tiny_reward_model
from tests.workers.e2e_support import Registry, build_registry, registry_app, upload_folder
from workers import executor

# a learning rate that moves the tiny model's weights in two steps: checkpoints that sample alike from
# one seed would tie on every task
DPO = {
    "max_steps": 2, "checkpoint_every": 1, "seed": 3, "per_device_batch_size": 4, "max_length": 96,
    "learning_rate": 5e-2, "beta": 0.2, "max_eval_prompts": 2, "max_completion_length": 8,
}  # fmt: skip
CAMPAIGN = {"max_new_tokens": 8, "max_prompts": 3, "seed": 5, "pairing": "all"}
PROMPT_SET = {"name": "pandalm", "version": "1.0.0"}


@dataclasses.dataclass
class Series:
    registry: Registry
    state: AppState
    reward: dict[str, Any]
    rm_folder: Path
    policy_run: dict[str, Any] = dataclasses.field(default_factory=dict)

    def execute(self, kind: str, inputs: dict[str, Any], params: dict[str, Any], name: str) -> dict[str, Any]:
        """Start a run through the API and execute it here; its final state, succeeded."""
        run = self.registry.start(kind, inputs, params, name)
        executor.execute(self.state, run["id"], "worker-test")
        done = self.registry.trainer.get(self.registry.url(f"runs/{run['id']}")).json()
        assert done["status"] == "succeeded", done
        return dict(done)

    def campaign(self, name: str) -> dict[str, Any]:
        inputs = {"policy_run": self.policy_run["id"], "prompt_set": PROMPT_SET}
        return self.execute("campaign", inputs, CAMPAIGN, name)

    def output(self, run: dict[str, Any]) -> dict[str, Any]:
        [record_id] = run["outputs"]
        return self.record(record_id)

    def record(self, record_id: str) -> dict[str, Any]:
        return dict(self.registry.trainer.get(f"/v1/records/{record_id}").json())

    def blob_rows(self, digest: str) -> list[dict[str, Any]]:
        data = self.registry.trainer.get(f"/v1/blobs/{digest}").content.decode()
        return [json.loads(line) for line in data.splitlines() if line]

    def prompts(self) -> list[dict[str, Any]]:
        prompt_set = self.registry.trainer.get(self.registry.url("prompt-sets/pandalm/1.0.0")).json()
        return list(prompt_set["spec"]["prompts"])

    def events(self, run: dict[str, Any]) -> list[dict[str, Any]]:
        return list(self.registry.trainer.get(self.registry.url(f"runs/{run['id']}/events")).json()["items"])


@contextmanager
def policy_series(stack: AppState, tmp: Path) -> Iterator[Series]:
    state = dataclasses.replace(stack, dispatcher=RecordingDispatcher())
    with registry_app(state) as client:
        registry = build_registry(client, state, tmp, pairs=40)
        rm_folder = build_tiny_reward_model(tmp / "rm", tmp / "tokenizer", seed=1)
        reward = registry.trainer.post(
            registry.url("reward-checkpoints"),
            json={
                "name": "rm",
                "datasets": [{"id": registry.dataset["id"]}],
                "base_model": {"id": registry.base["id"]},
                "spec": {"files": upload_folder(registry.trainer, rm_folder)},
            },
        )
        assert reward.status_code == 201, reward.text
        series = Series(registry, state, reward.json(), rm_folder)
        inputs = {"dataset": {"id": registry.dataset["id"]}, "base_model": {"id": registry.base["id"]}}
        series.policy_run = series.execute("dpo", inputs, DPO, "dpo-policy")
        assert len(series.policy_run["outputs"]) == 2
        yield series
