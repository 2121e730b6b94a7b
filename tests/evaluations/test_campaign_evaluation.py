"""A campaign evaluation registered through the API: evaluators judge the blinded tasks, the server
derives every checkpoint's rating and the candidate, links the models compared, and refuses judgments,
parents and evidence that do not fit."""

from __future__ import annotations

import json
from typing import Any

import pytest

from app.evaluations import stats
from app.evaluations.tasks import load_tasks
from app.kinds.evaluation import EVALUATIONS_CITING
from app.records.models import Record
from app.state import AppState
from tests.conftest import World
from tests.db.test_query_plans import plan
from tests.decisions.test_model_chain import Chain

PROMPTS = [f"q{i}" for i in range(10)]
# how many of the 10 prompts each checkpoint's answer beats the reference's: quality peaks at step 100
BEATS_REFERENCE = {50: 6, 100: 9, 150: 3}
EVALUATORS = ("ann-x", "ann-y")


class CampaignWorld(Chain):
    """The model chain's policy series (steps 50, 100, 150 against tiny-base) in one campaign: every model
    answers q0..q9, its answer saying who wrote it, so that scripted evaluators can judge blinded tasks."""

    def __init__(self, world: World) -> None:
        super().__init__(world)
        self.labels = {self.base["id"]: "base"} | {c["id"]: f"step-{c['spec']['step']}" for c in self.series}
        rows = [
            {"prompt_id": p, "model": m, "response": f"{label} answers {p}"}
            for p in PROMPTS
            for m, label in self.labels.items()
        ]
        self.campaign = self.ok(
            self.trainer,
            "evaluation-campaigns",
            {
                "name": "series-check",
                "checkpoints": [{"id": c["id"]} for c in self.series],
                "reference": {"id": self.base["id"]},
                "prompt_set": {"name": "core-prompts", "version": "1.0.0"},
                "spec": {"responses_blob": self.blob(rows), "seed": 5},
            },
        )
        exported = self.trainer.get(self.url(f"evaluation-campaigns/series-check/{self.campaign['version']}/tasks"))
        assert exported.status_code == 200, exported.text
        self.tasks = [json.loads(line) for line in exported.text.splitlines()]

    def blob(self, rows: list[dict[str, Any]]) -> str:
        data = "".join(json.dumps(row) + "\n" for row in rows).encode()
        return str(self.trainer.post("/v1/blobs", content=data).json()["digest"])

    def preferred(self, task: dict[str, Any]) -> str:
        """The choice a scripted evaluator makes, reading who wrote each response: a checkpoint beats the
        reference on the first BEATS_REFERENCE[step] prompts."""
        (left, prompt_id), (right, _) = (task[key].split(" answers ") for key in ("response_a", "response_b"))
        checkpoint, side = (left, "a") if left != "base" else (right, "b")
        wins = PROMPTS.index(prompt_id) < BEATS_REFERENCE[int(checkpoint.removeprefix("step-"))]
        return side if wins else {"a": "b", "b": "a"}[side]

    def judgments(self, evaluators: tuple[str, ...] = EVALUATORS) -> list[dict[str, Any]]:
        return [
            {"task_id": t["task_id"], "evaluator": e, "choice": self.preferred(t), "submitted_at": None}
            for t in self.tasks
            for e in evaluators
        ]

    def register(self, judgments: list[dict[str, Any]], *, name: str = "hp-series", **spec: Any) -> Any:
        body = {
            "name": name,
            "campaign": {"id": self.campaign["id"]},
            "spec": {"type": "human_preference", "evidence_blob": self.blob(judgments), **spec},
        }
        return self.trainer.post(self.url("evaluations"), json=body)

    def evaluations(self) -> list[dict[str, Any]]:
        return list(self.trainer.get(self.url("evaluations")).json()["items"])


@pytest.fixture
def chain(world: World) -> CampaignWorld:
    return CampaignWorld(world)


def test_the_server_rates_the_series_and_names_the_candidate(chain: CampaignWorld, stack: AppState) -> None:
    judgments = chain.judgments()
    response = chain.register(judgments)
    assert response.status_code == 201, response.text
    evaluation = response.json()
    derived = evaluation["derived"]
    assert derived["type"] == "human_preference" and derived["ai_judged"] is False
    assert derived["campaign"] == {"id": chain.campaign["id"], "name": "series-check", "version": "1"}
    assert derived["series"] == "policy"
    assert derived["judgments"] == 60 and derived["evaluators"] == list(EVALUATORS)
    ratings = derived["ratings"]
    assert [r["model"] for r in ratings] == [chain.base["id"], *(c["id"] for c in chain.series)]
    assert [r["role"] for r in ratings] == ["reference", "checkpoint", "checkpoint", "checkpoint"]
    assert ratings[0]["rating"] == 0.0 and ratings[0]["vs_reference"] is None
    for rating, checkpoint in zip(ratings[1:], chain.series, strict=True):
        wins = BEATS_REFERENCE[checkpoint["spec"]["step"]] * len(EVALUATORS)
        assert rating["step"] == checkpoint["spec"]["step"]
        assert rating["vs_reference"]["wins"] == wins and rating["vs_reference"]["losses"] == 20 - wins
        assert rating["low"] <= rating["rating"] <= rating["high"]
    candidate = derived["candidate"]
    assert candidate["model"] == chain.series[1]["id"] and candidate["step"] == 100
    assert candidate["next"]["step"] == 50
    # the evaluators agree on every task; the left/right order was drawn, so neither side is favoured
    assert derived["agreement"]["pairwise_agreement"] == 1.0
    assert derived["agreement"]["tasks_multiply_judged"] == 30
    assert derived["position_bias"]["n"] == 60
    # the figures are the pure computation over the campaign's own tasks
    uow = stack.unit_of_work(request_id="test")
    try:
        campaign = uow.session.get_one(Record, chain.campaign["id"])
        tasks = load_tasks(campaign, stack.blobs)
    finally:
        uow.close()
    expected = stats.campaign_figures(campaign.derived["models"], tasks, judgments, 5)
    assert {key: derived[key] for key in expected} == expected
    # every model compared is a parent, added by the server
    compared = [p["id"] for p in evaluation["parents"] if p["role"] == "compared"]
    assert compared == [chain.base["id"], *(c["id"] for c in chain.series)]


def test_judgments_of_unknown_tasks_are_refused_by_row(chain: CampaignWorld) -> None:
    before = chain.evaluations()
    judgments = chain.judgments()
    judgments[3] = {**judgments[3], "task_id": "t-000000000000"}
    response = chain.register(judgments)
    assert response.status_code == 422 and response.json()["code"] == "validation_failed"
    [error] = response.json()["errors"]
    assert error["loc"] == ["spec", "evidence_blob", 3, "task_id"]
    assert chain.evaluations() == before


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"evaluators": ["ann-x"]}, ["body", "spec", "evaluators"]),
        ({"type": "adversarial"}, ["body", "spec", "type"]),
        ({"review_sample": []}, ["body", "spec", "review_sample"]),
        ({"evidence_blob": None}, ["body", "spec", "evidence_blob"]),
    ],
    ids=["evaluators-differ", "not-a-preference-type", "review-sample-of-people", "no-judgments-file"],
)
def test_a_campaign_evaluation_fits_its_judgments(chain: CampaignWorld, change: dict[str, Any], loc: list[Any]) -> None:
    response = chain.register(chain.judgments(), **change)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_failed" and response.json()["errors"][0]["loc"] == loc


def test_evaluators_may_be_named_and_machines_are_not_people(chain: CampaignWorld) -> None:
    assert chain.register(chain.judgments(), evaluators=["ann-y", "ann-x"]).status_code == 201
    mixed = chain.judgments(("ann-x", "ai:rm@1"))
    response = chain.register(mixed, name="mixed")
    assert response.status_code == 422 and response.json()["code"] == "validation_failed"


def test_a_review_sample_names_tasks_of_the_campaign(chain: CampaignWorld) -> None:
    judge = chain.judgments(("ai:rm@1",))
    body = {"name": "ai", "campaign": {"id": chain.campaign["id"]}}
    spec = {"type": "ai_preference", "evidence_blob": chain.blob(judge)}
    bad = chain.trainer.post(chain.url("evaluations"), json={**body, "spec": {**spec, "review_sample": ["t-nope"]}})
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["body", "spec", "review_sample"]
    sample = sorted(t["task_id"] for t in chain.tasks[:4])
    good = chain.trainer.post(chain.url("evaluations"), json={**body, "spec": {**spec, "review_sample": sample[::-1]}})
    assert good.status_code == 201 and good.json()["derived"]["review_sample"] == sample


@pytest.mark.parametrize(
    ("extra", "loc"),
    [
        ({"compared": [{"name": "policy", "version": "1"}]}, ["body", "compared"]),
        ({"target": {"name": "policy", "version": "1"}}, ["body", "campaign"]),
    ],
    ids=["client-names-compared", "target-and-campaign"],
)
def test_parents_the_client_may_not_name(chain: CampaignWorld, extra: dict[str, Any], loc: list[str]) -> None:
    body = {
        "name": "hp",
        "campaign": {"id": chain.campaign["id"]},
        "spec": {"type": "human_preference", "evidence_blob": chain.blob(chain.judgments())},
        **extra,
    }
    response = chain.trainer.post(chain.url("evaluations"), json=body)
    assert response.status_code == 422 and response.json()["code"] == "validation_failed"
    assert response.json()["errors"][0]["loc"] == loc


def test_an_evaluation_names_its_target_or_its_campaign(chain: CampaignWorld) -> None:
    response = chain.trainer.post(chain.url("evaluations"), json={"name": "x", "spec": {"type": "kl"}})
    assert response.status_code == 422 and response.json()["code"] == "missing_reference"


def test_one_evidence_blob_serves_one_type_of_evaluation(chain: CampaignWorld) -> None:
    digest = chain.blob([{"prompt_id": "q1", "score": 0.4}])
    target = {"id": chain.series[1]["id"]}
    first = chain.ok(
        chain.trainer,
        "evaluations",
        {"name": "adv", "target": target, "spec": {"type": "adversarial", "evidence_blob": digest}},
    )
    # the same type again (a new version of the same evidence) is fine
    second = chain.ok(
        chain.trainer,
        "evaluations",
        {"name": "adv-2", "target": target, "spec": {"type": "adversarial", "evidence_blob": digest}},
    )
    before = chain.evaluations()
    reused = chain.trainer.post(
        chain.url("evaluations"), json={"name": "kl", "target": target, "spec": {"type": "kl", "evidence_blob": digest}}
    )
    assert reused.status_code == 409 and reused.json()["code"] == "evaluation_evidence_insufficient"
    assert reused.json()["evaluation"]["id"] in {first["id"], second["id"]}
    assert chain.evaluations() == before


def test_the_evidence_query_seeks_the_digest_index(sqlite_stack: AppState) -> None:
    found = plan(sqlite_stack, EVALUATIONS_CITING, {"digest": "sha256:x", "project_id": "p"})
    assert "record_blob USING INDEX ix_record_blob_digest" in found, found
    assert "SCAN" not in found and "TEMP B-TREE" not in found, found


def test_a_label_studio_export_rates_like_the_same_judgments_in_jsonl(chain: CampaignWorld) -> None:
    exported = chain.trainer.get(
        chain.url("evaluation-campaigns/series-check/1/tasks"), params={"format": "label-studio"}
    )
    annotated = []
    for number, task in enumerate(exported.json()):
        choice = chain.preferred(task["data"])
        region = {"from_name": "preference", "type": "choices", "value": {"choices": [choice.upper()]}}
        annotation = {
            "id": 900 + number,
            "completed_by": {"id": 7, "email": "rater-7@lab.example"},
            "result": [{"id": f"r{number}", "to_name": "prompt", "origin": "manual", **region}],
            "was_cancelled": False,
            "created_at": "2026-11-20T14:05:00Z",
            "updated_at": "2026-11-20T14:05:00Z",
        }
        annotated.append({"id": 500 + number, **task, "annotations": [annotation], "predictions": []})
    digest = chain.trainer.post("/v1/blobs", content=json.dumps(annotated).encode()).json()["digest"]
    body = {
        "name": "hp-label-studio",
        "campaign": {"id": chain.campaign["id"]},
        "spec": {"type": "human_preference", "evidence_blob": digest, "evidence_format": "label-studio"},
    }
    from_tool = chain.trainer.post(chain.url("evaluations"), json=body)
    assert from_tool.status_code == 201, from_tool.text
    as_jsonl = chain.register(chain.judgments(("rater-7@lab.example",)), name="hp-jsonl")
    assert from_tool.json()["derived"]["evaluators"] == ["rater-7@lab.example"]
    assert from_tool.json()["derived"]["ratings"] == as_jsonl.json()["derived"]["ratings"]
