"""Every output of every run kind records the library versions it was made with, and the SLSA provenance
of a handoff package lists them: a checkpoint emitted during a run included (the final model of an RLOO
run saved at a checkpoint's step is that checkpoint, and carried none before), and a checkpoint stored
without them in its record is read from its folder's `training_config.json`.

The trainer is replaced by one that writes small folders the way the real ones do (its provenance from
`workers.trainers.run_inputs`, the file from `workers.trainers.model_folders`): no training here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.packages.gather import Closure
from app.packages.provenance import library_versions_of, provenance_statements
from app.records.models import Record
from app.runs.models import Run
from app.state import AppState
from tests.conftest import World
from tests.decisions.test_model_chain import Chain
from workers import executor
from workers.trainers import dispatch
from workers.trainers.environment import library_versions
from workers.trainers.model_folders import write_provenance
from workers.trainers.run_inputs import provenance
from workers.trainers.spec import TrainJob, TrainResult

STACK = {"python", "torch", "transformers", "trl", "accelerate", "datasets"}
POLICY_PARAMS = {"max_steps": 2, "checkpoint_every": 1, "num_generations": 2, "per_device_batch_size": 4}
PARAMS = {"reward_model": {"max_steps": 1}, "dpo": {"max_steps": 2, "checkpoint_every": 1}, "score": {}}


def _folder(folder: Path, carried: dict[str, Any]) -> Path:
    folder.mkdir(parents=True)
    (folder / "config.json").write_text('{"model_type": "llama"}')
    (folder / "model.safetensors").write_bytes(folder.name.encode())
    write_provenance(folder, carried)
    return folder


def fake_trainer(job: TrainJob) -> TrainResult:
    """Each kind's outputs as its real trainer leaves them; policy runs emit checkpoints at steps 1 and 2
    and end at step 2."""
    carried = provenance(job.kind, job.params, {"seed": 42})
    versions, config = carried["library_versions"], carried["config"]
    if job.kind == "score":
        job.output_dir.mkdir(parents=True)
        (job.output_dir / "scores.jsonl").write_text('{"prompt": "p", "response": "r", "score": 0.5}\n')
        return TrainResult(job.output_dir, {"mean_score": 0.5}, config, versions)
    if job.kind == "reward_model":
        final = _folder(job.output_dir / "final", carried)
        return TrainResult(final, {"validation_accuracy": 0.5}, config, versions)
    checkpoints = []
    for step in (1, 2):
        folder = _folder(job.output_dir / f"checkpoint-{step}", {**carried, "step": step})
        job.on_checkpoint(step, folder, {"step": step, "mean_reward": step / 10})
        checkpoints.append((step, folder, {"step": step}))
    return TrainResult(checkpoints[-1][1], {"step": 2}, config, versions, checkpoints=checkpoints)


def _run(chain: Chain, stack: AppState, kind: str) -> dict[str, Any]:
    inputs: dict[str, Any] = {"dataset": {"id": chain.dataset["id"]}, "base_model": {"id": chain.base["id"]}}
    if kind in ("rloo", "grpo"):
        inputs["reward_checkpoint"] = {"id": chain.reward["id"]}
    if kind == "score":
        outputs = chain.trainer.post("/v1/blobs", content=b'{"prompt": "p", "response": "r"}\n').json()
        inputs = {"reward_checkpoint": {"id": chain.reward["id"]}, "outputs_blob": outputs["digest"]}
    body = {"kind": kind, "inputs": inputs, "params": PARAMS.get(kind, POLICY_PARAMS)}
    response = chain.trainer.post(chain.url("runs"), json=body)
    assert response.status_code == 202, response.text
    executor.execute(stack, response.json()["id"], "worker-test")
    done = chain.trainer.get(chain.url(f"runs/{response.json()['id']}")).json()
    assert done["status"] == "succeeded", done
    return dict(done)


@pytest.fixture
def chain(world: World, monkeypatch: pytest.MonkeyPatch) -> Chain:
    monkeypatch.setattr(dispatch, "run", fake_trainer)
    return Chain(world)


@pytest.mark.parametrize("kind", ["reward_model", "dpo", "rloo", "grpo", "score"])
def test_every_output_of_every_run_kind_records_its_library_versions(chain: Chain, stack: AppState, kind: str) -> None:
    run = _run(chain, stack, kind)
    expected = library_versions()
    assert set(expected) >= STACK
    records = [chain.trainer.get(f"/v1/records/{i}").json() for i in run["outputs"]]
    assert len(records) == (2 if kind in ("dpo", "rloo", "grpo") else 1)
    for record in records:
        metadata = record["spec"]["metadata"]
        assert metadata["library_versions"] == expected, (kind, record["spec"])
        assert metadata["run_id"] == run["id"] and metadata["config"] == {"seed": 42}
        assert "provenance" not in record["spec"].get("metrics", {})


def _closure(session: Any, runs: list[dict[str, Any]]) -> Closure:
    """The part of a package's closure its provenance reads: the runs and the records they output."""
    records = {i: session.get(Record, i) for run in runs for i in run["outputs"]}
    rows = {run["id"]: session.get(Run, run["id"]) for run in runs}
    unused: Any = None
    return Closure(
        project="p",
        deployment=unused,
        checkpoint=unused,
        approval=unused,
        policy=unused,
        records=records,
        graph=unused,
        series=[],
        events=[],
        audit=[],
        runs=rows,
    )


def test_provenance_of_each_training_run_lists_its_library_versions(chain: Chain, stack: AppState) -> None:
    runs = [_run(chain, stack, kind) for kind in ("reward_model", "dpo", "rloo", "grpo")]
    with stack.sessions.read() as session:
        statements = provenance_statements(_closure(session, runs), stack.blobs)
    assert sorted(path for path, _, _ in statements) == sorted(f"provenance/run-{r['id']}.json" for r in runs)
    for _, _, predicate in statements:
        assert predicate["buildDefinition"]["internalParameters"]["library_versions"] == library_versions()


def test_a_checkpoint_stored_without_them_is_read_from_its_folder(chain: Chain, stack: AppState) -> None:
    """A record registered before every checkpoint carried its versions: its folder's file still names them."""
    versions = {"python": "3.11.0", "torch": "2.3.0", "trl": "1.16.0"}
    written = json.dumps({"kind": "rloo", "library_versions": versions, "step": 3}).encode()
    blob = chain.trainer.post("/v1/blobs", content=written).json()
    files = [*chain.files("old"), {"path": "training_config.json", "digest": blob["digest"], "size": len(written)}]
    body = {
        "name": "old-series",
        "algorithm": "rloo",
        "reward_checkpoint": {"id": chain.reward["id"]},
        "reference_model": {"id": chain.base["id"]},
        "spec": {"files": files, "step": 3, "metrics": {"mean_reward": 0.1}},
    }
    old = chain.ok(chain.trainer, "policy-checkpoints", body)
    metadata = {"library_versions": {"python": "3.12.1"}}
    listed = chain.ok(chain.trainer, "policy-checkpoints", {**body, "spec": {**body["spec"], "metadata": metadata}})
    with stack.sessions.read() as session:
        old_record, listed_record = session.get(Record, old["id"]), session.get(Record, listed["id"])
        bare = session.get(Record, chain.series[0]["id"])
        assert old_record is not None and listed_record is not None and bare is not None
        assert library_versions_of([old_record], stack.blobs) == versions
        # what the record lists comes first; a record with neither lists nothing
        assert library_versions_of([listed_record, old_record], stack.blobs) == {"python": "3.12.1"}
        assert library_versions_of([bare], stack.blobs) == {}
