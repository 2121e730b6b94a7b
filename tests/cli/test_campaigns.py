"""`rlhf-registry campaigns export|import` against an in-process app: the blinded tasks written in each
format, and judgments scripted in Argilla's export layout registered back as an evaluation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.evaluations.formats import LABEL_STUDIO_CONFIG
from app.state import AppState
from tests.cli.bound import bound_cli, invoke
from tests.conftest import World
from tests.evaluations.test_campaign_kind import campaign_body, models_of, register, response_rows
from tests.packages.chain import PackageChain

pytestmark = [
    pytest.mark.parametrize("stack", ["sqlite-fs"], indirect=True, scope="session"),
    # the client passes timeout=None for uploads; the TestClient standing in for httpx warns
    pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument"),
]
RATERS = ["6f1c0b2e-1111-4a55-9d1e-0a6b0c9f1001", "6f1c0b2e-1111-4a55-9d1e-0a6b0c9f1002"]


@pytest.fixture(scope="module")
def chain(stack: AppState, _clients: TestClient) -> PackageChain:
    chain = PackageChain(World(stack, _clients))
    response = register(chain, campaign_body(chain, response_rows(models_of(chain))))
    assert response.status_code == 201, response.text
    return chain


@pytest.fixture
def cli(chain: PackageChain, monkeypatch: pytest.MonkeyPatch) -> Iterator[PackageChain]:
    with bound_cli(monkeypatch, chain.world.client.app, chain.trainer.headers):
        yield chain


def _ok(*args: str) -> str:
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return result.output


def test_export_writes_each_format(cli: PackageChain, tmp_path: Path) -> None:
    lines = tmp_path / "tasks.jsonl"
    output = _ok("campaigns", "export", cli.project, "policy-campaign", "-o", str(lines))
    assert f"60 tasks on 20 prompts of policy-campaign@1 -> {lines}" in output
    rows = [json.loads(line) for line in lines.read_text().splitlines()]
    assert len(rows) == 60 and all(set(row) == {"task_id", "prompt", "response_a", "response_b"} for row in rows)

    studio, config = tmp_path / "studio.json", tmp_path / "config.xml"
    _ok(
        "campaigns",
        "export",
        cli.project,
        "policy-campaign@1",
        "--format",
        "label-studio",
        "-o",
        str(studio),
        "--label-config",
        str(config),
    )
    assert [task["data"] for task in json.loads(studio.read_text())] == rows
    assert config.read_text() == LABEL_STUDIO_CONFIG

    records = tmp_path / "records.json"
    _ok("campaigns", "export", cli.project, "policy-campaign@latest", "--format", "argilla", "-o", str(records))
    assert [record["id"] for record in json.loads(records.read_text())] == [row["task_id"] for row in rows]


@pytest.mark.parametrize(
    "args",
    [["--format", "csv"], ["--format", "jsonl", "--label-config", "config.xml"]],
)
def test_export_usage_mistakes(cli: PackageChain, tmp_path: Path, args: list[str]) -> None:
    result = invoke("campaigns", "export", cli.project, "policy-campaign@1", "-o", str(tmp_path / "x"), *args)
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert not (tmp_path / "x").exists()


def _judged_records(path: Path) -> list[dict[str, Any]]:
    """The Argilla records as `dataset.records.to_json` writes them once two raters answered each."""
    records: list[dict[str, Any]] = json.loads(path.read_text())
    for number, record in enumerate(records):
        answers = ["A" if number % 3 else "B", "tie" if number % 4 == 0 else "A"]
        record["responses"] = {"preference": [{"value": v, "user_id": u} for v, u in zip(answers, RATERS, strict=True)]}
        record.update(suggestions={}, vectors={}, _server_id=f"5f0c9a9e-7a3b-4c55-9d1e-0a6b0c9f{number:04d}")
    return records


def test_import_registers_the_judgments_as_an_evaluation(cli: PackageChain, tmp_path: Path) -> None:
    exported = tmp_path / "records.json"
    _ok("campaigns", "export", cli.project, "policy-campaign@1", "--format", "argilla", "-o", str(exported))
    judged = tmp_path / "judged.json"
    judged.write_text(json.dumps(_judged_records(exported)))
    output = _ok(
        "campaigns", "import", cli.project, "policy-campaign@1", str(judged), "--format", "argilla", "--name", "panel-1"
    )
    assert "120 judgments by 2 evaluator(s)" in output
    evaluation = cli.trainer.get(cli.url("evaluations/panel-1/latest")).json()
    campaign = cli.trainer.get(cli.url("evaluation-campaigns/policy-campaign/1")).json()
    assert {"id": campaign["id"], "kind": "evaluation_campaign", "role": "campaign"} in evaluation["parents"]
    assert evaluation["spec"]["type"] == "human_preference"
    assert evaluation["spec"]["evidence_format"] == "argilla"
    assert evaluation["derived"]["judgments"] == 120
    assert evaluation["derived"]["evaluators"] == RATERS
    assert f"evaluation panel-1@1  id={evaluation['id']}  of campaign policy-campaign@1" in output
    assert "ratings panel-1@1" in output  # the table of the ratings the server derived


def test_import_refuses_a_bad_file_before_uploading_it(cli: PackageChain, tmp_path: Path) -> None:
    rows = [
        {"task_id": "t-000000000001", "evaluator": "alice", "choice": "a"},
        {"task_id": "t-000000000001", "evaluator": "bob", "choice": "left"},
    ]
    bad = tmp_path / "judgments.jsonl"
    bad.write_text("".join(json.dumps(r) + "\n" for r in rows))
    result = invoke("campaigns", "import", cli.project, "policy-campaign@1", str(bad), "--name", "bad-panel")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "row 1" in result.output and "choice" in result.output
    assert cli.trainer.get(cli.url("evaluations/bad-panel/latest")).status_code == 404

    bad.write_text(json.dumps(rows[0]) + "\n")
    unknown = invoke("campaigns", "import", cli.project, "no-campaign@1", str(bad), "--name", "x")
    assert unknown.exit_code == 1  # the file is fine; the campaign is not found
    assert "not_found" in unknown.output


def test_import_names_the_tools_users_as_principals_and_candidate_reads_the_choice(
    cli: PackageChain, tmp_path: Path
) -> None:
    exported = tmp_path / "records.json"
    _ok("campaigns", "export", cli.project, "policy-campaign@1", "--format", "argilla", "-o", str(exported))
    judged = tmp_path / "judged.json"
    judged.write_text(json.dumps(_judged_records(exported)))
    names = ["--evaluator", f"{RATERS[0]}=ann", "--evaluator", f"{RATERS[1]}=bo.b"]
    args = ["campaigns", "import", cli.project, "policy-campaign@1", str(judged), "--format", "argilla"]
    _ok(*args, "--name", "panel-named", *names)
    evaluation = cli.trainer.get(cli.url("evaluations/panel-named/latest")).json()
    assert evaluation["derived"]["evaluators"] == ["ann", "bo.b"]
    assert evaluation["spec"]["evaluator_names"] == {RATERS[0]: "ann", RATERS[1]: "bo.b"}

    # a name of nobody in the file, and a name that is no principal's, are refused before anything is stored
    typo = invoke(*args, "--name", "panel-typo", "--evaluator", "ls-user-9=ann")
    assert typo.exit_code == 1 and "judged nothing" in typo.output
    bad = invoke(*args, "--name", "panel-bad", "--evaluator", f"{RATERS[0]}=ann@example.org")
    assert bad.exit_code == 1 and "principal name" in bad.output
    for name in ("panel-typo", "panel-bad"):
        assert cli.trainer.get(cli.url(f"evaluations/{name}/latest")).status_code == 404

    series = evaluation["derived"]["series"]
    output = _ok("campaigns", "candidate", cli.project, series, "--human-only")
    chosen = evaluation["derived"]["candidate"]
    assert output.strip().splitlines()[-1] == f"{chosen['name']}@{chosen['version']}"
    assert "judgments by people" in output
