"""The service as a user runs it: `rlhf-registry serve` in its own process, the README walk-through
as written, the CLI, and flat server memory while a large blob streams in."""

from __future__ import annotations

import json
import os
import re
import subprocess
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import httpx
import pytest

from bench.serving import CLI, Served, peak_rss_bytes, serve
from tests.factories import agreeing_items, batch_body, criteria_body, prompt_set_body
from tests.importers.spec_checks import shared_data

ROOT = Path(__file__).resolve().parents[1]


def run_cli(served: Served, *args: str) -> subprocess.CompletedProcess[str]:
    """`rlhf-registry ARGS` as a client of `served` (wide terminal, so tables and trees do not wrap)."""
    env = {**served.env, "COLUMNS": "200"}
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("served")) as running:
        yield running


def test_create_token_prints_the_token_alone_on_the_last_line(served: Served) -> None:
    result = subprocess.run(
        [*CLI, "admin", "create-token", "--principal", "alice"],
        env=served.env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert re.fullmatch(r"rlr_[A-Za-z0-9_-]{43}", result.stdout.splitlines()[-1])
    me = httpx.get(f"{served.url}/v1/me", headers={"Authorization": f"Bearer {result.stdout.split()[-1]}"})
    assert me.json()["principal"] == "alice"


def test_readme_walkthrough_works_as_written(served: Served) -> None:
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"<!-- walkthrough:start -->\n```bash\n(.*?)```\n<!-- walkthrough:end -->", readme, re.S)
    assert block is not None
    result = subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", block.group(1)],
        env={**served.env, "URL": served.url, "TOKEN": served.token},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert '"level":"major"' in result.stdout


def test_cli_client_commands(served: Served, tmp_path: Path) -> None:
    cli = partial(run_cli, served)

    assert cli("projects", "create", "cli-proj").returncode == 0
    body = tmp_path / "criteria.json"
    body.write_text(json.dumps(criteria_body("1.0.0")))
    pushed = cli("push", "cli-proj", "criteria", str(body))
    assert pushed.returncode == 0 and "criteria assistant-quality 1.0.0" in pushed.stdout
    body.write_text(json.dumps(criteria_body("1.0.1", playbook="changed")))
    refused = cli("push", "cli-proj", "criteria", str(body))
    assert refused.returncode == 1 and "criteria_version_too_low" in refused.stderr
    got = cli("get", "cli-proj", "criteria", "assistant-quality")
    assert json.loads(got.stdout)["version"] == "1.0.0"
    blob = tmp_path / "weights.bin"
    blob.write_bytes(os.urandom(2 * 1024 * 1024))
    uploaded = cli("blobs", "upload", str(blob))
    assert uploaded.returncode == 0 and uploaded.stdout.startswith("sha256:")
    back = tmp_path / "back.bin"
    assert cli("blobs", "download", uploaded.stdout.split()[0], str(back)).returncode == 0
    assert back.read_bytes() == blob.read_bytes()
    assert cli("audit", "verify").returncode == 0


def test_large_upload_keeps_server_memory_flat(served: Served) -> None:
    """256 MiB streamed in: the server's peak resident memory grows by far less than the body."""
    size = 256 * 1024 * 1024
    chunk = os.urandom(1024 * 1024)

    def body() -> Iterator[bytes]:
        for _ in range(size // len(chunk)):
            yield chunk

    # warm up the upload path once, so that imports and buffers are not counted as growth
    httpx.post(f"{served.url}/v1/blobs", content=b"warm", headers={"Authorization": f"Bearer {served.token}"})
    before = peak_rss_bytes(served.pid)
    response = httpx.post(
        f"{served.url}/v1/blobs",
        content=body(),
        headers={"Authorization": f"Bearer {served.token}"},
        timeout=300,
    )
    assert response.status_code == 201 and response.json()["size"] == size
    growth = peak_rss_bytes(served.pid) - before
    assert growth < 48 * 1024 * 1024, f"server peak memory grew by {growth / 2**20:.1f} MiB"


def test_cli_import_pandalm_then_export_dataset(served: Served, tmp_path: Path) -> None:
    pandalm = shared_data("pandalm/testset-v1.json")

    cli = partial(run_cli, served)

    assert cli("projects", "create", "imports").returncode == 0
    criteria = tmp_path / "criteria.json"
    criteria.write_text(json.dumps(criteria_body("1.0.0")))
    assert cli("push", "imports", "criteria", str(criteria)).returncode == 0
    without_review = cli(
        "import",
        "pandalm",
        str(pandalm),
        "--project",
        "imports",
        "--criteria",
        "assistant-quality@1.0.0",
        "--prompt-set",
        "pandalm@1.0.0",
        "--batch",
        "pandalm",
    )
    assert without_review.returncode == 1 and "privacy-reviewed" in without_review.stderr
    imported = cli(
        "import",
        "pandalm",
        str(pandalm),
        "--project",
        "imports",
        "--criteria",
        "assistant-quality@1.0.0",
        "--prompt-set",
        "pandalm@1.0.0",
        "--batch",
        "pandalm",
        "--privacy-reviewed",
        "--collected-from",
        "2023-06-01",
        "--collected-to",
        "2023-06-30",
    )
    assert imported.returncode == 0, imported.stderr
    assert "gate PASS" in imported.stdout and "krippendorff alpha" in imported.stdout
    body = tmp_path / "dataset.json"
    body.write_text(json.dumps({"name": "pandalm", "batches": [{"name": "pandalm", "version": "1"}], "spec": {}}))
    assert cli("push", "imports", "preference-datasets", str(body)).returncode == 0
    out = tmp_path / "train.jsonl"
    exported = cli("datasets", "export", "imports", "pandalm", str(out), "--split", "train")
    assert exported.returncode == 0, exported.stderr
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows and set(rows[0]) == {"prompt", "chosen", "rejected"}


def test_cli_trace_and_revoke(served: Served) -> None:
    api = httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {served.token}"})
    api.post("/v1/projects", json={"name": "traced"}).raise_for_status()
    api.post("/v1/projects/traced/criteria", json=criteria_body()).raise_for_status()
    api.post("/v1/projects/traced/prompt-sets", json=prompt_set_body()).raise_for_status()
    batch = api.post("/v1/projects/traced/annotation-batches", json=batch_body(agreeing_items(12))).json()
    dataset = api.post(
        "/v1/projects/traced/preference-datasets", json={"name": "prefs", "batches": [{"id": batch["id"]}], "spec": {}}
    ).json()

    cli = partial(run_cli, served)

    tree = cli("trace", dataset["id"])
    assert tree.returncode == 0, tree.stderr
    assert "preference_dataset prefs v1" in tree.stdout and "criteria assistant-quality v1.0.0" in tree.stdout
    assert "batches:" in tree.stdout and "QUARANTINED" not in tree.stdout
    assert cli("revoke", batch["id"], "--reason", "fabricated").returncode == 0
    after = cli("trace", dataset["id"])
    assert "QUARANTINED" in after.stdout
    dot = cli("trace", dataset["id"], "--format", "dot")
    assert dot.stdout.startswith("digraph lineage {")
