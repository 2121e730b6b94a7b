"""Schema fuzzing against a real `rlhf-registry serve`: every operation of the OpenAPI document, with
inputs generated from it (its examples, boundary and invalid values, then random valid and invalid
ones), must answer a status the document lists, with a body and headers that match it, never a 5xx.

Bounded and repeatable: deterministic generation (Hypothesis derandomized, so every run sends the same
cases and there is no seed to choose), no example database, a few examples per operation, one request
at a time. The server holds a project with records, a blob and an upload session, and generated path
and query values are mixed with their names (fuzz dictionaries), so that a share of the requests reach
real objects instead of stopping at 404. Every request carries the admin token (the access tests cover
401 and 403). No operation is left out.

The run is schemathesis's own CLI, so all three of its phases run (its pytest loader for a schema that
only exists once a fixture has started the server does not work with this pytest).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from bench.serving import Served, serve
from tests.factories import agreeing_items, batch_body, criteria_body, prompt_set_body

SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"
PROJECT = "fuzz"
MAX_EXAMPLES = 12  # per operation and phase: the whole run stays within a few minutes on two cores
RUN_TIMEOUT_S = 600
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
]
# (location.parameter, dictionary, probability that a generated value is replaced by a known one)
BINDINGS = [
    ("path.project", "project", 0.8),
    ("query.project", "project", 0.5),
    ("path.name", "name", 0.6),
    ("path.version", "version", 0.6),
    ("query.from", "version", 0.6),
    ("query.to", "version", 0.6),
    ("path.record_id", "record", 0.8),
    ("query.record", "record", 0.5),
    ("path.digest", "digest", 0.7),
    ("path.upload_id", "upload", 0.7),
    ("path.member", "member", 0.5),
]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("fuzzed")) as running:
        yield running


@pytest.fixture(scope="module")
def seeded(served: Served) -> dict[str, list[str]]:
    return seed_objects(served)


def seed_objects(served: Served) -> dict[str, list[str]]:
    """A project with a few records, a blob and an open upload: the values path parameters may take."""
    with httpx.Client(base_url=served.url, headers={"Authorization": f"Bearer {served.token}"}, timeout=60) as api:
        api.post("/v1/projects", json={"name": PROJECT}).raise_for_status()
        records = [
            api.post(f"/v1/projects/{PROJECT}/criteria", json=criteria_body()).raise_for_status().json(),
            api.post(f"/v1/projects/{PROJECT}/prompt-sets", json=prompt_set_body()).raise_for_status().json(),
            api.post(f"/v1/projects/{PROJECT}/annotation-batches", json=batch_body(agreeing_items(12)))
            .raise_for_status()
            .json(),
        ]
        blob = api.post("/v1/blobs", content=b"schema fuzzing").raise_for_status().json()
        digest = "sha256:" + hashlib.sha256(b"x").hexdigest()
        upload = api.post("/v1/blobs/uploads", json={"size": 1, "digest": digest}).raise_for_status().json()
    return {
        "project": [PROJECT],
        "record": [r["id"] for r in records],
        "name": [r["name"] for r in records] + ["default"],  # every project has policy `default`
        "version": sorted({r["version"] for r in records} | {"latest"}),
        "digest": [blob["digest"]],
        "upload": [upload["upload_id"]],
        "member": ["admin"],
    }


def fuzz_config(served: Served, values: dict[str, list[str]]) -> str:
    """schemathesis.toml for the run (JSON strings and arrays of strings are TOML too)."""
    lines = [
        f"base-url = {json.dumps(served.url)}",
        f"headers = {{ Authorization = {json.dumps('Bearer ' + served.token)} }}",
        "workers = 1",
        "request-timeout = 30",
        "[generation]",
        f"max-examples = {MAX_EXAMPLES}",
        "deterministic = true",
        'database = "none"',
        "[parameters]",
        *(f"{json.dumps(key)} = {{ dictionary = {json.dumps(name)}, probability = {p} }}" for key, name, p in BINDINGS),
    ]
    for name, entries in values.items():
        lines += [f"[dictionaries.{name}]", f"values = {json.dumps(entries)}"]
    return "\n".join(lines) + "\n"


def test_the_fuzz_dictionaries_name_real_objects(served: Served, seeded: dict[str, list[str]]) -> None:
    """The fuzz dictionaries name objects that exist; without them the fuzzing would stop at 404."""
    headers = {"Authorization": f"Bearer {served.token}"}
    for record_id in seeded["record"]:
        assert httpx.get(f"{served.url}/v1/records/{record_id}", headers=headers).status_code == 200
    assert httpx.head(f"{served.url}/v1/blobs/{seeded['digest'][0]}", headers=headers).status_code == 200
    assert httpx.get(f"{served.url}/v1/blobs/uploads/{seeded['upload'][0]}", headers=headers).status_code == 200


def test_every_operation_answers_as_documented(served: Served, seeded: dict[str, list[str]], tmp_path: Path) -> None:
    config = tmp_path / "schemathesis.toml"
    config.write_text(fuzz_config(served, seeded))
    command = [
        str(SCHEMATHESIS),
        "--config-file",
        str(config),
        "--no-color",
        "run",
        f"{served.url}/openapi.json",
        "--phases",
        "examples,coverage,fuzzing",
        "--mode",
        "all",
        "--checks",
        ",".join(CHECKS),
        "--no-shrink",
    ]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=RUN_TIMEOUT_S)
    assert result.returncode == 0, result.stdout[-30000:] + result.stderr[-2000:]
