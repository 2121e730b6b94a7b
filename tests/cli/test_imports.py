"""`rlhf-registry import` with the importers' options, against an in-process app: Argilla's
`Settings.for_ranking` layout, fields named on the command line, a Label Studio export of one task."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.cli.bound import bound_cli, invoke
from tests.conftest import Api, World
from tests.factories import criteria_body
from tests.importers.spec_checks import FIXTURES

pytestmark = [
    pytest.mark.parametrize("stack", ["sqlite-fs"], indirect=True),
    # the client passes timeout=None for uploads; the TestClient standing in for httpx warns
    pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument"),
]
DATED = ["--privacy-reviewed", "--collected-from", "2026-11-01", "--collected-to", "2026-11-02"]


@dataclass
class Place:
    project: str
    admin: Api

    def args(self, fmt: str, source: Path, version: str, *options: str) -> list[str]:
        where = ["--project", self.project, "--criteria", "assistant-quality@latest", "--batch", fmt]
        return ["import", fmt, str(source), *where, "--prompt-set", f"{fmt}@{version}", *DATED, *options]

    def imported(self, fmt: str, source: Path, version: str, *options: str) -> Any:
        result = invoke(*self.args(fmt, source, version, *options))
        assert result.exit_code == 0, result.output
        assert "Traceback" not in result.output
        return result

    def batch(self, name: str) -> dict[str, Any]:
        response = self.admin.get(f"/v1/projects/{self.project}/annotation-batches/{name}/latest")
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture
def place(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[Place]:
    project = world.project()
    assert world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body()).status_code == 201
    with bound_cli(monkeypatch, world.client.app, world.admin.headers):
        yield Place(project, world.admin)


def _ranking_records(prompt: str, first: str, second: str, question: str) -> list[dict[str, Any]]:
    return [
        {
            "id": f"rec-{n}",
            prompt: f"question {n}?",
            first: f"answer one to {n}",
            second: f"answer two to {n}",
            f"{question}.responses": [[first, second], [second, first]],
            f"{question}.responses.users": ["ann-1", "ann-2"],
            f"{question}.responses.status": ["submitted", "submitted"],
        }
        for n in range(3)
    ]


def test_argilla_for_ranking_layout_and_named_fields(place: Place, tmp_path: Path) -> None:
    source = tmp_path / "ranking.jsonl"
    source.write_text(
        "".join(json.dumps(r) + "\n" for r in _ranking_records("instruction", "response1", "response2", "ranking"))
    )
    result = place.imported("argilla", source, "1.0.0")
    assert "imported 6 judgements on 3 prompts" in result.output
    assert place.batch("argilla")["derived"]["items"] == 6

    renamed = tmp_path / "renamed.json"
    renamed.write_text(json.dumps(_ranking_records("ask", "left", "right", "order")))
    options = ["--prompt-field", "ask", "--response-a-field", "left", "--response-b-field", "right"]
    refused = invoke(*place.args("argilla", renamed, "2.0.0", *options))
    assert refused.exit_code == 1 and "--question" in refused.output and "Traceback" not in refused.output
    place.imported("argilla", renamed, "2.0.0", *options, "--question", "order")


def test_label_studio_single_task_and_hf_field_names(place: Place, tmp_path: Path) -> None:
    task = json.loads((FIXTURES / "label_studio_pairwise.json").read_text())[0]
    single = tmp_path / "task.json"
    single.write_text(json.dumps(task))
    place.imported("label-studio", single, "1.0.0")
    assert {item["pair_id"] for item in _items(place, "label-studio")} == {f"ls-{task['id']}"}

    rows = tmp_path / "rows.jsonl"
    rows.write_text("".join(json.dumps({"q": f"prompt {n}", "good": "yes", "bad": "no"}) + "\n" for n in range(4)))
    missing = invoke(*place.args("hf-jsonl", rows, "1.0.0"))
    assert missing.exit_code == 1 and "--chosen-field" in missing.output
    place.imported(
        "hf-jsonl", rows, "1.0.0", "--prompt-field", "q", "--chosen-field", "good", "--rejected-field", "bad"
    )
    assert place.batch("hf-jsonl")["derived"]["items"] == 4


def _items(place: Place, batch: str) -> list[dict[str, Any]]:
    record = place.batch(batch)
    digest = record["spec"]["items_blob"]
    response = place.admin.get(f"/v1/blobs/{digest}")
    assert response.status_code == 200
    return [json.loads(line) for line in response.text.splitlines() if line.strip()]
