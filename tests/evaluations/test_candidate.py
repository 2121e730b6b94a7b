"""The deployment candidate of a series: people's newest campaign evaluation covering it answers, an AI
judge's only where people judged none (and never with `human_only`); a series no campaign evaluation
covers has none."""

from __future__ import annotations

import pytest

from app.evaluations.candidate import latest_campaign_evaluation, series_evaluations
from app.records.models import Record
from app.state import AppState
from tests.conftest import World
from tests.db.test_query_plans import plan
from tests.evaluations.test_campaign_evaluation import CampaignWorld


@pytest.fixture
def chain(world: World) -> CampaignWorld:
    return CampaignWorld(world)


def test_the_candidate_route(chain: CampaignWorld) -> None:
    url = chain.url("policy-checkpoints/policy/candidate")
    missing = chain.trainer.get(url)
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    human = chain.register(chain.judgments()).json()
    answer = chain.trainer.get(url)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["series"] == "policy" and body["evaluation"]["id"] == human["id"]
    assert body["evaluation"]["campaign"]["id"] == chain.campaign["id"] and body["evaluation"]["judgments"] == 60
    assert body["candidate"]["model"] == chain.series[1]["id"]
    assert [r["model"] for r in body["ratings"]] == [chain.base["id"], *(c["id"] for c in chain.series)]
    assert [r["reason"] for r in body["ratings"]] == [None] * 4
    # a judge's evaluation, registered later, never displaces people's: it names the candidate only of a
    # series no person judged
    judge = [{**j, "evaluator": "ai:rm@1"} for j in chain.judgments(("judge",))]
    ai = chain.trainer.post(
        chain.url("evaluations"),
        json={
            "name": "ai-series",
            "campaign": {"id": chain.campaign["id"]},
            "spec": {"type": "ai_preference", "evidence_blob": chain.blob(judge)},
        },
    )
    assert ai.status_code == 201, ai.text
    assert ai.json()["derived"]["ai_judged"] is True and ai.json()["derived"]["review_sample"] == []
    assert chain.trainer.get(url).json()["evaluation"]["id"] == human["id"]
    assert chain.trainer.get(url, params={"human_only": "true"}).json()["evaluation"]["id"] == human["id"]
    # a series no campaign covers, and a project the caller cannot see
    assert chain.trainer.get(chain.url("policy-checkpoints/other/candidate")).status_code == 404
    assert chain.world.principal().get(url).status_code == 404


def test_an_ai_judge_names_the_candidate_of_a_series_no_person_judged(chain: CampaignWorld) -> None:
    url = chain.url("policy-checkpoints/policy/candidate")
    judge = [{**j, "evaluator": "ai:rm@1"} for j in chain.judgments(("judge",))]
    body = {"name": "ai-only", "campaign": {"id": chain.campaign["id"]}}
    ai = chain.trainer.post(
        chain.url("evaluations"), json={**body, "spec": {"type": "ai_preference", "evidence_blob": chain.blob(judge)}}
    )
    assert ai.status_code == 201, ai.text
    answer = chain.trainer.get(url).json()
    assert answer["evaluation"]["id"] == ai.json()["id"] and answer["evaluation"]["ai_judged"] is True
    assert chain.trainer.get(url, params={"human_only": "true"}).status_code == 404


def test_latest_campaign_evaluation_follows_the_compared_links(chain: CampaignWorld, stack: AppState) -> None:
    first = chain.register(chain.judgments()).json()
    second = chain.register(chain.judgments(("ann-z",)), name="hp-later").json()
    # an evaluation of one checkpoint, not of the campaign, never answers
    chain.evaluation(chain.series[1], "human_preference", "hp-target")
    uow = stack.unit_of_work(request_id="test")
    try:
        project_id = uow.session.get_one(Record, first["id"]).project_id
        newest = latest_campaign_evaluation(uow.session, project_id, "policy")
        other = latest_campaign_evaluation(uow.session, project_id, "no-such-series")
    finally:
        uow.close()
    assert newest is not None and newest.id == second["id"]
    assert other is None


def test_the_series_query_seeks_indexes(sqlite_stack: AppState) -> None:
    found = plan(sqlite_stack, series_evaluations("p", "policy"), {})
    assert "record_edge USING INDEX ix_record_edge_parent_id" in found, found
    assert "SCAN" not in found and "TEMP B-TREE" not in found, found
