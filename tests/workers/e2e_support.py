"""A registry with a real PandaLM chain and a tiny base model, and real Celery worker processes."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app.importers import from_pandalm
from app.main import create_app
from app.runs.queue import CeleryDispatcher
from app.state import AppState
from tests.conftest import Api, World
from tests.factories import criteria_body
from tests.importers.spec_checks import shared_data
from tests.support.tiny_models import build_tiny_lm, build_tokenizer

CLI = str(Path(sys.executable).parent / "rlhf-registry")


def state_with_broker(stack: AppState, broker_url: str, **settings: Any) -> AppState:
    """The stack's database and blobs, sending runs to `broker_url`; short leases for the tests."""
    changed = stack.settings.model_copy(
        update={"broker_url": broker_url, "run_lease_seconds": 3.0, "reaper_interval_seconds": 0.5, **settings}
    )
    state = dataclasses.replace(stack, settings=changed)
    state.dispatcher = CeleryDispatcher(changed)
    return state


def worker_env(state: AppState) -> dict[str, str]:
    settings = state.settings
    env = {k: v for k, v in os.environ.items() if not k.startswith("RLHF_REGISTRY_")}
    env.update(
        RLHF_REGISTRY_DATA_DIR=str(settings.data_dir),
        RLHF_REGISTRY_DATABASE_URL=settings.database_url,
        RLHF_REGISTRY_BLOB_URL=settings.blob_url,
        RLHF_REGISTRY_BROKER_URL=settings.broker_url,
        RLHF_REGISTRY_RUN_LEASE_SECONDS=str(settings.run_lease_seconds),
        RLHF_REGISTRY_REAPER_INTERVAL_SECONDS=str(settings.reaper_interval_seconds),
        RLHF_REGISTRY_LOG_LEVEL="WARNING",
        OMP_NUM_THREADS="1",
    )
    if settings.s3_endpoint_url:
        env["RLHF_REGISTRY_S3_ENDPOINT_URL"] = settings.s3_endpoint_url
        for name in ("s3_access_key_id", "s3_secret_access_key"):
            secret = getattr(settings, name)
            if secret is not None:
                env[f"RLHF_REGISTRY_{name.upper()}"] = secret.get_secret_value()
    return env


@contextmanager
def celery_worker(state: AppState, log_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`rlhf-registry worker` in its own process group, killed (group and all) at the end."""
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [CLI, "worker"], env=worker_env(state), stdout=log, stderr=log, start_new_session=True
        )
        try:
            yield process
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()


@dataclasses.dataclass
class Registry:
    client: TestClient
    world: World
    project: str
    trainer: Api
    approver: Api
    dataset: dict[str, Any]
    base: dict[str, Any]

    def url(self, path: str) -> str:
        return f"/v1/projects/{self.project}/{path}"

    def start(self, kind: str, inputs: dict[str, Any], params: dict[str, Any], name: str) -> dict[str, Any]:
        response = self.trainer.post(
            self.url("runs"), json={"kind": kind, "inputs": inputs, "params": params, "output_name": name}
        )
        assert response.status_code == 202, response.text
        return dict(response.json())

    def wait(self, run_id: str, statuses: tuple[str, ...], timeout_s: float = 300) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            run = self.trainer.get(self.url(f"runs/{run_id}")).json()
            if run["status"] in statuses:
                return dict(run)
            time.sleep(0.5)
        raise AssertionError(f"run {run_id} did not reach {statuses}: {run}")


def upload_folder(api: Api, folder: Path) -> list[dict[str, Any]]:
    files = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = path.read_bytes()
        blob = api.post("/v1/blobs", content=data).json()
        files.append({"path": path.relative_to(folder).as_posix(), "digest": blob["digest"], "size": len(data)})
    return files


def build_registry(client: TestClient, state: AppState, tmp: Path, pairs: int = 120) -> Registry:
    world = World(state, client)
    project = world.project()
    annotator = world.member(project, "annotator")
    trainer = world.member(project, "trainer")
    approver = world.member(project, "approver")
    result = from_pandalm(shared_data("pandalm/testset-v1.json"))
    keep = {i["pair_id"] for i in result.items[: pairs * 3]}
    items = [i for i in result.items if i["pair_id"] in keep]
    used = {i["prompt_id"] for i in items}
    prompts = [
        {**p, "privacy_reviewed": True, "source": "adversarial" if n % 7 == 0 else p["source"]}
        for n, p in enumerate(p for p in result.prompts if p["id"] in used)
    ]
    assert world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body()).status_code == 201
    response = annotator.post(
        f"/v1/projects/{project}/prompt-sets",
        json={
            "name": "pandalm",
            "version": "1.0.0",
            "spec": {"sampling_procedure": "PandaLM test set", "prompts": prompts},
        },
    )
    assert response.status_code == 201, response.text
    blob = annotator.post("/v1/blobs", content="".join(json.dumps(i) + "\n" for i in items).encode()).json()
    batch = annotator.post(
        f"/v1/projects/{project}/annotation-batches",
        json={
            "name": "pandalm",
            "criteria": {"name": "assistant-quality", "version": "1.0.0"},
            "prompt_set": {"name": "pandalm", "version": "1.0.0"},
            "spec": {
                **{k: v for k, v in result.batch_meta.items() if v is not None},
                "collected_from": "2023-06-01",
                "collected_to": "2023-06-30",
                "items_blob": blob["digest"],
            },
        },
    )
    assert batch.status_code == 201, batch.text
    dataset = annotator.post(
        f"/v1/projects/{project}/preference-datasets",
        json={"name": "pandalm", "batches": [{"id": batch.json()["id"]}], "spec": {"seed": 0}},
    )
    assert dataset.status_code == 201, dataset.text
    texts = [p["text"] for p in prompts] + [i["response_a"] for i in items] + [i["response_b"] for i in items]
    tokenizer = build_tokenizer(tmp / "tokenizer", texts)
    lm = build_tiny_lm(tmp / "lm", tokenizer)
    base = trainer.post(
        f"/v1/projects/{project}/base-models",
        json={"name": "tiny-llama", "spec": {"files": upload_folder(trainer, lm), "architecture": "llama"}},
    )
    assert base.status_code == 201, base.text
    return Registry(client, world, project, trainer, approver, dataset.json(), base.json())


@contextmanager
def registry_app(state: AppState) -> Iterator[TestClient]:
    with TestClient(create_app(state=state), raise_server_exceptions=False) as client:
        yield client
