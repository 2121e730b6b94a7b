"""A team's own training reported into the registry: a plain TRL script trains a tiny DPO model on the
inputs of an external run, downloaded and verified by digest, with `RegistryCallback` streaming its
metrics and registering its checkpoints against a real `serve`; the run's token opens nothing else."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.client import ApiError, RegistryClient
from app.client.callback import RegistryCallback
from app.client.external import ExternalRun
from app.client.uploads import push_folder
from app.core.settings import Settings
from app.packages.provenance import BUILD_TYPE_EXTERNAL, run_statement
from app.records.models import Record
from app.runs.models import Run
from app.state import AppState
from bench.serving import Served, serve
from tests.factories import agreeing_items, batch_body, criteria_body, prompt_set_body
from tests.support.tiny_models import build_tiny_lm, build_tokenizer

pytest.importorskip("trl")

BUILDER = "https://github.com/example/rlhf-jobs/.github/workflows/train.yml"
PROJECT, OTHER = "external-training", "elsewhere"


@dataclass
class Trained:
    served: Served
    data_dir: Path
    admin: RegistryClient
    run: ExternalRun
    inputs: dict[str, dict[str, Any]]
    folders: dict[str, Path]
    callback: RegistryCallback


def _setup_inputs(admin: RegistryClient, tmp: Path) -> dict[str, Any]:
    for name in (PROJECT, OTHER):
        admin.create_project(name, "external training")
    admin.register(PROJECT, "criteria", criteria_body())
    prompts = prompt_set_body()
    admin.register(PROJECT, "prompt-sets", prompts)
    items = agreeing_items(12)
    batch = admin.register(PROJECT, "annotation-batches", batch_body(items))
    dataset = admin.register(PROJECT, "preference-datasets", {"name": "prefs", "batches": [{"id": batch["id"]}]})
    texts = [p["text"] for p in prompts["spec"]["prompts"]] + [i["response_a"] for i in items]
    texts += [i["response_b"] for i in items]
    lm = build_tiny_lm(tmp / "lm", build_tokenizer(tmp / "tokenizer", texts))
    base = push_folder(admin, PROJECT, "base-models", lm, {"name": "tiny-llama", "spec": {"architecture": "llama"}})
    return {"base_model": {"id": base["id"]}, "dataset": {"id": dataset["id"]}}


def _train_dpo(folders: dict[str, Path], output_dir: Path, callback: RegistryCallback) -> None:
    """What a team's own script does: TRL's DPOTrainer on the downloaded model and dataset."""
    import pyarrow.parquet as pq
    from datasets import Dataset  # type: ignore[import-untyped]
    from transformers import AutoTokenizer
    from trl import DPOConfig, DPOTrainer

    rows = pq.read_table(folders["dataset"] / "dataset.parquet").to_pylist()
    train = Dataset.from_dict({key: [row[key] for row in rows] for key in ("prompt", "chosen", "rejected")})
    config = DPOConfig(
        output_dir=str(output_dir),
        max_steps=4,
        save_steps=2,
        logging_steps=1,
        per_device_train_batch_size=2,
        max_length=64,
        use_cpu=True,
        bf16=False,
        report_to="none",
        disable_tqdm=True,
    )
    tokenizer = AutoTokenizer.from_pretrained(folders["base_model"])
    trainer = DPOTrainer(
        model=str(folders["base_model"]),
        args=config,
        train_dataset=train,
        processing_class=tokenizer,
        callbacks=[callback],
    )
    trainer.train()


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Trained]:
    tmp = tmp_path_factory.mktemp("external")
    with serve(tmp / "registry") as served, RegistryClient(served.url, served.token) as admin:
        inputs = _setup_inputs(admin, tmp)
        run = ExternalRun.start(admin, PROJECT, inputs=inputs, builder={"id": BUILDER}, params={"beta": 0.1})
        # the training job knows the run by its id and token only
        job = ExternalRun(served.url, PROJECT, run.run_id, run.token)
        folders = job.download_inputs(tmp / "inputs")
        callback = RegistryCallback(job, algorithm="dpo")
        _train_dpo(folders, tmp / "out", callback)
        yield Trained(served, tmp / "registry", admin, job, inputs, folders, callback)
        job.close()
        run.close()


def test_inputs_arrive_verified(trained: Trained) -> None:
    assert (trained.folders["base_model"] / "config.json").is_file()
    assert (trained.folders["dataset"] / "dataset.parquet").is_file()
    assert not list(trained.folders["base_model"].rglob("*.part"))
    state = trained.admin.run(PROJECT, trained.run.run_id)
    assert state["status"] == "running" and state["kind"] == "external"
    assert state["params"]["builder"] == {"id": BUILDER}
    assert "token" not in state or state["token"] is None  # shown once, by the POST only


def test_metrics_and_checkpoints_are_reported(trained: Trained) -> None:
    events = trained.admin.run_events(PROJECT, trained.run.run_id)
    steps = [e["data"]["step"] for e in events if e["type"] == "metrics" and "loss" in e["data"]]
    assert steps == [1, 2, 3, 4]
    registered = trained.callback.registered
    assert [r["spec"]["step"] for r in registered] == [2, 4]
    run = trained.admin.run(PROJECT, trained.run.run_id)
    assert run["outputs"] == [r["id"] for r in registered]
    for checkpoint in registered:
        record = trained.admin.get_record(checkpoint["id"])
        assert record["kind"] == "policy_checkpoint" and record["spec"]["algorithm"] == "dpo"
        assert record["spec"]["run_id"] == trained.run.run_id
        parents = {p["role"]: p["id"] for p in record["parents"]}
        assert parents == {
            "reference_model": trained.inputs["base_model"]["id"],
            "dataset": trained.inputs["dataset"]["id"],
        }
        paths = {f["path"] for f in record["spec"]["files"]}
        assert "model.safetensors" in paths and not any(p.startswith("optimizer") for p in paths)


def _as_run(trained: Trained, method: str, path: str, **kwargs: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {trained.run.token}"}
    return httpx.request(method, trained.served.url + path, headers=headers, timeout=30, **kwargs)


def test_the_token_opens_its_run_only(trained: Trained) -> None:
    other = ExternalRun.start(trained.admin, PROJECT, inputs=trained.inputs, builder={"id": BUILDER})
    try:
        refused = [
            _as_run(trained, "GET", f"/v1/projects/{OTHER}/runs"),
            _as_run(trained, "GET", f"/v1/projects/{OTHER}/runs/{trained.run.run_id}/inputs"),
            _as_run(trained, "GET", f"/v1/projects/{PROJECT}/runs/{other.run_id}/inputs"),
            _as_run(trained, "POST", f"/v1/projects/{PROJECT}/runs/{other.run_id}/finish", json={"status": "failed"}),
            _as_run(trained, "POST", f"/v1/projects/{PROJECT}/criteria", json=criteria_body("2.0.0")),
            _as_run(trained, "GET", f"/v1/projects/{PROJECT}/runs/{trained.run.run_id}"),
        ]
        assert [(r.status_code, r.json()["code"]) for r in refused] == [(403, "run_token_scope")] * len(refused)
        # a blob that is none of the run's inputs, and parents named by the body, are refused too
        digest = trained.callback.registered[0]["spec"]["files"][0]["digest"]
        missing = _as_run(trained, "GET", f"/v1/projects/{PROJECT}/runs/{trained.run.run_id}/inputs/blobs/{digest}")
        assert missing.status_code == 404
        named = _as_run(
            trained,
            "POST",
            f"/v1/projects/{PROJECT}/runs/{trained.run.run_id}/checkpoints",
            json={"kind": "policy_checkpoint", "algorithm": "dpo", "reference_model": {"id": digest}, "spec": {}},
        )
        assert (named.status_code, named.json()["code"]) == (422, "validation_failed")
        # cancelled by a person, the other run ends at once and its token dies with it
        assert trained.admin.cancel_run(PROJECT, other.run_id)["status"] == "cancelled"
        with pytest.raises(ApiError) as dead:
            other.log("still there?")
        assert dead.value.status == 401
    finally:
        other.close()


def test_provenance_names_the_external_builder(trained: Trained) -> None:
    state = AppState.build(Settings(data_dir=trained.data_dir))
    with state.sessions.read() as session:
        run = session.execute(select(Run).where(Run.id == trained.run.run_id)).scalar_one()
        ids = [*run.outputs, *(str(p["id"]) for p in run.inputs.values())]
        records = {r.id: r for r in session.scalars(select(Record).where(Record.id.in_(ids)))}
        outputs = [records[i] for i in run.outputs]
        predicate = run_statement(PROJECT, records, run, outputs, state.blobs)
    assert predicate["runDetails"]["builder"] == {"id": BUILDER}
    assert predicate["buildDefinition"]["buildType"] == BUILD_TYPE_EXTERNAL
    assert predicate["buildDefinition"]["internalParameters"]["executed_by_registry"] is False
    roles = {
        d["annotations"]["role"] for d in predicate["buildDefinition"]["resolvedDependencies"] if "annotations" in d
    }
    assert roles == {"base_model", "dataset"}


def test_finishing_ends_the_token(trained: Trained) -> None:
    assert trained.run.finish()["status"] == "succeeded"
    assert trained.admin.run(PROJECT, trained.run.run_id)["status"] == "succeeded"
    with pytest.raises(ApiError) as ended:
        trained.run.log_metrics(5, {"loss": 0.1})
    assert ended.value.status == 401
