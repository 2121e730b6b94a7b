"""Every user mistake ends in one line saying what went wrong and what to do, never a traceback: exit
code 1, or 2 for a mistake in the command line. Each case runs the real command against a real `serve`."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.serving import CLI, Served, serve
from tests.factories import criteria_body
from tests.importers.spec_checks import FIXTURES

PROJECT = "mistakes"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("mistakes")) as running:
        api = httpx.Client(base_url=running.url, headers={"Authorization": f"Bearer {running.token}"})
        api.post("/v1/projects", json={"name": PROJECT}).raise_for_status()
        api.post(f"/v1/projects/{PROJECT}/criteria", json=criteria_body()).raise_for_status()
        yield running


def cli(served: Served, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *args], env={**served.env, "COLUMNS": "200", **env}, capture_output=True, text=True, timeout=120
    )


def one_line(result: subprocess.CompletedProcess[str], code: int, *expected: str) -> str:
    """The error's one line, after checking the exit code, that there is no traceback and what it says."""
    assert result.returncode == code, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("lost in import")]
    assert len(lines) == 1, result.stderr
    for text in expected:
        assert text in lines[0], lines[0]
    return lines[0]


def test_a_missing_file(served: Served, tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.json"
    one_line(cli(served, "push", PROJECT, "criteria", str(missing)), 1, f"cannot open {missing}", "check the path")
    one_line(
        cli(served, "blobs", "upload", str(tmp_path / "weights.bin")), 1, "cannot open", "weights.bin", "check the path"
    )


def test_bad_json(served: Served, tmp_path: Path) -> None:
    body = tmp_path / "criteria.json"
    body.write_text('{"name": "x", "version": ')
    one_line(cli(served, "push", PROJECT, "criteria", str(body)), 1, f"{body} is not valid JSON", "line 1")
    body.write_text("[1, 2]")
    one_line(cli(served, "push", PROJECT, "criteria", str(body)), 1, "holds a JSON list")
    one_line(cli(served, "runs", "start", PROJECT, "--kind", "dpo", "--input", "x=y@1", "--params", "{"), 2, "--params")


def test_no_server_running(served: Served) -> None:
    gone = "http://127.0.0.1:9"
    for args in (["projects", "list"], ["records", "list", PROJECT, "criteria"], ["get", f"{PROJECT}/criteria/a@1"]):
        one_line(cli(served, *args, RLHF_REGISTRY_URL=gone), 1, f"cannot reach the registry at {gone}", "serve")


def test_a_wrong_kind_or_collection(served: Served, tmp_path: Path) -> None:
    one_line(cli(served, "records", "list", PROJECT, "critera"), 2, "no kind or collection named 'critera'")
    body = tmp_path / "body.json"
    body.write_text(json.dumps(criteria_body()))
    one_line(cli(served, "push", PROJECT, "policys", str(body)), 2, "no kind or collection named 'policys'")


def test_an_unknown_record(served: Served) -> None:
    one_line(
        cli(served, "get", f"{PROJECT}/criteria/assistant-quality@9.0.0"), 1, "error 404 not_found", "records list"
    )
    one_line(cli(served, "trace", "0190a000-0000-7000-8000-000000000000"), 1, "error 404 not_found")
    one_line(cli(served, "trace", "assistant-quality"), 2, "neither a record id nor NAME@VERSION")
    one_line(cli(served, "records", "list", "no-such-project", "criteria"), 1, "error 404")


def test_answers_of_the_server(served: Served, tmp_path: Path) -> None:
    body = tmp_path / "criteria.json"
    body.write_text(json.dumps({"name": "assistant-quality", "version": "1.0.1", "spec": {"dimensions": "none"}}))
    refused = cli(served, "push", PROJECT, "criteria", str(body))
    assert refused.returncode == 1 and "error 422" in refused.stderr and "Traceback" not in refused.stderr
    one_line(cli(served, "projects", "list", RLHF_REGISTRY_TOKEN="rlr_not-a-token"), 1, "401", "RLHF_REGISTRY_TOKEN")


def test_a_refused_import_registers_nothing(served: Served) -> None:
    args = ["import", "pandalm", str(FIXTURES / "pandalm_sample.json"), "--project", PROJECT]
    args += ["--criteria", "assistant-quality@1.0.0", "--prompt-set", "pandalm@1.0.0", "--batch", "pandalm"]
    line = one_line(cli(served, *args), 1, "nothing registered", "--collected-from", "--privacy-reviewed")
    assert "--collected-to" in line
    listed = cli(served, "records", "list", PROJECT, "prompt-sets", "--json")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
    dated = [*args, "--privacy-reviewed", "--collected-from", "2023-06-01", "--collected-to", "2023-06"]
    one_line(cli(served, *dated), 2, "--collected-to '2023-06' is not a date", "YYYY-MM-DD")
    no_criteria = [*args[:5], "--criteria", "nothing@1.0.0", *args[7:], "--privacy-reviewed"]
    no_criteria += ["--collected-from", "2023-06-01", "--collected-to", "2023-06-30"]
    one_line(cli(served, *no_criteria), 1, "error 404")
    assert json.loads(cli(served, "records", "list", PROJECT, "prompt-sets", "--json").stdout) == []
    one_line(cli(served, *args, "--question", "preference"), 2, "--question does not apply to pandalm")
    one_line(cli(served, "import", "csv", "x.csv", *args[3:]), 2, "unknown format 'csv'")


def test_usage_mistakes_exit_2(served: Served) -> None:
    result = cli(served, "records", "list")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    one_line(cli(served, "runs", "start", PROJECT, "--kind", "dpo", "--input", "dataset"), 2, "ROLE=NAME@VERSION")


def test_server_side_commands_on_an_unmigrated_database(served: Served, tmp_path: Path) -> None:
    fresh = {"RLHF_REGISTRY_DATA_DIR": str(tmp_path / "fresh")}
    one_line(cli(served, "admin", "create-token", "--principal", "x", **fresh), 1, "run `rlhf-registry migrate` first")
    one_line(cli(served, "projects", "list", RLHF_REGISTRY_URL="ftp://nowhere"), 2, "RLHF_REGISTRY_URL")
