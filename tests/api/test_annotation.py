"""Prompt sets, annotation batches, preference datasets and waivers over the API."""

from __future__ import annotations

import hashlib
import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import Api, World
from tests.factories import (
    agreeing_items,
    batch_body,
    criteria_body,
    item,
    prompt,
    prompt_mix,
    prompt_set_body,
    reranked_dimensions,
)


class Setup:
    def __init__(self, world: World) -> None:
        self.world = world
        self.project = world.project()
        self.admin = world.admin
        self.annotator = world.member(self.project, "annotator")
        self.approver = world.member(self.project, "approver")
        self.trainer = world.member(self.project, "trainer")
        assert self.admin.post(self.url("criteria"), json=criteria_body("1.0.0")).status_code == 201
        assert self.annotator.post(self.url("prompt-sets"), json=prompt_set_body()).status_code == 201

    def url(self, collection: str) -> str:
        return f"/v1/projects/{self.project}/{collection}"

    def batch(self, items: list[dict[str, Any]], name: str = "vendor-a-week-47", **kw: Any) -> Any:
        body = batch_body(items, **kw)
        body["name"] = name
        return self.annotator.post(self.url("annotation-batches"), json=body)

    def upload(self, api: Api, data: bytes) -> str:
        response = api.post("/v1/blobs", content=data)
        assert response.status_code in (200, 201), response.text
        return str(response.json()["digest"])


@pytest.fixture
def setup(world: World) -> Setup:
    return Setup(world)


def _errors(response: Any) -> list[dict[str, Any]]:
    return list(response.json().get("errors", []))


# prompt sets


def test_prompt_set_derived_mix_and_coverage(setup: Setup) -> None:
    record = setup.annotator.get(setup.url("prompt-sets") + "/core-prompts/1.0.0").json()
    derived = record["derived"]
    assert derived["count"] == 20
    assert derived["mix"]["usage"] == pytest.approx(0.65) and derived["mix"]["edge"] == pytest.approx(0.15)
    assert derived["warnings"] == [] or all("length bucket" in w for w in derived["warnings"])
    assert set(derived["coverage"]["complexity"]) == {"low", "medium", "high"}


def test_prompt_set_skewed_mix_warns(setup: Setup) -> None:
    prompts = [prompt(f"u{i}", "usage") for i in range(10)]
    response = setup.annotator.post(setup.url("prompt-sets"), json={**prompt_set_body(prompts), "name": "skewed"})
    assert response.status_code == 201
    warnings = response.json()["derived"]["warnings"]
    assert any(w.startswith("usage share") for w in warnings)
    assert any(w.startswith("synthetic share") for w in warnings)


def test_unreviewed_usage_prompts_are_named(setup: Setup) -> None:
    prompts = prompt_mix()
    prompts[0]["privacy_reviewed"] = False
    prompts[3]["privacy_reviewed"] = False
    response = setup.annotator.post(setup.url("prompt-sets"), json={**prompt_set_body(prompts), "name": "p2"})
    assert response.status_code == 422 and response.json()["code"] == "validation_failed"
    messages = " ".join(e["msg"] for e in _errors(response))
    assert "'q0'" in messages and "'q3'" in messages
    assert _errors(response)[0]["loc"] == ["spec", "prompts", 0, "privacy_reviewed"]


def test_prompt_rows_are_validated(setup: Setup) -> None:
    prompts = prompt_mix()
    prompts[1]["source"] = "scraped"
    prompts[2]["id"] = "q0"
    prompts[4]["complexity"] = "extreme"
    response = setup.annotator.post(setup.url("prompt-sets"), json={**prompt_set_body(prompts), "name": "p3"})
    assert response.json()["code"] == "validation_failed"
    locs = [e["loc"] for e in _errors(response)]
    assert ["spec", "prompts", 1, "source"] in locs and ["spec", "prompts", 4, "complexity"] in locs
    assert any("'q0'" in e["msg"] for e in _errors(response))


def test_prompts_blob_jsonl(setup: Setup) -> None:
    lines = "\n".join(json.dumps(p) for p in prompt_mix(40)).encode()
    digest = setup.upload(setup.annotator, lines)
    body = {
        "name": "from-blob",
        "version": "1.0.0",
        "spec": {"sampling_procedure": "x", "prompts_blob": digest},
    }
    response = setup.annotator.post(setup.url("prompt-sets"), json=body)
    assert response.status_code == 201, response.text
    assert response.json()["derived"]["count"] == 40
    assert response.json()["blobs"] == [{"path": "prompts", "digest": digest, "size": len(lines)}]
    # a viewer of the project can now read the blob the record references
    viewer = setup.world.member(setup.project, "viewer")
    assert viewer.get(f"/v1/blobs/{digest}").content == lines


def test_missing_blob_is_refused(setup: Setup) -> None:
    body = {
        "name": "nope",
        "version": "1.0.0",
        "spec": {"sampling_procedure": "x", "prompts_blob": "sha256:" + "0" * 64},
    }
    response = setup.annotator.post(setup.url("prompt-sets"), json=body)
    assert response.status_code == 422 and response.json()["code"] == "blob_missing"


# annotation batches


def test_batch_registers_with_qc(setup: Setup) -> None:
    response = setup.batch(agreeing_items())
    assert response.status_code == 201, response.text
    record = response.json()
    qc = record["derived"]["qc"]
    for key in (
        "cohen_kappa",
        "krippendorff_alpha",
        "gold_accuracy",
        "position_bias",
        "length_bias",
        "tie_rate",
        "high_disagreement_rate",
        "sessions_over_limit",
        "gate",
        "policy_version",
    ):
        assert key in qc
    assert qc["gate"] in ("pass", "warn") and qc["policy_version"] == 0
    assert {p["role"] for p in record["parents"]} == {"criteria", "prompt_set"}
    assert record["version"] == "1"


def test_batch_needs_criteria_and_prompt_set(setup: Setup) -> None:
    body = batch_body(agreeing_items())
    del body["criteria"]
    response = setup.annotator.post(setup.url("annotation-batches"), json=body)
    assert response.status_code == 422 and response.json()["code"] == "missing_reference"
    body = batch_body(agreeing_items(), prompts="9.9.9")
    response = setup.annotator.post(setup.url("annotation-batches"), json=body)
    assert response.json()["code"] == "missing_reference"
    assert _errors(response)[0]["loc"] == ["body", "prompt_set"]


def test_batch_items_located_errors(setup: Setup) -> None:
    rows = agreeing_items()
    rows[2]["prompt_id"] = "not-a-prompt"
    rows[5]["choice"] = "left"
    rows[7]["dimensions"] = {"accuracy": "a", "verbosity": "b"}
    rows[8]["started_at"] = "2026-11-16T10:00:00Z"
    rows[9] = {**rows[10]}
    response = setup.batch(rows)
    assert response.status_code == 422 and response.json()["code"] == "validation_failed"
    locs = [e["loc"] for e in _errors(response)]
    assert ["spec", "items", 2, "prompt_id"] in locs
    assert ["spec", "items", 5, "choice"] in locs
    assert ["spec", "items", 8, "submitted_at"] in locs
    assert ["spec", "items", "dimensions", "verbosity"] in locs
    assert any("annotated twice" in e["msg"] for e in _errors(response))


def test_items_blob_jsonl_and_parquet_give_the_same_qc(setup: Setup) -> None:
    rows = agreeing_items()
    jsonl = "\n".join(json.dumps(r) for r in rows).encode()
    by_jsonl = setup.batch([], name="jsonl", **{})
    assert by_jsonl.status_code == 422  # an empty inline list is refused
    body = batch_body(rows)
    body["spec"].pop("items")
    body["spec"]["items_blob"] = setup.upload(setup.annotator, jsonl)
    body["name"] = "jsonl"
    first = setup.annotator.post(setup.url("annotation-batches"), json=body)
    assert first.status_code == 201, first.text
    sink = io.BytesIO()
    table = pa.Table.from_pylist(rows)
    pq.write_table(table, sink)
    body["spec"]["items_blob"] = setup.upload(setup.annotator, sink.getvalue())
    body["name"] = "parquet"
    second = setup.annotator.post(setup.url("annotation-batches"), json=body)
    assert second.status_code == 201, second.text
    qc1, qc2 = first.json()["derived"]["qc"], second.json()["derived"]["qc"]
    assert qc1["cohen_kappa"] == qc2["cohen_kappa"] and qc1["krippendorff_alpha"] == qc2["krippendorff_alpha"]


# preference datasets and waivers


def _dataset(setup: Setup, batches: list[str], name: str = "prefs", api: Api | None = None, **spec: Any) -> Any:
    body = {"name": name, "batches": [{"id": b} for b in batches], "spec": {"seed": 0, **spec}}
    return (api or setup.annotator).post(setup.url("preference-datasets"), json=body)


def test_dataset_build_is_deterministic_and_splits_by_prompt(setup: Setup) -> None:
    batch = setup.batch(agreeing_items(40)).json()
    first = _dataset(setup, [batch["id"]])
    assert first.status_code == 201, first.text
    again = _dataset(setup, [batch["id"]], name="prefs-copy")
    derived, derived2 = first.json()["derived"], again.json()["derived"]
    assert derived["files"][0]["digest"] == derived2["files"][0]["digest"]
    counts = derived["counts"]
    assert counts["pairs_in"] == 40 and counts["train"] + counts["validation"] == counts["pairs_out"]
    data = setup.annotator.get(f"/v1/blobs/{derived['files'][0]['digest']}").content
    assert hashlib.sha256(data).hexdigest() == derived["files"][0]["digest"].split(":")[1]
    table = pq.read_table(io.BytesIO(data))
    assert {"prompt", "chosen", "rejected", "split", "dim_accuracy"} <= set(table.column_names)
    rows = table.to_pylist()
    train = {r["prompt_id"] for r in rows if r["split"] == "train"}
    validation = {r["prompt_id"] for r in rows if r["split"] == "validation"}
    assert train and validation and not train & validation


def test_dataset_validation_share_must_be_in_policy_range(setup: Setup) -> None:
    batch = setup.batch(agreeing_items()).json()
    response = _dataset(setup, [batch["id"]], validation_share=0.5)
    assert response.status_code == 422 and response.json()["code"] == "validation_failed"


def test_dataset_keeping_ties_needs_tie_break(setup: Setup) -> None:
    batch = setup.batch(agreeing_items()).json()
    response = _dataset(setup, [batch["id"]], drop_ties=False)
    assert response.json()["code"] == "validation_failed"
    assert _dataset(setup, [batch["id"]], drop_ties=False, tie_break="shorter").status_code == 201


def test_production_validation_prompts_stay_out(setup: Setup) -> None:
    prompts = prompt_mix()
    for p in prompts[:5]:
        p["production_validation"] = True
    setup.annotator.post(setup.url("prompt-sets"), json=prompt_set_body(prompts, version="1.1.0"))
    batch = setup.batch(agreeing_items(), prompts="1.1.0").json()
    response = _dataset(setup, [batch["id"]])
    counts = response.json()["derived"]["counts"]
    assert counts["dropped"]["production_validation_reserved"] > 0
    data = setup.annotator.get(f"/v1/blobs/{response.json()['derived']['files'][0]['digest']}").content
    assert not {r["prompt_id"] for r in pq.read_table(io.BytesIO(data)).to_pylist()} & {
        "q0",
        "q1",
        "q2",
        "q3",
        "q4",
    }


def test_mixing_criteria_majors_needs_a_waiver(setup: Setup) -> None:
    old = setup.batch(agreeing_items(), name="old").json()
    setup.admin.post(setup.url("criteria"), json=criteria_body("2.0.0", dimensions=reranked_dimensions()))
    new = setup.batch(agreeing_items(), name="new", criteria="2.0.0").json()
    newer = setup.batch(agreeing_items(), name="newer", criteria="2.0.0").json()
    refused = _dataset(setup, [old["id"], new["id"], newer["id"]])
    assert refused.status_code == 409 and refused.json()["code"] == "criteria_incompatible"
    assert refused.json()["batches"] == [old["id"]]

    waiver_body = {
        "name": "keep-old",
        "rule": "criteria_incompatible",
        "covers": [{"id": old["id"]}],
        "spec": {"reason": "the 1.x batch only differs in ranking; reviewed by the lead"},
    }
    assert setup.annotator.post(setup.url("waivers"), json=waiver_body).status_code == 403
    waiver = setup.approver.post(setup.url("waivers"), json=waiver_body)
    assert waiver.status_code == 201, waiver.text
    allowed = _dataset(setup, [old["id"], new["id"], newer["id"]])
    assert allowed.status_code == 201, allowed.text
    assert {"id": waiver.json()["id"], "kind": "waiver", "role": "waiver"} in allowed.json()["parents"]


def test_unknown_rule_cannot_be_waived(setup: Setup) -> None:
    batch = setup.batch(agreeing_items()).json()
    body = {
        "name": "w",
        "rule": "separation_of_duties",
        "covers": [{"id": batch["id"]}],
        "spec": {"reason": "because we want to"},
    }
    response = setup.approver.post(setup.url("waivers"), json=body)
    assert response.status_code == 422 and response.json()["code"] == "validation_failed"


def test_blocked_batch_needs_a_waiver(setup: Setup) -> None:
    # three annotators who agree no more than chance: kappa below the floor
    rows = [
        item(f"p{p}", f"q{p % 20}", a, ("a", "b")[(p * 7 + k * 3 + p // 5) % 2])
        for p in range(40)
        for k, a in enumerate(("x1", "x2", "x3"))
    ]
    batch = setup.batch(rows, name="noisy").json()
    assert batch["derived"]["qc"]["gate"] == "block", batch["derived"]["qc"]
    refused = _dataset(setup, [batch["id"]])
    assert refused.status_code == 409 and refused.json()["code"] == "qc_gate_blocked"
    body = {
        "name": "w",
        "rule": "qc_gate_blocked",
        "covers": [{"id": batch["id"]}],
        "spec": {"reason": "pilot batch, used for a smoke test only"},
    }
    assert setup.approver.post(setup.url("waivers"), json=body).status_code == 201
    assert _dataset(setup, [batch["id"]]).status_code == 201
