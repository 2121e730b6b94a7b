"""`judge` runs: a reward model labels a campaign's blinded tasks (an `ai_preference` evaluation with
ratings and a review sample) or a batch's pairs (an AI-labelled batch), executed by the worker's own code
on tiny models; and the refusals before anything is queued."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from app.evaluations.tasks import load_tasks
from app.records.models import Record
from tests.conftest import World
from tests.decisions.test_model_chain import Chain
from tests.workers.series_support import Series
from workers.trainers.judge import choice

pytest.importorskip("trl", reason="the train extra is not installed")


def _tasks(series: Series, campaign_id: str) -> dict[str, dict[str, Any]]:
    with series.state.sessions.read() as session:
        campaign = session.get(Record, campaign_id)
        assert campaign is not None
        return {t["task_id"]: t for t in load_tasks(campaign, series.state.blobs)}


def test_judging_a_campaign_registers_an_ai_preference_evaluation_with_ratings(series: Series) -> None:
    campaign = series.output(series.campaign("judged-campaign"))
    inputs = {"judge": {"id": series.reward["id"]}, "campaign": {"id": campaign["id"]}}
    run = series.execute("judge", inputs, {"seed": 2}, "rm-judged")
    evaluation = series.output(run)
    assert evaluation["kind"] == "evaluation" and evaluation["spec"]["type"] == "ai_preference"
    assert evaluation["spec"]["evaluators"] == ["ai:rm@1"] and evaluation["derived"]["ai_judged"] is True
    assert [r["model"] for r in evaluation["derived"]["ratings"]] == [m["id"] for m in campaign["derived"]["models"]]
    assert evaluation["derived"]["judgments"] == campaign["derived"]["counts"]["tasks"]
    tasks = _tasks(series, campaign["id"])
    judgments = series.blob_rows(evaluation["spec"]["evidence_blob"])
    assert sorted(j["task_id"] for j in judgments) == sorted(tasks)
    assert all(j["evaluator"] == "ai:rm@1" and j["submitted_at"] is None for j in judgments)
    _assert_choices_follow_the_scores(series, judgments, tasks)
    # the policy's share (0.1) of each prompt source, rounded up: at least one of each
    per_source = Counter(t["source"] for t in tasks.values())
    sampled = Counter(tasks[t]["source"] for t in evaluation["spec"]["review_sample"])
    assert sampled == {source: math.ceil(n / 10) for source, n in per_source.items()}
    assert [e["data"]["pairs"] for e in series.events(run) if e["type"] == "metrics"] == [len(tasks)]


def _assert_choices_follow_the_scores(
    series: Series, judgments: list[dict[str, Any]], tasks: dict[str, dict[str, Any]]
) -> None:
    """`a` is the left response, the one the reward model scores higher (a tie only on equal scores)."""
    from workers.trainers.reward_scoring import RewardScorer

    scorer = RewardScorer.load(series.rm_folder)
    shown = [tasks[j["task_id"]] for j in judgments]
    left = scorer.score([t["prompt"] for t in shown], [t["response_left"] for t in shown])
    right = scorer.score([t["prompt"] for t in shown], [t["response_right"] for t in shown])
    expected = ["tie" if a == b else "a" if a > b else "b" for a, b in zip(left, right, strict=True)]
    assert [j["choice"] for j in judgments] == expected
    assert {"a", "b"} <= set(expected)


def test_a_policy_checkpoint_prompted_as_a_judge_labels_a_campaign(series: Series, tmp_path: Path) -> None:
    """A policy checkpoint judges by the log-probability of answering A or B to the judging question."""
    from workers.trainers.judge import JUDGE_PROMPT, PromptedJudge

    campaign = series.output(series.campaign("prompted-campaign"))
    judge = series.record(series.policy_run["outputs"][-1])
    inputs = {"judge": {"id": judge["id"]}, "campaign": {"id": campaign["id"]}}
    evaluation = series.output(series.execute("judge", inputs, {}, "policy-judged"))
    assert evaluation["spec"]["type"] == "ai_preference" and evaluation["derived"]["ai_judged"] is True
    assert evaluation["spec"]["evaluators"] == [f"ai:{judge['name']}@{judge['version']}"]
    config = evaluation["spec"]["metadata"]["config"]
    assert config["judge_kind"] == "policy_checkpoint" and config["judge_prompt"] == JUDGE_PROMPT
    # the same choices from the checkpoint's own files, loaded here
    folder = tmp_path / "judge"
    for entry in judge["spec"]["files"]:
        (folder / entry["path"]).parent.mkdir(parents=True, exist_ok=True)
        (folder / entry["path"]).write_bytes(series.registry.trainer.get(f"/v1/blobs/{entry['digest']}").content)
    tasks = _tasks(series, campaign["id"])
    judgments = series.blob_rows(evaluation["spec"]["evidence_blob"])
    shown = [tasks[j["task_id"]] for j in judgments]
    first, second = PromptedJudge.load(folder).scores(
        [t["prompt"] for t in shown], [t["response_left"] for t in shown], [t["response_right"] for t in shown]
    )
    assert [j["choice"] for j in judgments] == [choice(a, b, 0.0) for a, b in zip(first, second, strict=True)]


def test_a_difference_within_the_tie_margin_is_a_tie() -> None:
    assert [choice(1.0, 0.5, 0.0), choice(0.5, 1.0, 0.0), choice(0.7, 0.7, 0.0)] == ["a", "b", "tie"]
    assert [choice(1.0, 0.9, 0.2), choice(1.0, 0.7, 0.2)] == ["tie", "a"]


def test_judging_a_batch_registers_an_ai_labelled_batch_on_its_criteria_and_prompts(series: Series) -> None:
    dataset = series.record(series.registry.dataset["id"])
    [batch_id] = [p["id"] for p in dataset["parents"] if p["role"] == "batches"]
    batch = series.record(batch_id)
    inputs = {"judge": {"id": series.reward["id"]}, "batch": {"id": batch_id}}
    judged = series.output(series.execute("judge", inputs, {"tie_margin": 0.05, "seed": 4}, "ai-pandalm"))
    assert judged["kind"] == "annotation_batch"
    spec = judged["spec"]
    assert spec["ai_labelled"] and spec["ai_assisted"] and spec["ai_model"] == "rm@1"
    assert {(p["role"], p["id"]) for p in judged["parents"]} == {(p["role"], p["id"]) for p in batch["parents"]}
    items = series.blob_rows(spec["items_blob"])
    labelled = series.blob_rows(batch["spec"]["items_blob"])
    assert sorted(i["pair_id"] for i in items) == sorted({i["pair_id"] for i in labelled})
    assert all(i["annotator"] == "ai:rm@1" and i["choice"] == i["ai_choice"] for i in items)
    assert judged["derived"]["items"] == len(items)
    source = {p["id"]: p["source"] for p in series.prompts()}
    pair_source = {i["pair_id"]: source[i["prompt_id"]] for i in items}
    assert {pair_source[p] for p in spec["review_sample"]} == set(pair_source.values())


def test_a_judge_run_is_refused_before_queueing_unless_it_judges_one_campaign_or_batch(world: World) -> None:
    chain = Chain(world)
    before = chain.trainer.get(chain.url("runs")).json()["items"]
    judge, batch = {"id": chain.reward["id"]}, {"id": chain.batch["id"]}

    def refused(inputs: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
        response = chain.trainer.post(
            chain.url("runs"), json={"kind": "judge", "inputs": inputs, "params": params or {}}
        )
        assert response.status_code == 422, response.text
        return dict(response.json())

    assert refused({"judge": judge, "campaign": batch, "batch": batch})["code"] == "missing_reference"
    assert refused({"judge": judge})["code"] == "missing_reference"
    wrong_kind = refused({"judge": judge, "campaign": batch})
    assert wrong_kind["code"] == "missing_reference" and wrong_kind["errors"][0]["loc"] == [
        "body",
        "inputs",
        "campaign",
    ]
    # a judge is a model: a reward checkpoint, or a policy checkpoint or base model to prompt
    assert refused({"judge": batch, "batch": batch})["code"] == "missing_reference"
    margin = refused({"judge": judge, "batch": batch}, {"tie_margin": -1})
    assert margin["code"] == "validation_failed" and margin["errors"][0]["loc"] == ["body", "params", "tie_margin"]
    assert chain.trainer.get(chain.url("runs")).json()["items"] == before
