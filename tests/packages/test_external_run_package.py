"""A deployment of a checkpoint an external run registered: the package's SLSA statement for that run names
the builder of the request and says that the registry did not execute it, the handoff page says so, and
the web pages show the run."""

from __future__ import annotations

import base64
import io
import json
import zipfile
from typing import Any

from fastapi.testclient import TestClient

from app.packages.provenance import BUILD_TYPE_EXTERNAL
from app.state import AppState
from tests.conftest import World
from tests.packages.chain import PackageChain
from tests.web.support import browser, sign_in

BUILDER = "https://github.com/example/rlhf-jobs/.github/workflows/rloo.yml"


def test_the_package_names_the_external_builder(stack: AppState, _clients: TestClient) -> None:
    chain = PackageChain(World(stack, _clients))
    run = chain.trainer.post(
        chain.url("runs"),
        json={
            "kind": "external",
            "inputs": {
                "base_model": {"id": chain.base["id"]},
                "dataset": {"id": chain.dataset["id"]},
                "reward_checkpoint": {"id": chain.reward["id"]},
            },
            "builder": {"id": BUILDER},
            "params": {"learning_rate": 1e-6},
            "output_name": "external-policy",
        },
    ).json()
    headers = {"Authorization": f"Bearer {run['token']}"}
    registered = _clients.post(
        chain.url(f"runs/{run['id']}/checkpoints"),
        headers=headers,
        json={"kind": "policy_checkpoint", "algorithm": "rloo", "spec": {"files": chain.files("ext"), "step": 10}},
    )
    assert registered.status_code == 201, registered.text
    checkpoint = registered.json()
    roles = {p["role"]: p["id"] for p in checkpoint["parents"]}
    assert roles == {
        "reference_model": chain.base["id"],
        "dataset": chain.dataset["id"],
        "reward_checkpoint": chain.reward["id"],
    }
    finished = _clients.post(chain.url(f"runs/{run['id']}/finish"), headers=headers, json={"status": "succeeded"})
    assert finished.json()["status"] == "succeeded"
    chain.chosen = checkpoint
    chain.evaluations = [
        chain.evaluation(checkpoint, "human_preference", "ext-hp"),
        chain.evaluation(checkpoint, "adversarial", "ext-adv"),
    ]
    built = chain.build(chain.approved(name="external"))
    assert built.status_code == 201, built.text
    with zipfile.ZipFile(io.BytesIO(chain.download(built.json()))) as archive:
        envelope = json.loads(archive.read(f"provenance/run-{run['id']}.json"))
        html = archive.read("handoff.html").decode()
    statement: dict[str, Any] = json.loads(base64.b64decode(envelope["payload"]))
    predicate = statement["predicate"]
    assert predicate["runDetails"]["builder"] == {"id": BUILDER}
    assert predicate["buildDefinition"]["buildType"] == BUILD_TYPE_EXTERNAL
    assert predicate["buildDefinition"]["internalParameters"]["executed_by_registry"] is False
    assert [s["name"] for s in statement["subject"] if "/" not in s["name"]] == [f"record:{checkpoint['id']}"]
    assert f"trained outside the registry by <code>{BUILDER}</code>" in html
    # the web pages show the run and its checkpoint as they show any run's
    client = browser(chain.world)
    sign_in(client, chain.trainer.token)
    for page in (f"/web/runs/{run['id']}", f"/web/records/{checkpoint['id']}"):
        assert client.get(page).status_code == 200, page
