"""`rlhf-registry demonstrations import` against an in-process app: a messages file registered as a prompt set and a
demonstration set, and the mistakes it refuses before registering anything."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.bound import bound_cli, invoke
from tests.conftest import Api, World
from tests.factories import criteria_body

pytestmark = [
    pytest.mark.parametrize("stack", ["sqlite-fs"], indirect=True),
    pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument"),
]
ROWS = [
    {"messages": [{"role": "user", "content": f"Question {i}?"}, {"role": "assistant", "content": f"Answer {i}."}]}
    for i in range(4)
]


@pytest.fixture
def place(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Api]]:
    project = world.project()
    assert world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body()).status_code == 201
    with bound_cli(monkeypatch, world.client.app, world.admin.headers):
        yield project, world.admin


def _file(tmp_path: Path) -> Path:
    path = tmp_path / "chats.jsonl"
    path.write_text("".join(json.dumps(row) + "\n" for row in ROWS), encoding="utf-8")
    return path


def _args(project: str, source: Path, *extra: str) -> list[str]:
    return [
        "demonstrations", "import", "messages", str(source), "--project", project,
        "--criteria", "assistant-quality@latest", "--prompt-set", "chats@1.0.0", "--name", "chats", *extra,
    ]  # fmt: skip


def test_a_messages_file_is_registered(place: tuple[str, Api], tmp_path: Path) -> None:
    project, admin = place
    result = invoke(*_args(project, _file(tmp_path), "--prompt-source", "expert", "--author", "writer-1"))
    assert result.exit_code == 0, result.output
    assert "imported 4 demonstrations on 4 prompts" in result.output
    record = admin.get(f"/v1/projects/{project}/demonstration-sets/chats/latest").json()
    assert record["derived"]["count"] == 4 and record["derived"]["authors"] == 1
    assert record["derived"]["coverage"]["source"] == {"expert": 4}
    assert record["spec"]["demonstrations_blob"].startswith("sha256:")
    prompt_set = admin.get(f"/v1/projects/{project}/prompt-sets/chats/1.0.0").json()
    assert prompt_set["derived"]["count"] == 4


def test_mistakes_are_refused_before_anything_is_registered(place: tuple[str, Api], tmp_path: Path) -> None:
    project, admin = place
    source = _file(tmp_path)
    unreviewed = invoke(*_args(project, source))
    assert unreviewed.exit_code == 1 and "--privacy-reviewed" in unreviewed.output
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "a"}\n', encoding="utf-8")
    shape = invoke(*_args(project, bad, "--privacy-reviewed"))
    assert shape.exit_code == 1 and "--messages-field" in shape.output
    assert "Traceback" not in shape.output
    unknown = invoke(*[a if a != "messages" else "alpaca" for a in _args(project, source)])
    assert unknown.exit_code == 2
    assert admin.get(f"/v1/projects/{project}/prompt-sets/chats/1.0.0").status_code == 404
