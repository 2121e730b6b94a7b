"""End to end on CPU, through a real `rlhf-registry worker` on the embedded broker: demonstrations written
for the PandaLM prompt set -> an `sft` run -> a `dpo` run that starts from the sft checkpoint, each
output registered with lineage back to the criteria, the prompts and the demonstrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from app.importers import from_pandalm
from app.state import AppState
from tests.importers.spec_checks import shared_data
from tests.workers.e2e_support import Registry, build_registry, celery_worker, registry_app, state_with_broker

pytest.importorskip("trl", reason="the train extra is not installed")

SMALL = {"max_steps": 3, "seed": 3, "per_device_batch_size": 4, "max_length": 96, "learning_rate": 1e-3}


def _kinds(registry: Registry, record_id: str) -> set[str]:
    lineage = registry.trainer.get(f"/v1/records/{record_id}/lineage").json()
    return {n["kind"] for n in lineage["nodes"]}


def _demonstrations(registry: Registry, limit: int = 24) -> dict[str, Any]:
    """One demonstration per prompt of the registered PandaLM prompt set: a response its annotators saw."""
    prompt_set = registry.trainer.get(registry.url("prompt-sets/pandalm/1.0.0")).json()
    known = {p["id"] for p in prompt_set["spec"]["prompts"]}
    responses: dict[str, str] = {}
    for item in from_pandalm(shared_data("pandalm/testset-v1.json")).items:
        if item["prompt_id"] in known:
            responses.setdefault(item["prompt_id"], item["response_a"])
    rows = [{"id": f"d{n}", "prompt_id": p, "response": r} for n, (p, r) in enumerate(sorted(responses.items()))]
    response = registry.trainer.post(
        registry.url("demonstration-sets"),
        json={
            "name": "pandalm-demos",
            "criteria": {"name": "assistant-quality", "version": "1.0.0"},
            "prompt_set": {"name": "pandalm", "version": "1.0.0"},
            "spec": {"procedure": "The first response shown for each PandaLM prompt.", "demonstrations": rows[:limit]},
        },
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_sft_then_dpo_from_the_sft_checkpoint(sqlite_stack: AppState, tmp_path: Path) -> None:
    state = state_with_broker(sqlite_stack, f"sqla+sqlite:///{tmp_path / 'broker.db'}")
    log = tmp_path / "worker.log"
    with registry_app(state) as client, celery_worker(state, log):
        registry = build_registry(client, state, tmp_path, pairs=40)
        demonstrations = _demonstrations(registry)
        # every demonstration prompt is a PandaLM prompt, and the dataset holds the non-tied ones
        assert demonstrations["derived"]["in_preference_data"]["prompts"] > 0

        sft = registry.start(
            "sft", {"demonstrations": {"id": demonstrations["id"]}, "base_model": {"id": registry.base["id"]}},
            SMALL, "sft-policy",
        )  # fmt: skip
        done = registry.wait(sft["id"], ("succeeded", "failed"))
        assert done["status"] == "succeeded", (done, log.read_text()[-3000:])
        [sft_id] = done["outputs"]
        checkpoint = registry.trainer.get(f"/v1/records/{sft_id}").json()
        assert checkpoint["kind"] == "policy_checkpoint" and checkpoint["spec"]["algorithm"] == "sft"
        assert checkpoint["spec"]["step"] == 3 and checkpoint["spec"]["run_id"] == sft["id"]
        assert checkpoint["spec"]["metadata"]["config"]["trl_config_class"] == "SFTConfig"
        assert {"train_loss", "mean_token_accuracy", "examples"} <= set(checkpoint["spec"]["metrics"])
        roles = {p["role"]: p["kind"] for p in checkpoint["parents"]}
        assert roles == {"demonstrations": "demonstration_set", "reference_model": "base_model"}
        assert {"criteria", "prompt_set", "demonstration_set", "base_model"} <= _kinds(registry, sft_id)
        events = registry.trainer.get(registry.url(f"runs/{sft['id']}/events")).json()["items"]
        steps = [e["data"] for e in events if e["type"] == "metrics" and "loss" in e["data"]]
        assert [m["step"] for m in steps] == [1, 2, 3] and all("mean_token_accuracy" in m for m in steps)

        dpo_params = {**SMALL, "max_steps": 2, "beta": 0.2, "max_eval_prompts": 4, "max_completion_length": 8}
        dpo = registry.start(
            "dpo", {"dataset": {"id": registry.dataset["id"]}, "base_model": {"id": sft_id}}, dpo_params, "dpo-on-sft"
        )
        assert dpo["inputs"]["base_model"]["kind"] == "policy_checkpoint"
        finished = registry.wait(dpo["id"], ("succeeded", "failed"))
        assert finished["status"] == "succeeded", (finished, log.read_text()[-3000:])
        [dpo_id] = finished["outputs"]
        policy = registry.trainer.get(f"/v1/records/{dpo_id}").json()
        assert policy["spec"]["algorithm"] == "dpo"
        assert {p["role"]: p["id"] for p in policy["parents"]}["reference_model"] == sft_id
        assert {"demonstration_set", "preference_dataset", "annotation_batch", "criteria"} <= _kinds(registry, dpo_id)
