"""Evidence that proves itself: each evaluation of a type the policy requires is checked against what its
type claims at approval, refused as `evaluation_evidence_insufficient` naming the evaluation and rule,
unless a waiver covers the deployment; nothing is recorded on a refusal."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import World
from tests.decisions.test_model_chain import Chain
from tests.factories import evaluation_body, evaluation_results, prompt, prompt_set_body


@pytest.fixture
def chain(world: World) -> Chain:
    return Chain(world)


def register(chain: Chain, kind: str, name: str, evidence: bytes | None = None, **changes: Any) -> dict[str, Any]:
    """An evaluation of the chain's step-100 checkpoint meeting its rules, but for `changes` (spec fields,
    or parent roles set to None to leave them out)."""
    checkpoint = chain.series[1]
    digest = chain.trainer.post("/v1/blobs", content=evidence or evaluation_results(name)).json()["digest"]
    body = evaluation_body(
        checkpoint["id"], kind, name, evidence=digest, evaluator=chain.annotator.principal, reference=chain.base["id"]
    )
    for key, value in changes.items():
        if key in ("prompt_set", "reference"):
            body.pop(key) if value is None else body.update({key: value})
        else:
            body["spec"][key] = value
    return chain.ok(chain.trainer, "evaluations", body)


def refusal(chain: Chain, evaluations: list[dict[str, Any]], name: str) -> tuple[Any, dict[str, Any]]:
    deployment = chain.deployment(chain.series[1], evaluations, name=name)
    return chain.approve(chain.approver, deployment), deployment


def rules_of(chain: Chain, evaluations: list[dict[str, Any]], name: str) -> list[str]:
    response, deployment = refusal(chain, evaluations, name)
    if response.status_code == 201:
        return []
    assert response.status_code == 409 and response.json()["code"] == "evaluation_evidence_insufficient"
    assert chain.approver.get(f"/v1/records/{deployment['id']}/events").json()["items"] == []
    failures = response.json()["failures"]
    assert {f["evaluation"] for f in failures} <= {e["id"] for e in evaluations}
    return sorted(f["rule"] for f in failures)


def require(chain: Chain, *types: str) -> None:
    chain.ok(chain.admin, "policies", {"spec": {"deployment_requires": list(types)}})


def test_human_evidence_names_independent_members_with_enough_judgments(chain: Chain) -> None:
    adversarial = register(chain, "adversarial", "adv")
    cases = {
        "outsider": ({"evaluators": ["panel-a"]}, ["human_evaluators"]),
        "nobody": ({"evaluators": []}, ["human_evaluators"]),
        "machine": ({"evaluators": ["ai:rm@1", chain.annotator.principal]}, ["human_evaluators"]),
        "trainer": ({"evaluators": [chain.trainer.principal]}, ["independent_evaluators"]),
        "few": ({"summary": {"win_rate": 0.6, "judgments": 49}}, ["human_judgments"]),
        "uncounted": ({"summary": {"win_rate": 0.6}}, ["human_judgments"]),
    }
    for name, (changes, expected) in cases.items():
        human = register(chain, "human_preference", f"hp-{name}", **changes)
        assert rules_of(chain, [human, adversarial], name) == expected, name
    rating = register(chain, "human_rating", "rating", evaluators=[chain.approver.principal])
    require(chain, "human_rating", "adversarial")
    assert rules_of(chain, [rating, adversarial], "rated") == []


def test_the_runs_starter_is_no_independent_evaluator(chain: Chain) -> None:
    starter = chain.world.member(chain.project, "trainer")
    run = starter.post(
        chain.url("runs"),
        json={
            "kind": "external",
            "inputs": {"base_model": {"id": chain.base["id"]}},
            "builder": {"id": "https://ci.example/jobs/1"},
        },
    ).json()
    # registered by the chain's trainer, naming the run another member started
    checkpoint = chain.ok(
        chain.trainer,
        "policy-checkpoints",
        {
            "name": "policy",
            "algorithm": "rloo",
            "reward_checkpoint": {"id": chain.reward["id"]},
            "reference_model": {"id": chain.base["id"]},
            "spec": {"files": chain.files("claimed"), "step": 200, "run_id": run["id"]},
        },
    )
    evaluations = [
        chain.ok(
            chain.trainer,
            "evaluations",
            evaluation_body(
                checkpoint["id"],
                kind,
                kind,
                evidence=chain.trainer.post("/v1/blobs", content=evaluation_results(f"claimed {kind}")).json()[
                    "digest"
                ],
                evaluator=starter.principal,
            ),
        )
        for kind in ("human_preference", "adversarial")
    ]
    refused = chain.approve(chain.approver, chain.deployment(checkpoint, evaluations))
    assert refused.status_code == 409 and [f["rule"] for f in refused.json()["failures"]] == ["independent_evaluators"]
    # and the starter may not approve it either
    chain.admin.put(f"/v1/projects/{chain.project}/members/{starter.principal}", json={"role": "approver"})
    other = chain.deployment(checkpoint, evaluations, name="other")
    assert chain.approve(starter, other).json()["code"] == "separation_of_duties"


def test_adversarial_evidence_covers_the_adversarial_prompts_of_a_prompt_set(chain: Chain) -> None:
    human = register(chain, "human_preference", "hp")
    chain.ok(
        chain.annotator,
        "prompt-sets",
        {**prompt_set_body([prompt(f"q{i}") for i in range(20)]), "name": "benign-prompts"},
    )
    partial = evaluation_results("partial", n=19)  # the adversarial q19 has no result
    cases = {
        "no-prompts": ({"prompt_set": None}, None, "adversarial_prompt_set"),
        "benign": ({"prompt_set": {"name": "benign-prompts", "version": "1.0.0"}}, None, "adversarial_prompt_set"),
        "no-evidence": ({"evidence_blob": None}, None, "adversarial_results"),
        "not-rows": ({}, b"the run's mean reward on 7 prompts: 0.41", "adversarial_results"),
        "partial": ({}, partial, "adversarial_results"),
    }
    for name, (changes, evidence, rule) in cases.items():
        adversarial = register(chain, "adversarial", f"adv-{name}", evidence, **changes)
        response, _ = refusal(chain, [human, adversarial], name)
        assert response.status_code == 409, (name, response.text)
        [failure] = response.json()["failures"]
        assert (failure["rule"], failure["evaluation"], failure["type"]) == (rule, adversarial["id"], "adversarial")
        if name == "partial":
            assert "q19" in failure["detail"]
    assert rules_of(chain, [human, register(chain, "adversarial", "adv-ok")], "ok") == []


def test_kl_is_measured_against_the_checkpoints_own_reference(chain: Chain) -> None:
    require(chain, "kl")
    other = chain.ok(
        chain.trainer, "base-models", {"name": "other-base", "spec": {"files": chain.files("other"), "license": "mit"}}
    )
    unanchored = register(chain, "kl", "kl-none", reference=None)
    assert rules_of(chain, [unanchored], "none") == ["kl_reference"]
    elsewhere = register(chain, "kl", "kl-other", reference={"id": other["id"]})
    assert rules_of(chain, [elsewhere], "other") == ["kl_reference"]
    assert rules_of(chain, [register(chain, "kl", "kl-own")], "own") == []


def test_a_correlation_carries_its_sample_size(chain: Chain) -> None:
    require(chain, "length_reward_correlation")
    cases = {
        "no-size": ({"correlation": 0.2}, ["correlation_figures"]),
        "tiny": ({"correlation": 0.2, "sample_size": 1}, ["correlation_figures"]),
        "out-of-range": ({"correlation": 1.4, "sample_size": 40}, ["correlation_figures"]),
        "nothing": ({}, ["correlation_figures", "correlation_figures"]),
        "measured": ({"correlation": -0.3, "sample_size": 40}, []),
    }
    for name, (summary, expected) in cases.items():
        evaluation = register(chain, "length_reward_correlation", f"lrc-{name}", summary=summary)
        assert rules_of(chain, [evaluation], name) == expected, name


def test_types_the_policy_does_not_require_are_not_checked(chain: Chain) -> None:
    evaluations = [
        register(chain, "human_preference", "hp"),
        register(chain, "adversarial", "adv"),
        register(chain, "kl", "kl-unanchored", reference=None),
    ]
    assert rules_of(chain, evaluations, "extra") == []


def test_a_waiver_covers_insufficient_evidence_and_the_approval_says_so(chain: Chain) -> None:
    weak = register(chain, "human_preference", "hp-weak", evaluators=["panel-a"])
    response, deployment = refusal(chain, [weak, register(chain, "adversarial", "adv")], "pilot")
    assert response.json()["code"] == "evaluation_evidence_insufficient"
    waiver = chain.ok(
        chain.approver,
        "waivers",
        {
            "name": "vendor-panel",
            "rule": "evaluation_evidence_insufficient",
            "covers": [{"id": deployment["id"]}],
            "spec": {"reason": "the vendor panel is not on the registry yet; its contract names the raters"},
        },
    )
    approved = chain.approve(chain.approver, deployment)
    assert approved.status_code == 201, approved.text
    data = approved.json()["data"]
    assert data["waived_rules"] == ["evaluation_evidence_insufficient"] and data["waivers"] == [waiver["id"]]
