"""`campaign` runs: a dpo run's two checkpoints and their reference answer the prompt set's evaluation
prompts from a fixed seed, executed by the worker's own code on tiny models, and the registry builds the
campaign's tasks from the responses; and the refusals before anything is queued."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import World
from tests.decisions.test_model_chain import Chain
from tests.web.support import sign_in
from tests.workers.series_support import Series
from workers.trainers.campaign import evaluation_prompts

pytest.importorskip("trl", reason="the train extra is not installed")


def test_a_campaign_run_registers_every_checkpoint_and_the_reference_answering_the_evaluation_prompts(
    series: Series,
) -> None:
    run = series.campaign("series-campaign")
    campaign = series.output(run)
    assert campaign["kind"] == "evaluation_campaign"
    checkpoints = sorted(series.policy_run["outputs"])
    reference = series.registry.base["id"]
    models = campaign["derived"]["models"]
    assert [m["role"] for m in models] == ["reference", "checkpoint", "checkpoint"]
    assert models[0]["id"] == reference and sorted(m["id"] for m in models[1:]) == checkpoints
    assert [m["step"] for m in models[1:]] == [1, 2]
    # the usage prompts (none is reserved for production validation) and the adversarial ones, 3 of each
    counts = campaign["derived"]["counts"]
    sources = [p["source"] for p in series.prompts()]
    assert counts["by_source"] == {s: min(3, sources.count(s)) for s in ("adversarial", "usage")}
    assert counts["tasks"] == counts["prompts"] * 3  # pairing all: each checkpoint against the reference and each other
    responses = series.blob_rows(campaign["spec"]["responses_blob"])
    assert len(responses) == counts["prompts"] * 3 and {r["model"] for r in responses} == {reference, *checkpoints}
    assert campaign["spec"]["seed"] == 5 and campaign["spec"]["pairing"] == "all"
    assert campaign["spec"]["generation"]["max_new_tokens"] == 8
    assert campaign["spec"]["metadata"]["run_id"] == run["id"]
    # progress: which model answers, then a metrics event as each one is done
    events = series.events(run)
    assert [e["data"]["step"] for e in events if e["type"] == "metrics"] == [1, 2, 3]
    answering = [e["data"]["model"] for e in events if e["type"] == "log" and "model" in e["data"]]
    assert answering == [m["id"] for m in models]
    # the run page lists the models the campaign compares as its inputs
    browser = TestClient(series.registry.client.app, raise_server_exceptions=False, follow_redirects=False)
    sign_in(browser, series.registry.trainer.token)
    page = browser.get(f"/web/runs/{run['id']}")
    assert page.status_code == 200 and all(f'href="/web/records/{m["id"]}"' in page.text for m in models)
    # the same weights and seed give the same responses
    again = series.output(series.campaign("series-campaign"))
    assert again["spec"]["responses_blob"] == campaign["spec"]["responses_blob"]


def test_prompts_reserved_for_production_validation_replace_the_usage_ones_and_each_source_is_capped() -> None:
    prompts = [
        {"id": "u1", "source": "usage"},
        {"id": "u2", "source": "usage", "production_validation": True},
        {"id": "s1", "source": "synthetic", "production_validation": True},
        *({"id": f"a{n}", "source": "adversarial"} for n in range(5)),
        {"id": "e1", "source": "expert"},
    ]
    chosen = [p["id"] for p in evaluation_prompts(prompts, None, seed=0)]
    assert chosen == ["u2", "s1", "a0", "a1", "a2", "a3", "a4"]
    capped = [p["id"] for p in evaluation_prompts(prompts, 2, seed=0)]
    assert capped[:2] == ["u2", "s1"] and len(capped) == 4 and set(capped[2:]) < {f"a{n}" for n in range(5)}
    assert capped == [p["id"] for p in evaluation_prompts(prompts, 2, seed=0)]
    unreserved = [p for p in prompts if not p.get("production_validation")]
    # none reserved: every usage prompt (and no expert one)
    assert [p["source"] for p in evaluation_prompts(unreserved, 1, seed=0)] == ["usage", "adversarial"]


def test_a_campaign_run_is_refused_before_queueing_without_a_series_to_compare(world: World) -> None:
    chain = Chain(world)
    dataset, base = {"id": chain.dataset["id"]}, {"id": chain.base["id"]}
    queued = chain.trainer.post(
        chain.url("runs"), json={"kind": "dpo", "inputs": {"dataset": dataset, "base_model": base}}
    )
    before = chain.trainer.get(chain.url("runs")).json()["items"]
    prompt_set = {"name": "core-prompts", "version": "1.0.0"}

    def refused(inputs: dict[str, Any], params: dict[str, Any] | None = None) -> dict[str, Any]:
        response = chain.trainer.post(
            chain.url("runs"), json={"kind": "campaign", "inputs": inputs, "params": params or {}}
        )
        assert response.status_code == 422, response.text
        return dict(response.json())

    # a run that registered no checkpoint (still queued), a run of no project of ours, no run at all
    nothing = refused({"policy_run": queued.json()["id"], "prompt_set": prompt_set})
    assert nothing["code"] == "missing_reference" and "registered no policy checkpoint" in nothing["detail"]
    unknown = refused({"policy_run": "0190a0b0-0000-7000-8000-000000000000", "prompt_set": prompt_set})
    assert unknown["code"] == "missing_reference" and unknown["errors"][0]["loc"] == ["body", "inputs", "policy_run"]
    assert refused({"prompt_set": prompt_set})["code"] == "validation_failed"
    pairing = refused({"policy_run": queued.json()["id"], "prompt_set": prompt_set}, {"pairing": "some"})
    assert pairing["code"] == "validation_failed" and pairing["errors"][0]["loc"] == ["body", "params", "pairing"]
    assert refused({"policy_run": queued.json()["id"]})["code"] == "missing_reference"  # no prompt set
    assert chain.trainer.get(chain.url("runs")).json()["items"] == before
