"""Approval after a campaign and with alarms: the series' candidate deploys as it is, another checkpoint of
the series needs a waiver (`not_deployment_candidate`), a flagged checkpoint needs one too
(`reward_hacking_flagged`), and the approval event lists every rule it waived. A campaign's human
evaluation proves itself from what the server derived (its judgments' evaluators and counts); AI
judgments never stand in for human evidence."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import World
from tests.decisions.test_model_chain import Chain
from tests.evaluations.test_flags import external_series
from tests.factories import evaluation_body, evaluation_results

PROMPTS = [f"q{i}" for i in range(20)]


class Campaign:
    """The chain's series (steps 50, 100, 150) and its reference answering every prompt; responses say
    which model wrote them, so scripted evaluators can prefer a model though the tasks are blinded."""

    def __init__(self, chain: Chain, series: list[dict[str, Any]] | None = None) -> None:
        self.chain = chain
        series = series or chain.series
        self.models = [chain.base["id"], *(c["id"] for c in series)]
        rows = [{"prompt_id": p, "model": m, "response": f"{m}: answer to {p}"} for p in PROMPTS for m in self.models]
        body = {
            "name": "policy-eval",
            "checkpoints": [{"id": c["id"]} for c in series],
            "reference": {"id": chain.base["id"]},
            "prompt_set": {"name": "core-prompts", "version": "1.0.0"},
            "spec": {"responses_blob": self.blob(rows)},
        }
        self.record = chain.ok(chain.trainer, "evaluation-campaigns", body)
        exported = chain.trainer.get(chain.url("evaluation-campaigns/policy-eval/1/tasks"), params={"format": "jsonl"})
        assert exported.status_code == 200, exported.text
        self.tasks = [json.loads(line) for line in exported.text.splitlines()]

    def blob(self, rows: list[dict[str, Any]]) -> str:
        data = "".join(json.dumps(r) + "\n" for r in rows).encode()
        return str(self.chain.trainer.post("/v1/blobs", content=data).json()["digest"])

    def judgments(self, evaluators: list[str]) -> list[dict[str, Any]]:
        """Every evaluator judges every task: the step-100 checkpoint beats the reference most often, then
        step 150, then step 50 (each loses some rounds, so the ratings stay finite)."""
        loses_every = {self.models[1]: 2, self.models[2]: 5, self.models[3]: 3}
        rows = []
        for k, evaluator in enumerate(evaluators):
            seen = dict.fromkeys(loses_every, 0)  # counted per checkpoint: the task order is a hash's
            for task in self.tasks:
                left = task["response_a"].split(":")[0]
                right = task["response_b"].split(":")[0]
                checkpoint = right if left == self.models[0] else left
                wins = (seen[checkpoint] + k) % loses_every[checkpoint] != 0
                seen[checkpoint] += 1
                choice = "a" if (left == checkpoint) == wins else "b"
                rows.append({"task_id": task["task_id"], "evaluator": evaluator, "choice": choice})
        return rows

    def evaluation(self, kind: str, evaluators: list[str], name: str) -> dict[str, Any]:
        body = {
            "name": name,
            "campaign": {"id": self.record["id"]},
            "spec": {"type": kind, "evidence_blob": self.blob(self.judgments(evaluators))},
        }
        return self.chain.ok(self.chain.trainer, "evaluations", body)


@pytest.fixture
def chain(world: World) -> Chain:
    return Chain(world)


@pytest.fixture
def campaign(chain: Chain) -> Campaign:
    return Campaign(chain)


def panel(chain: Chain, n: int = 3) -> list[str]:
    return [chain.world.member(chain.project, "annotator").principal for _ in range(n)]


def waive(chain: Chain, rule: str, deployment: dict[str, Any]) -> dict[str, Any]:
    return chain.ok(
        chain.approver,
        "waivers",
        {
            "name": rule.replace("_", "-"),
            "rule": rule,
            "covers": [{"id": deployment["id"]}],
            "spec": {"reason": f"reviewed by the release board: {rule} accepted for this pilot"},
        },
    )


def test_the_candidate_deploys_and_another_checkpoint_needs_waivers(chain: Chain, campaign: Campaign) -> None:
    human = campaign.evaluation("human_preference", panel(chain), "panel")
    ratings = {r["model"]: r["rating"] for r in human["derived"]["ratings"]}
    best, late = chain.series[1], chain.series[2]
    assert human["derived"]["candidate"]["model"] == best["id"] and ratings[late["id"]] < ratings[best["id"]]

    chosen = chain.deployment(best, [human, chain.evaluation(best, "adversarial", "adv-100")], name="best")
    approved = chain.approve(chain.approver, chosen)
    assert approved.status_code == 201, approved.text
    data = approved.json()["data"]
    assert data["candidate"] == best["id"] and data["flags"] == [] and data["waived_rules"] == []

    other = chain.deployment(late, [human, chain.evaluation(late, "adversarial", "adv-150")], name="late")
    refused = chain.approve(chain.approver, other)
    assert refused.status_code == 409 and refused.json()["code"] == "not_deployment_candidate"
    assert refused.json()["candidate"] == best["id"]
    waive(chain, "not_deployment_candidate", other)
    # past the candidate rule, its alarm: people rated an earlier checkpoint higher
    flagged = chain.approve(chain.approver, other)
    assert flagged.status_code == 409 and flagged.json()["code"] == "reward_hacking_flagged"
    assert [f["flag"] for f in flagged.json()["flags"]] == ["human_rating_peaked_earlier"]
    assert chain.approver.get(f"/v1/records/{other['id']}/events").json()["items"] == []
    waive(chain, "reward_hacking_flagged", other)
    approved = chain.approve(chain.approver, other)
    assert approved.status_code == 201, approved.text
    data = approved.json()["data"]
    assert data["waived_rules"] == ["not_deployment_candidate", "reward_hacking_flagged"] and len(data["waivers"]) == 2
    assert data["flags"] == ["human_rating_peaked_earlier"] and data["candidate"] == best["id"]


def test_a_campaign_evaluation_proves_itself_from_its_judgments(chain: Chain, campaign: Campaign) -> None:
    best = chain.series[1]
    adversarial = chain.evaluation(best, "adversarial", "adv")
    # one evaluator: 20 judgments of the checkpoint against the reference, fewer than the policy's 50
    alone = campaign.evaluation("human_preference", panel(chain, 1), "alone")
    refused = chain.approve(chain.approver, chain.deployment(best, [alone, adversarial], name="alone"))
    assert refused.json()["code"] == "evaluation_evidence_insufficient"
    assert [f["rule"] for f in refused.json()["failures"]] == ["human_judgments"]
    # the trainer who registered the series judged it too
    biased = campaign.evaluation("human_preference", [*panel(chain, 2), chain.trainer.principal], "biased")
    refused = chain.approve(chain.approver, chain.deployment(best, [biased, adversarial], name="biased"))
    assert [f["rule"] for f in refused.json()["failures"]] == ["independent_evaluators"]


def test_ai_judgments_are_never_human_evidence(chain: Chain, campaign: Campaign) -> None:
    best = chain.series[1]
    judged = campaign.evaluation("ai_preference", ["ai:rm@1"], "judge")
    assert judged["derived"]["ai_judged"] and judged["derived"]["candidate"]["model"] == best["id"]
    deployment = chain.deployment(best, [judged, chain.evaluation(best, "adversarial", "adv")])
    refused = chain.approve(chain.approver, deployment)
    assert refused.json()["code"] == "evaluation_evidence_missing" and refused.json()["missing"] == ["human_preference"]


def test_a_flagged_run_checkpoint_needs_a_waiver(chain: Chain) -> None:
    _, checkpoints = external_series(chain, [{"mean_reward": 0.41}, {"mean_reward": 0.41}])
    last = checkpoints[-1]
    evaluations = [
        chain.ok(
            chain.trainer,
            "evaluations",
            evaluation_body(
                last["id"],
                kind,
                f"flat-{kind}",
                evidence=chain.trainer.post("/v1/blobs", content=evaluation_results(f"flat {kind}")).json()["digest"],
                evaluator=chain.annotator.principal,
            ),
        )
        for kind in ("human_preference", "adversarial")
    ]
    deployment = chain.deployment(last, evaluations, name="flat")
    refused = chain.approve(chain.approver, deployment)
    assert refused.status_code == 409 and refused.json()["code"] == "reward_hacking_flagged"
    [flag] = refused.json()["flags"]
    assert flag["flag"] == "reward_flat" and flag["values"]["gain"] == 0.0
    waiver = waive(chain, "reward_hacking_flagged", deployment)
    approved = chain.approve(chain.approver, deployment)
    assert approved.status_code == 201, approved.text
    data = approved.json()["data"]
    assert data["flags"] == ["reward_flat"] and data["waivers"] == [waiver["id"]]
    assert data["waived_rules"] == ["reward_hacking_flagged"]


def test_the_runs_checkpoints_show_the_series_ratings(chain: Chain) -> None:
    run_id, checkpoints = external_series(chain, [{"mean_reward": 0.1}, {"mean_reward": 0.5}, {"mean_reward": 0.9}])
    campaign = Campaign(chain, checkpoints)
    judged = campaign.evaluation("ai_preference", ["ai:rm@1"], "judge")
    shown = chain.trainer.get(chain.url(f"runs/{run_id}/checkpoints")).json()
    assert shown["ratings"]["evaluation"] == judged["id"] and shown["ratings"]["type"] == "ai_preference"
    assert [r["model"] for r in shown["ratings"]["ratings"]] == campaign.models
    # an AI judge's ratings raise no human alarm
    assert all(c["flags"] == [] for c in shown["checkpoints"])
    human = campaign.evaluation("human_preference", panel(chain), "panel")
    shown = chain.trainer.get(chain.url(f"runs/{run_id}/checkpoints")).json()
    assert shown["ratings"]["evaluation"] == human["id"]
    late = shown["checkpoints"][2]
    assert [f["flag"] for f in late["flags"]] == ["human_rating_peaked_earlier"]
    assert late["flags"][0]["values"]["earlier_step"] == 20
