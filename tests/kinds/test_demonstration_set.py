"""Demonstration sets over the API: registration with typed parents, the derived figures and training
file, the located refusals, and an sft policy checkpoint naming its demonstrations."""

from __future__ import annotations

import io
import json
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.conftest import World
from tests.factories import agreeing_items, batch_body, criteria_body, prompt, prompt_mix, prompt_set_body


def demo(did: str, prompt_id: str, response: str | None = None, **over: Any) -> dict[str, Any]:
    return {
        "id": did,
        "prompt_id": prompt_id,
        "response": f"A careful answer to {prompt_id}." if response is None else response,
        **over,
    }


def demo_body(demonstrations: list[dict[str, Any]] | None = None, **spec: Any) -> dict[str, Any]:
    rows = demonstrations if demonstrations is not None else [demo(f"d{i}", f"q{i}") for i in range(6)]
    return {
        "name": "written-week-45",
        "criteria": {"name": "assistant-quality", "version": "1.0.0"},
        "prompt_set": {"name": "core-prompts", "version": "1.0.0"},
        "spec": {"procedure": "Written by two trained contractors following the criteria.", "demonstrations": rows}
        | spec,
    }


class Setup:
    def __init__(self, world: World) -> None:
        self.project = world.project()
        self.admin = world.admin
        self.annotator = world.member(world_project := self.project, "annotator")
        self.trainer = world.member(world_project, "trainer")
        assert self.admin.post(self.url("criteria"), json=criteria_body("1.0.0")).status_code == 201
        prompts = [*prompt_mix(), prompt("held-out", production_validation=True)]
        assert self.annotator.post(self.url("prompt-sets"), json=prompt_set_body(prompts)).status_code == 201

    def url(self, collection: str) -> str:
        return f"/v1/projects/{self.project}/{collection}"

    def register(self, body: dict[str, Any]) -> Any:
        return self.annotator.post(self.url("demonstration-sets"), json=body)


@pytest.fixture
def setup(world: World) -> Setup:
    return Setup(world)


def test_registration_derives_figures_and_the_training_file(setup: Setup) -> None:
    # q0..q12 are usage prompts, q13..q16 synthetic, q17..q19 adversarial (prompt_mix)
    rows = [
        demo("d1", "q0", "Short.", author="writer-1"),
        demo("d2", "q0", "A second, longer answer.", author="writer-2"),
        demo("d3", "q13", "Synthetic answer.", author="writer-1"),
        demo("d4", "q5", "1234567890"),
    ]
    response = setup.register(demo_body(rows))
    assert response.status_code == 201, response.text
    record = response.json()
    derived = record["derived"]
    assert record["kind"] == "demonstration_set" and record["version"] == "1"
    assert {p["role"] for p in record["parents"]} == {"criteria", "prompt_set"}
    assert derived["criteria"] == {"name": "assistant-quality", "version": "1.0.0"}
    assert derived["count"] == 4 and derived["prompts_covered"] == 3 and derived["authors"] == 2
    assert derived["prompt_set_share"] == pytest.approx(3 / 21)
    assert derived["responses_per_prompt"] == {"max": 2, "mean": pytest.approx(4 / 3)}
    responses = derived["lengths"]["response"]
    assert responses["min"] == 6 and responses["max"] == len("A second, longer answer.")
    assert responses["median"] == pytest.approx((10 + 17) / 2)
    assert derived["coverage"]["source"] == {"synthetic": 1, "usage": 3}
    assert derived["coverage"]["topic"] == {"general": 4}
    assert derived["warnings"] == [
        "no demonstration answers a prompt of source 'adversarial', though the prompt set holds some"
    ]
    assert derived["in_preference_data"]["prompts"] == 0 and derived["in_preference_data"]["datasets"] == []
    [training] = derived["files"]
    assert training["path"] == "demonstrations.parquet"
    table = pq.read_table(io.BytesIO(setup.trainer.get(f"/v1/blobs/{training['digest']}").content))
    assert table.column_names == ["id", "prompt_id", "prompt", "completion"]
    assert table["id"].to_pylist() == ["d1", "d2", "d3", "d4"]
    assert table["prompt"][0].as_py() == "Question q0: how does this work?"
    assert table["completion"][3].as_py() == "1234567890"


def test_a_blob_of_jsonl_or_parquet_registers_the_same_figures(setup: Setup) -> None:
    rows = [demo(f"d{i}", f"q{i}") for i in range(5)]
    inline = setup.register(demo_body(rows)).json()["derived"]
    jsonl = "".join(json.dumps(r) + "\n" for r in rows).encode()
    sink = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), sink)
    for data in (jsonl, sink.getvalue()):
        digest = setup.annotator.post("/v1/blobs", content=data).json()["digest"]
        body = demo_body(rows)
        body["spec"] = {"procedure": "Same rows, as a file.", "demonstrations_blob": digest}
        response = setup.register(body)
        assert response.status_code == 201, response.text
        derived = response.json()["derived"]
        assert derived["count"] == inline["count"] and derived["lengths"] == inline["lengths"]
        assert derived["files"] == inline["files"]  # the same training file, byte for byte
        assert {"path": "demonstrations", "digest": digest} in [
            {"path": b["path"], "digest": b["digest"]} for b in response.json()["blobs"]
        ]


def test_prompts_also_in_preference_data_are_counted(setup: Setup) -> None:
    batch = setup.annotator.post(setup.url("annotation-batches"), json=batch_body(agreeing_items(n_pairs=6)))
    assert batch.status_code == 201, batch.text
    dataset = setup.annotator.post(
        setup.url("preference-datasets"), json={"name": "prefs", "batches": [{"id": batch.json()["id"]}]}
    )
    assert dataset.status_code == 201, dataset.text
    # pairs p0..p5 are on prompts q0..q5; q19 is in no pair
    response = setup.register(demo_body([demo("d1", "q1"), demo("d2", "q2"), demo("d3", "q2"), demo("d4", "q19")]))
    assert response.status_code == 201, response.text
    overlap = response.json()["derived"]["in_preference_data"]
    assert overlap["prompts"] == 2
    assert overlap["datasets"] == [{"name": "prefs", "version": "1"}]


@pytest.mark.parametrize(
    ("rows", "loc", "msg"),
    [
        ([demo("d1", "nope")], ["spec", "demonstrations", 0, "prompt_id"], "not a prompt"),
        ([demo("d1", "held-out")], ["spec", "demonstrations", 0, "prompt_id"], "production validation"),
        ([demo("d1", "q1"), demo("d1", "q2")], ["spec", "demonstrations", "id"], "more than once"),
        ([demo("d1", "q1", "")], ["spec", "demonstrations", 0, "response"], "empty response"),
        ([demo("d1", "q1", tone="warm")], ["spec", "demonstrations", "tone"], "unknown field"),
        ([{"id": "d1", "prompt_id": "q1"}], ["spec", "demonstrations", "response"], "missing"),
    ],
)
def test_bad_demonstrations_are_refused_where_they_are(
    setup: Setup, rows: list[dict[str, Any]], loc: list[Any], msg: str
) -> None:
    response = setup.register(demo_body(rows))
    assert response.status_code == 422, response.text
    problem = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert problem["code"] == "validation_failed"
    assert any(e["loc"] == loc and msg in e["msg"] for e in problem["errors"]), problem["errors"]


def test_the_spec_and_parents_are_checked(setup: Setup) -> None:
    both = demo_body()
    both["spec"]["demonstrations_blob"] = "sha256:" + "0" * 64
    assert setup.register(both).json()["code"] == "validation_failed"
    assert setup.register(demo_body([])).json()["code"] == "validation_failed"
    no_procedure = demo_body()
    no_procedure["spec"]["procedure"] = ""
    assert setup.register(no_procedure).json()["code"] == "validation_failed"
    orphan = demo_body()
    del orphan["prompt_set"]
    response = setup.register(orphan)
    assert response.status_code == 422 and response.json()["code"] == "missing_reference"
    # a demonstration set cites criteria, not a prompt set, under `criteria`
    wrong = demo_body()
    wrong["criteria"] = {"kind": "prompt_set", "name": "core-prompts", "version": "1.0.0"}
    assert setup.register(wrong).status_code == 422


def test_an_sft_checkpoint_names_its_demonstrations(setup: Setup) -> None:
    demonstrations = setup.register(demo_body()).json()
    blob = setup.trainer.post("/v1/blobs", content=b'{"model_type": "llama"}').json()
    files = [{"path": "config.json", "digest": blob["digest"], "size": 23}]
    base = setup.trainer.post(setup.url("base-models"), json={"name": "base", "spec": {"files": files}})
    assert base.status_code == 201, base.text

    def checkpoint(**parents: Any) -> Any:
        body = {"name": "sft-policy", "algorithm": "sft", "reference_model": {"id": base.json()["id"]}}
        return setup.trainer.post(setup.url("policy-checkpoints"), json={**body, **parents, "spec": {"files": files}})

    missing = checkpoint()
    assert missing.status_code == 422 and missing.json()["code"] == "missing_reference"
    assert missing.json()["errors"][0]["loc"] == ["body", "demonstrations"]
    made = checkpoint(demonstrations={"id": demonstrations["id"]})
    assert made.status_code == 201, made.text
    assert made.json()["derived"]["algorithm"] == "sft"
    lineage = setup.trainer.get(f"/v1/records/{made.json()['id']}/lineage").json()
    assert {"demonstration_set", "prompt_set", "criteria", "base_model"} <= {n["kind"] for n in lineage["nodes"]}
