"""The OpenAPI document is the contract: a client generated from it (openapi-python-client) builds each
kind's typed registration body, and a real server (uvicorn in a thread) stores what it sends."""

from __future__ import annotations

import importlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from app.core.settings import Settings
from tests.conftest import make_settings
from tests.factories import criteria_body
from tests.support.live_app import Live, served

GENERATOR = Path(sys.executable).parent / "openapi-python-client"
PACKAGE = "registry_client"


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Live]:
    settings: Settings = make_settings("sqlite-fs", tmp_path_factory.mktemp("generated-client"), request)
    with served(settings) as running:
        yield running


@pytest.fixture(scope="module")
def generated(live: Live, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    root = tmp_path_factory.mktemp("client")
    document = root / "openapi.json"
    document.write_bytes(live.world.client.get("/openapi.json").content)
    subprocess.run(
        [str(GENERATOR), "generate", "--path", str(document), "--output-path", str(root / PACKAGE), "--meta", "none"],
        check=True,
        capture_output=True,
        timeout=180,
    )
    sys.path.insert(0, str(root))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(root))
        for name in [name for name in sys.modules if name == PACKAGE or name.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


def test_a_generated_client_registers_a_criteria_and_an_evaluation(live: Live, generated: ModuleType) -> None:
    world = live.world
    project = world.project()
    client = generated.AuthenticatedClient(base_url=live.url, token=world.admin.token)
    models = _module("models")

    criteria = models.CriteriaCreate.from_dict(criteria_body("1.0.0"))
    register_criteria = _module("api.criteria.register_v1_projects_project_criteria_post")
    answer = register_criteria.sync_detailed(project=project, client=client, body=criteria)
    assert answer.status_code == 201, answer.content
    assert answer.parsed.kind == "criteria" and answer.parsed.version == "1.0.0"

    base = world.admin.post(
        f"/v1/projects/{project}/base-models",
        json={"name": "ext", "spec": {"external": {"hub_id": "org/model", "revision": "a" * 40}}},
    )
    assert base.status_code == 201, base.text
    evaluation = models.EvaluationCreate(
        name="helpfulness",
        spec=models.EvaluationCreateEvaluationSpec(type_=models.EvaluationCreateEvaluationSpecType.HUMAN_PREFERENCE),
        target=models.RecordRef(id=base.json()["id"]),
    )
    register_evaluation = _module("api.evaluations.register_v1_projects_project_evaluations_post")
    answer = register_evaluation.sync_detailed(project=project, client=client, body=evaluation)
    assert answer.status_code == 201, answer.content
    assert answer.parsed.kind == "evaluation"
    assert answer.parsed.parents[0].id == base.json()["id"]

    stored = world.admin.get(f"/v1/records/{answer.parsed.id}").json()
    assert stored["spec"]["type"] == "human_preference"
