"""Lists, `name@version` references and dataset builds through the CLI, against an in-process app:
`projects list`, `records list`, `runs list`, `get`/`trace` by name, `datasets build`, `criteria diff`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from tests.cli.bound import bound_cli, invoke
from tests.conftest import World
from tests.decisions.test_model_chain import Chain
from tests.factories import criteria_body, reranked_dimensions

# the CLI is a client: one stack is enough
pytestmark = [
    pytest.mark.parametrize("stack", ["sqlite-fs"], indirect=True),
    # the client passes timeout=None for uploads; the TestClient standing in for httpx warns
    pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument"),
]


@pytest.fixture
def chain(world: World, monkeypatch: pytest.MonkeyPatch) -> Iterator[Chain]:
    chain = Chain(world)
    with bound_cli(monkeypatch, world.client.app, chain.admin.headers):
        yield chain


def test_projects_list(chain: Chain) -> None:
    table = invoke("projects", "list")
    assert table.exit_code == 0, table.output
    assert chain.project in table.output
    listed = json.loads(invoke("projects", "list", "--json").output)
    assert chain.project in {item["name"] for item in listed}


def test_records_list_by_kind_name_or_collection(chain: Chain) -> None:
    by_kind = invoke("records", "list", chain.project, "annotation_batch")
    assert by_kind.exit_code == 0, by_kind.output
    assert f"vendor-a-week-47@{chain.batch['version']}" in by_kind.output and chain.batch["id"] in by_kind.output
    by_path = json.loads(invoke("records", "list", chain.project, "policy-checkpoints", "--json").output)
    assert [r["id"] for r in by_path] == [r["id"] for r in chain.series]
    named = json.loads(invoke("records", "list", chain.project, "criteria", "--name", "nothing", "--json").output)
    assert named == []
    wrong = invoke("records", "list", chain.project, "no-such-kind")
    assert wrong.exit_code == 2 and "no kind or collection named 'no-such-kind'" in wrong.output
    assert "preference_dataset (preference-datasets)" in wrong.output


def test_runs_list_shows_runs_in_full(chain: Chain) -> None:
    body = {
        "kind": "reward_model",
        "inputs": {"dataset": {"id": chain.dataset["id"]}, "base_model": {"id": chain.base["id"]}},
        "params": {"max_steps": 2, "seed": 1},
        "output_name": "rm-run",
    }
    run = chain.trainer.post(chain.url("runs"), json=body).json()
    table = invoke("runs", "list", chain.project)
    assert table.exit_code == 0, table.output
    assert run["id"] in table.output and "rm-run" in table.output and "queued" in table.output
    listed = json.loads(invoke("runs", "list", chain.project, "--json").output)
    assert [r["id"] for r in listed] == [run["id"]]


def test_records_named_by_name_and_version(chain: Chain) -> None:
    latest = invoke("get", f"{chain.project}/criteria/assistant-quality@latest")
    assert latest.exit_code == 0, latest.output
    assert json.loads(latest.output)["id"] == chain.criteria["id"]
    pinned = json.loads(invoke("get", chain.project, "criteria", "assistant-quality@1.0.0").output)
    by_id = json.loads(invoke("get", chain.criteria["id"]).output)
    assert pinned["id"] == by_id["id"] == chain.criteria["id"]

    traced = invoke("trace", "prefs@latest", "--project", chain.project, "--kind", "preference_dataset")
    assert traced.exit_code == 0, traced.output
    assert "preference_dataset prefs v1" in traced.output and "criteria assistant-quality v1.0.0" in traced.output
    unknown = invoke("get", f"{chain.project}/criteria/assistant-quality@9.9.9")
    assert unknown.exit_code == 1 and "not_found" in unknown.output and "Traceback" not in unknown.output
    partial = invoke("trace", "prefs@latest")
    assert partial.exit_code == 2 and "--project and --kind" in partial.output


def test_datasets_build_from_named_batches(chain: Chain) -> None:
    batch = f"vendor-a-week-47@{chain.batch['version']}"
    built = invoke("datasets", "build", chain.project, "--name", "built", "--batch", batch, "--seed", "7",
                   "--tie-break", "shorter")  # fmt: skip
    assert built.exit_code == 0, built.output
    assert "preference_dataset built@1" in built.output and "pairs out" in built.output
    record = json.loads(invoke("get", f"{chain.project}/preference-datasets/built@latest").output)
    assert record["spec"]["seed"] == 7 and record["spec"]["tie_break"] == "shorter"
    assert record["spec"]["drop_ties"] is False
    assert [p["id"] for p in record["parents"] if p["role"] == "batches"] == [chain.batch["id"]]
    dropped = json.loads(
        invoke(
            "datasets", "build", chain.project, "--name", "dropped", "--batch", batch, "--drop-ties", "--json"
        ).output
    )
    assert dropped["spec"]["drop_ties"] is True and dropped["spec"]["tie_break"] is None
    both = invoke("datasets", "build", chain.project, "--name", "x", "--batch", batch, "--drop-ties",
                  "--tie-break", "longer")  # fmt: skip
    assert both.exit_code == 2 and "exclude each other" in both.output


def test_criteria_diff_prints_paths_and_values_literally(chain: Chain) -> None:
    response = chain.admin.post(chain.url("criteria"), json=criteria_body("2.0.0", dimensions=reranked_dimensions()))
    assert response.status_code == 201, response.text
    diff = invoke("criteria", "diff", chain.project, "assistant-quality", "1.0.0")
    assert diff.exit_code == 0, diff.output
    assert "1.0.0 -> 2.0.0: major" in diff.output
    assert "dimensions[accuracy]" in diff.output and "dimensions[helpfulness]" in diff.output
    # each changed path, written as the server names it (Rich markup would eat "[accuracy]"), with the
    # rank before and after
    assert re.search(r"dimensions\[accuracy\]\.rank\W+changed\W+major\W+1\W+2\W", diff.output), diff.output
    assert re.search(r"dimensions\[helpfulness\]\.rank\W+changed\W+major\W+2\W+1\W", diff.output), diff.output
    server = chain.admin.get(chain.url("criteria/assistant-quality/diff"), params={"from": "1.0.0"}).json()
    same = json.loads(invoke("criteria", "diff", chain.project, "assistant-quality@1.0.0", "--json").output)
    assert same == server
