"""The model chain's acceptance path: the whole chain from criteria to an approved deployment, traced back in
one call, then a revoked batch flagging the deployment; and every refusal on the way."""

from __future__ import annotations

import hashlib
import os
from typing import Any

import pytest

from tests.conftest import Api, World
from tests.factories import (
    agreeing_items,
    batch_body,
    criteria_body,
    evaluation_body,
    evaluation_results,
    prompt_set_body,
    reranked_dimensions,
)


class Chain:
    """criteria -> prompt set -> batch -> dataset -> base model -> reward checkpoint -> policy series."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.project = world.project()
        self.admin = world.admin
        self.annotator = world.member(self.project, "annotator")
        self.trainer = world.member(self.project, "trainer")
        self.approver = world.member(self.project, "approver")
        self.criteria = self.ok(self.admin, "criteria", criteria_body())
        self.ok(self.annotator, "prompt-sets", prompt_set_body())
        self.batch = self.ok(self.annotator, "annotation-batches", batch_body(agreeing_items(30)))
        self.dataset = self.ok(
            self.annotator, "preference-datasets", {"name": "prefs", "batches": [{"id": self.batch["id"]}], "spec": {}}
        )
        self.base = self.ok(
            self.trainer,
            "base-models",
            {
                "name": "tiny-base",
                "spec": {"files": self.files("base"), "architecture": "llama", "license": "apache-2.0"},
            },
        )
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
                    "metrics": {"validation_accuracy": 0.71, "per_dimension": {"accuracy": 0.7}},
                },
            },
        )
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
                        "metrics": {"mean_reward": step / 100},
                    },
                },
            )
            for step in (50, 100, 150)
        ]

    def url(self, collection: str) -> str:
        return f"/v1/projects/{self.project}/{collection}"

    def ok(self, api: Api, collection: str, body: dict[str, Any]) -> dict[str, Any]:
        response = api.post(self.url(collection), json=body)
        assert response.status_code == 201, response.text
        return dict(response.json())

    def files(self, tag: str) -> list[dict[str, Any]]:
        out = []
        # a folder a run can start from: config, weights and a tokenizer
        for name in ("config.json", "model.safetensors", "tokenizer.json"):
            data = f"{tag}:{name}".encode() + os.urandom(32)
            blob = self.trainer.post("/v1/blobs", content=data).json()
            out.append({"path": name, "digest": blob["digest"], "size": len(data)})
        return out

    def evaluation(self, target: dict[str, Any], kind: str, name: str) -> dict[str, Any]:
        evidence = self.trainer.post("/v1/blobs", content=evaluation_results(name)).json()["digest"]
        body = evaluation_body(
            target["id"], kind, name, evidence=evidence, evaluator=self.annotator.principal, reference=self.base["id"]
        )
        return self.ok(self.trainer, "evaluations", body)

    def deployment(
        self, checkpoint: dict[str, Any], evaluations: list[dict[str, Any]], name: str = "prod"
    ) -> dict[str, Any]:
        return self.ok(
            self.trainer,
            "deployments",
            {
                "name": name,
                "policy_checkpoint": {"id": checkpoint["id"]},
                "evaluations": [{"id": e["id"]} for e in evaluations],
                "spec": {"justification": "best human preference at step 100; later steps regress"},
            },
        )

    def approve(self, api: Api, deployment: dict[str, Any]) -> Any:
        return api.post(
            self.url(f"deployments/{deployment['name']}/{deployment['version']}/approve"),
            json={"note": "evidence reviewed"},
        )


@pytest.fixture
def chain(world: World) -> Chain:
    return Chain(world)


def test_whole_chain_approved_traced_and_flagged_by_revocation(chain: Chain) -> None:
    chosen = chain.series[1]
    evaluations = [chain.evaluation(chosen, "human_preference", "hp"), chain.evaluation(chosen, "adversarial", "adv")]
    deployment = chain.deployment(chosen, evaluations)
    approved = chain.approve(chain.approver, deployment)
    assert approved.status_code == 201, approved.text
    assert approved.json()["type"] == "approved" and approved.json()["data"]["evidence"] == [
        "adversarial",
        "human_preference",
    ]

    lineage = chain.approver.get(f"/v1/records/{deployment['id']}/lineage", params={"direction": "upstream"}).json()
    kinds = {n["kind"] for n in lineage["nodes"]}
    assert {
        "criteria",
        "prompt_set",
        "annotation_batch",
        "preference_dataset",
        "base_model",
        "reward_checkpoint",
        "policy_checkpoint",
        "evaluation",
        "deployment",
    } <= kinds
    criteria_nodes = [n for n in lineage["nodes"] if n["kind"] == "criteria"]
    assert [n["id"] for n in criteria_nodes] == [chain.criteria["id"]]
    root = next(n for n in lineage["nodes"] if n["id"] == deployment["id"])
    assert root["status"] == "approved" and not root["quarantined"] and root["flags"] == []
    assert {"child": deployment["id"], "parent": chosen["id"], "role": "policy_checkpoint"} in lineage["edges"]

    revoked = chain.approver.post(f"/v1/records/{chain.batch['id']}/revoke", json={"reason": "fabricated annotations"})
    assert revoked.status_code == 201 and revoked.json()["downstream_quarantined"] >= 8

    after = chain.approver.get(f"/v1/records/{deployment['id']}/lineage").json()
    root = next(n for n in after["nodes"] if n["id"] == deployment["id"])
    assert root["quarantined"] and root["status"] == "approved" and "approved_but_quarantined" in root["flags"]
    down = chain.approver.get(f"/v1/records/{chain.batch['id']}/lineage", params={"direction": "downstream"}).json()
    assert deployment["id"] in {n["id"] for n in down["nodes"]}
    assert all(n["quarantined"] for n in down["nodes"])
    # nothing was deleted: every record still reads back
    assert chain.approver.get(f"/v1/records/{chain.batch['id']}").status_code == 200


def test_quarantined_records_cannot_be_used(chain: Chain) -> None:
    chain.approver.post(f"/v1/records/{chain.batch['id']}/revoke", json={"reason": "bad vendor"})
    refused = chain.annotator.post(
        chain.url("preference-datasets"), json={"name": "again", "batches": [{"id": chain.batch["id"]}], "spec": {}}
    )
    assert refused.status_code == 409 and refused.json()["code"] == "quarantined"
    deployment = chain.trainer.post(
        chain.url("deployments"),
        json={"name": "late", "policy_checkpoint": {"id": chain.series[0]["id"]}, "spec": {"justification": "x"}},
    )
    assert deployment.json()["code"] == "quarantined"
    # a waiver for rule quarantined lets it through and becomes a parent
    waiver = chain.approver.post(
        chain.url("waivers"),
        json={
            "name": "keep",
            "rule": "quarantined",
            "covers": [{"id": chain.series[0]["id"]}],
            "spec": {"reason": "re-verified by hand, shipping for the pilot"},
        },
    )
    assert waiver.status_code == 201, waiver.text
    allowed = chain.trainer.post(
        chain.url("deployments"),
        json={"name": "late", "policy_checkpoint": {"id": chain.series[0]["id"]}, "spec": {"justification": "x"}},
    )
    assert allowed.status_code == 201, allowed.text
    assert waiver.json()["id"] in {p["id"] for p in allowed.json()["parents"]}


def test_approval_needs_the_evidence_the_policy_demands(chain: Chain) -> None:
    checkpoint = chain.series[2]
    deployment = chain.deployment(checkpoint, [chain.evaluation(checkpoint, "human_preference", "hp-only")])
    refused = chain.approve(chain.approver, deployment)
    assert refused.status_code == 409 and refused.json()["code"] == "evaluation_evidence_missing"
    assert refused.json()["missing"] == ["adversarial"]
    assert chain.approver.get(f"/v1/records/{deployment['id']}/events").json()["items"] == []


def test_separation_of_duties(chain: Chain) -> None:
    checkpoint = chain.series[0]
    evaluations = [chain.evaluation(checkpoint, t, t) for t in ("human_preference", "adversarial")]
    deployment = chain.deployment(checkpoint, evaluations)
    # the trainer who registered the checkpoint also holds the approver role now: still refused
    chain.admin.put(f"/v1/projects/{chain.project}/members/{chain.trainer.principal}", json={"role": "approver"})
    refused = chain.approve(chain.trainer, deployment)
    assert refused.status_code == 403 and refused.json()["code"] == "separation_of_duties"
    viewer = chain.world.member(chain.project, "viewer")
    assert chain.approve(viewer, deployment).json()["code"] == "forbidden"
    assert chain.approve(chain.approver, deployment).status_code == 201
    again = chain.approver.post(chain.url(f"deployments/prod/{deployment['version']}/reject"), json={"note": "no"})
    assert again.status_code == 409 and again.json()["code"] == "immutable_record"


def test_rejection_is_an_event(chain: Chain) -> None:
    deployment = chain.deployment(chain.series[0], [])
    rejected = chain.approver.post(
        chain.url(f"deployments/prod/{deployment['version']}/reject"), json={"note": "regressed"}
    )
    assert rejected.status_code == 201 and rejected.json()["type"] == "rejected"
    events = chain.approver.get(f"/v1/records/{deployment['id']}/events").json()["items"]
    assert [e["type"] for e in events] == ["rejected"]


def test_newer_criteria_major_marks_everything_downstream_stale(chain: Chain) -> None:
    chain.admin.post(chain.url("criteria"), json=criteria_body("2.0.0", dimensions=reranked_dimensions()))
    lineage = chain.trainer.get(f"/v1/records/{chain.series[0]['id']}/lineage").json()
    assert all(
        n["stale"] for n in lineage["nodes"] if n["kind"] in ("criteria", "annotation_batch", "policy_checkpoint")
    )
    assert not any(n["stale"] for n in lineage["nodes"] if n["kind"] in ("base_model", "prompt_set"))


def test_lineage_formats(chain: Chain) -> None:
    record = chain.series[0]["id"]
    dot = chain.trainer.get(f"/v1/records/{record}/lineage", params={"format": "dot"})
    assert dot.status_code == 200 and dot.text.startswith("digraph lineage {") and "->" in dot.text
    mermaid = chain.trainer.get(f"/v1/records/{record}/lineage", params={"format": "mermaid"})
    assert mermaid.text.startswith("flowchart BT") and "-->|" in mermaid.text


def test_typed_parents_are_required(chain: Chain) -> None:
    files = chain.files("x")
    no_base = chain.trainer.post(
        chain.url("reward-checkpoints"),
        json={"name": "rm2", "datasets": [{"id": chain.dataset["id"]}], "spec": {"files": files}},
    )
    assert no_base.status_code == 422 and no_base.json()["code"] == "missing_reference"
    wrong_kind = chain.trainer.post(
        chain.url("reward-checkpoints"),
        json={
            "name": "rm2",
            "datasets": [{"id": chain.dataset["id"]}],
            "base_model": {"id": chain.dataset["id"]},
            "spec": {"files": files},
        },
    )
    assert wrong_kind.json()["code"] == "missing_reference"
    no_reward = chain.trainer.post(
        chain.url("policy-checkpoints"),
        json={"name": "p2", "algorithm": "ppo", "reference_model": {"id": chain.base["id"]}, "spec": {"files": files}},
    )
    assert no_reward.json()["code"] == "missing_reference"
    dpo = chain.trainer.post(
        chain.url("policy-checkpoints"),
        json={
            "name": "dpo",
            "algorithm": "dpo",
            "dataset": {"id": chain.dataset["id"]},
            "reference_model": {"id": chain.base["id"]},
            "spec": {"files": files, "hyperparameters": {"beta": 0.1}},
        },
    )
    assert dpo.status_code == 201 and dpo.json()["derived"]["kl_coefficient"] == 0.1


def test_cross_project_reference_is_refused(chain: Chain, world: World) -> None:
    other = world.project()
    trainer = world.member(other, "trainer")
    files = []
    for name in ("a.bin",):
        data = os.urandom(16)
        files.append({"path": name, "digest": trainer.post("/v1/blobs", content=data).json()["digest"], "size": 16})
    response = world.admin.post(
        f"/v1/projects/{other}/reward-checkpoints",
        json={
            "name": "rm",
            "datasets": [{"id": chain.dataset["id"]}],
            "base_model": {"id": chain.base["id"]},
            "spec": {"files": files},
        },
    )
    assert response.status_code == 422 and response.json()["code"] == "cross_project_reference"


def test_model_files_are_checked(chain: Chain) -> None:
    missing = {"path": "w.bin", "digest": "sha256:" + "1" * 64, "size": 3}
    response = chain.trainer.post(chain.url("base-models"), json={"name": "m", "spec": {"files": [missing]}})
    assert response.status_code == 422 and response.json()["code"] == "blob_missing"
    data = os.urandom(10)
    digest = chain.trainer.post("/v1/blobs", content=data).json()["digest"]
    wrong_size = chain.trainer.post(
        chain.url("base-models"),
        json={"name": "m", "spec": {"files": [{"path": "w.bin", "digest": digest, "size": 11}]}},
    )
    assert wrong_size.json()["code"] == "validation_failed"
    escape = chain.trainer.post(
        chain.url("base-models"),
        json={"name": "m", "spec": {"files": [{"path": "../w.bin", "digest": digest, "size": 10}]}},
    )
    assert escape.json()["code"] == "validation_failed"


def test_root_digest_follows_openssf_model_signing(chain: Chain) -> None:
    files = chain.base["spec"]["files"]
    expected = hashlib.sha256(b"".join(bytes.fromhex(f["digest"][7:]) for f in sorted(files, key=lambda f: f["path"])))
    assert chain.base["derived"]["root_digest"] == "sha256:" + expected.hexdigest()


def test_external_base_model_must_pin_a_commit(chain: Chain) -> None:
    moving = chain.trainer.post(
        chain.url("base-models"),
        json={"name": "ext", "spec": {"external": {"hub_id": "org/model", "revision": "main"}}},
    )
    assert moving.status_code == 422 and moving.json()["code"] == "validation_failed"
    pinned = chain.trainer.post(
        chain.url("base-models"),
        json={"name": "ext", "spec": {"external": {"hub_id": "org/model", "revision": "a" * 40}}},
    )
    assert pinned.status_code == 201 and pinned.json()["derived"]["external"]["revision"] == "a" * 40
