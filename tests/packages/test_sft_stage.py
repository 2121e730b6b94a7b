"""The supervised fine-tuning stage in a handoff package: a policy trained on from an sft checkpoint
brings the sft checkpoint, its demonstration set and that set's required figures into the package, whose
lineage verifies offline back to the criteria."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from app.packages.verify import verify_archive
from app.state import AppState
from tests.conftest import World
from tests.packages.chain import PackageChain


def sft_stage(chain: PackageChain) -> tuple[dict[str, Any], dict[str, Any]]:
    """A demonstration set on the chain's prompt set and an sft checkpoint trained on it."""
    demonstrations = chain.ok(
        chain.annotator,
        "demonstration-sets",
        {
            "name": "written",
            "criteria": {"id": chain.criteria["id"]},
            "prompt_set": {"id": chain.prompt_set["id"]},
            "spec": {
                "procedure": "Two contractors wrote one answer per prompt following the criteria.",
                "demonstrations": [
                    {"id": f"d{i}", "prompt_id": f"q{i}", "response": f"Answer {i}.", "author": "writer"}
                    for i in range(8)
                ],
            },
        },
    )
    sft = chain.ok(
        chain.trainer,
        "policy-checkpoints",
        {
            "name": "sft",
            "algorithm": "sft",
            "demonstrations": {"id": demonstrations["id"]},
            "reference_model": {"id": chain.base["id"]},
            "spec": {"files": chain.files("sft"), "step": 30, "metrics": {"train_loss": 1.9}},
        },
    )
    return demonstrations, sft


def test_a_package_shows_the_sft_stage(stack: AppState, _clients: TestClient, tmp_path: Path) -> None:
    chain = PackageChain(World(stack, _clients))
    demonstrations, sft = sft_stage(chain)
    # the chain's batches annotate prompts q0..q19 and its dataset holds them: the demonstrations share them
    assert demonstrations["derived"]["in_preference_data"]["prompts"] == 8
    policy = chain.ok(
        chain.trainer,
        "policy-checkpoints",
        {
            "name": "policy-on-sft",
            "algorithm": "rloo",
            "reward_checkpoint": {"id": chain.reward["id"]},
            "reference_model": {"id": sft["id"]},
            "spec": {"files": chain.files("rloo-on-sft"), "kl_coefficient": 0.05, "step": 20},
        },
    )
    chain.chosen = policy
    chain.evaluations = [
        chain.evaluation(policy, "human_preference", "hp-sft"),
        chain.evaluation(policy, "adversarial", "adv-sft"),
    ]
    deployment = chain.approved(name="prod-sft")
    response = chain.build(deployment)
    assert response.status_code == 201, response.text
    archive = chain.download(response.json())
    with zipfile.ZipFile(io.BytesIO(archive)) as opened:
        names = set(opened.namelist())
        html = next(opened.read(n) for n in names if n.endswith(".html")).decode()
    assert {f"records/{demonstrations['id']}.json", f"records/{sft['id']}.json"} <= names
    assert "demonstration_set written v1" in html and "policy_checkpoint sft v1" in html
    path = tmp_path / "package.zip"
    path.write_bytes(archive)
    report = verify_archive(path)
    assert report.ok, report.failures
    assert any("criteria" in line for line in report.checked)
