"""An approved deployment with everything a handoff package shows, registered through the API:
policy, criteria, prompt set, two batches a week apart, dataset, base model, reward checkpoint with its
figures and a sample-level reward evaluation, a policy series with per-step metrics, evaluations of the
deployed step, and a deployment approved by an approver who registered none of it."""

from __future__ import annotations

import json
import os
from typing import Any

from tests.conftest import Api, World
from tests.factories import (
    BASE_CRITERIA,
    agreeing_items,
    batch_body,
    criteria_body,
    evaluation_body,
    evaluation_results,
    prompt_set_body,
)

# registered text that would fetch, or run, if a template printed it unescaped
HOSTILE = "\n<img src='https://evil.example/x.png'><script>fetch('https://evil.example/')</script>"
STEPS = (50, 100, 150)
CHOSEN = 1  # index of the deployed step in STEPS


class PackageChain:
    def __init__(
        self, world: World, *, criteria: dict[str, Any] | None = None, reward_metrics: dict[str, Any] | None = None
    ) -> None:
        self.world = world
        self.project = world.project()
        self.admin = world.admin
        self.annotator = world.member(self.project, "annotator")
        self.trainer = world.member(self.project, "trainer")
        self.approver = world.member(self.project, "approver")
        self.ok(self.admin, "policies", {"spec": {}})
        playbook = BASE_CRITERIA["playbook"] + HOSTILE
        self.criteria = self.ok(self.admin, "criteria", criteria or criteria_body(playbook=playbook))
        self.prompt_set = self.ok(self.annotator, "prompt-sets", prompt_set_body())
        self.batches = [
            self.ok(self.annotator, "annotation-batches", batch_body(agreeing_items(24))),
            self.ok(
                self.annotator,
                "annotation-batches",
                {
                    **batch_body(agreeing_items(18), collected_from="2026-11-23", collected_to="2026-11-27"),
                    "name": "vendor-b-week-48",
                },
            ),
        ]
        self.dataset = self.ok(
            self.annotator,
            "preference-datasets",
            {"name": "prefs", "batches": [{"id": b["id"]} for b in self.batches], "spec": {}},
        )
        self.base = self.ok(
            self.trainer,
            "base-models",
            {
                "name": "tiny-base",
                "spec": {"files": self.files("base"), "architecture": "llama", "license": "apache-2.0"},
            },
        )
        metrics = reward_metrics or {
            "validation_accuracy": 0.71,
            "per_dimension": {"accuracy": 0.74, "helpfulness": 0.66},
            "length_decoupled_accuracy": 0.62,
            "reward_length_spearman": 0.18,
        }
        # the reward model's run, queued through the API; its output is registered here by hand, as a
        # worker would, naming the run
        self.run = self.trainer.post(
            self.url("runs"),
            json={
                "kind": "reward_model",
                "inputs": {"dataset": {"id": self.dataset["id"]}, "base_model": {"id": self.base["id"]}},
                "params": {"max_steps": 1},
                "output_name": "rm",
            },
        ).json()
        self.reward = self.ok(
            self.trainer,
            "reward-checkpoints",
            {
                "name": "rm",
                "datasets": [{"id": self.dataset["id"]}],
                "base_model": {"id": self.base["id"]},
                "spec": {
                    "files": self.files("rm"),
                    "hyperparameters": {"learning_rate": 1e-5},
                    "metrics": metrics,
                    "run_id": self.run["id"],
                },
            },
        )
        self.reward_eval = self.evaluation(self.reward, "reward_score", "rm-scores", evidence=self.scores())
        self.series = [
            self.ok(
                self.trainer,
                "policy-checkpoints",
                {
                    "name": "policy",
                    "algorithm": "rloo",
                    "reward_checkpoint": {"id": self.reward["id"]},
                    "reference_model": {"id": self.base["id"]},
                    "spec": {
                        "files": self.files(f"policy-{step}"),
                        "kl_coefficient": 0.05,
                        "step": step,
                        "metrics": {
                            "mean_reward": 0.2 + step / 500,
                            "mean_completion_length": 120 + step,
                            "kl_to_reference": step / 1000,
                        },
                    },
                },
            )
            for step in STEPS
        ]
        self.chosen = self.series[CHOSEN]
        self.evaluations = [
            self.evaluation(self.chosen, "human_preference", "hp"),
            self.evaluation(self.chosen, "adversarial", "adv"),
        ]

    def url(self, collection: str) -> str:
        return f"/v1/projects/{self.project}/{collection}"

    def ok(self, api: Api, collection: str, body: dict[str, Any]) -> dict[str, Any]:
        response = api.post(self.url(collection), json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def blob(self, data: bytes) -> str:
        return str(self.trainer.post("/v1/blobs", content=data).json()["digest"])

    def files(self, tag: str) -> list[dict[str, Any]]:
        out = []
        # a folder a run can start from: config, weights and a tokenizer
        for name in ("config.json", "model.safetensors", "tokenizer.json"):
            data = f"{tag}:{name}".encode() + os.urandom(16)
            out.append({"path": name, "digest": self.blob(data), "size": len(data)})
        return out

    def scores(self) -> str:
        rows = [{"id": i, "response": "x" * (20 + 7 * i), "score": round(0.1 * i - 1.5, 3)} for i in range(40)]
        return self.blob("".join(json.dumps(r) + "\n" for r in rows).encode())

    def evaluation(self, target: dict[str, Any], kind: str, name: str, evidence: str | None = None) -> dict[str, Any]:
        evidence = evidence or self.blob(evaluation_results(f"{name} {os.urandom(4).hex()}"))
        body = evaluation_body(
            target["id"], kind, name, evidence=evidence, evaluator=self.annotator.principal, reference=self.base["id"]
        )
        return self.ok(self.trainer, "evaluations", body)

    def deployment(self, evaluations: list[dict[str, Any]] | None = None, name: str = "prod") -> dict[str, Any]:
        return self.ok(
            self.trainer,
            "deployments",
            {
                "name": name,
                "policy_checkpoint": {"id": self.chosen["id"]},
                "evaluations": [{"id": e["id"]} for e in (self.evaluations if evaluations is None else evaluations)],
                "spec": {"justification": "best human preference at step 100; step 150 gains reward by length"},
            },
        )

    def approve(self, deployment: dict[str, Any]) -> None:
        response = self.approver.post(
            self.url(f"deployments/{deployment['name']}/{deployment['version']}/approve"), json={"note": "reviewed"}
        )
        assert response.status_code == 201, response.text

    def approved(self, name: str = "prod") -> dict[str, Any]:
        deployment = self.deployment(name=name)
        self.approve(deployment)
        return deployment

    def build(self, deployment: dict[str, Any], api: Api | None = None) -> Any:
        return (api or self.approver).post(self.url("handoff-packages"), json={"deployment": {"id": deployment["id"]}})

    def download(self, package: dict[str, Any], api: Api | None = None) -> bytes:
        response = (api or self.approver).get(
            self.url(f"handoff-packages/{package['name']}/{package['version']}/download")
        )
        assert response.status_code == 200, response.text
        return bytes(response.content)
