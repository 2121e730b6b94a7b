"""`rlhf-registry audit checkpoint` and `audit verify [--checkpoint FILE] [--public-key FILE]` against a
real `serve`: the whole log recomputed on the client, a saved checkpoint checked against a longer log,
and tampering (an edited event; a history rewritten consistently) caught and named."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import create_engine

from app.audit.chain import leaf_hash_of_event
from bench.serving import CLI, Served, serve
from tests.support.audit_tamper import edit_audit_log


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("audit-served")) as running:
        yield running


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env={**env, "COLUMNS": "200"}, capture_output=True, text=True, timeout=120)


def api(served: Served, method: str, path: str, token: str | None = None, **kw: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or served.token}"}
    return httpx.request(method, f"{served.url}{path}", headers=headers, timeout=30, **kw)


def write_some(served: Served, projects: int = 2) -> str:
    """A few audited writes; returns the last project's name."""
    name = ""
    for _ in range(projects):
        name = f"audit-{uuid.uuid4().hex[:8]}"
        assert api(served, "POST", "/v1/projects", json={"name": name}).status_code == 201
    return name


def stdout_json(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 0, result.stdout + result.stderr
    value: dict[str, Any] = json.loads(result.stdout)
    return value


def test_verify_recomputes_the_whole_log(served: Served) -> None:
    write_some(served)
    result = stdout_json(cli(served.env, "audit", "verify"))
    checkpoint = api(served, "GET", "/v1/audit/checkpoint").json()
    assert result["ok"] is True and 0 < result["tree_size"] <= checkpoint["tree_size"]
    assert result["key_id"] == checkpoint["key_id"]
    assert stdout_json(cli(served.env, "audit", "verify", "--server"))["ok"] is True


def test_saved_checkpoint_is_extended_by_a_longer_log(served: Served, tmp_path: Path) -> None:
    write_some(served)
    saved = tmp_path / "checkpoint.json"
    assert cli(served.env, "audit", "checkpoint", "--output", str(saved)).returncode == 0
    printed = stdout_json(cli(served.env, "audit", "checkpoint"))
    assert json.loads(saved.read_text())["origin"] == printed["origin"]
    before = json.loads(saved.read_text())["tree_size"]

    write_some(served, projects=3)
    result = stdout_json(cli(served.env, "audit", "verify", "--checkpoint", str(saved)))
    assert result["ok"] is True and result["from"] == before and result["to"] >= before + 3

    pem = tmp_path / "registry.pub"
    pem.write_text(api(served, "GET", "/v1/signing-key").json()["public_key_pem"])
    assert cli(served.env, "audit", "verify", "--checkpoint", str(saved), "--public-key", str(pem)).returncode == 0
    assert cli(served.env, "audit", "verify", "--public-key", str(pem)).returncode == 0


def test_another_key_or_an_edited_checkpoint_is_refused(served: Served, tmp_path: Path) -> None:
    write_some(served, projects=1)
    saved = tmp_path / "checkpoint.json"
    assert cli(served.env, "audit", "checkpoint", "-o", str(saved)).returncode == 0

    other = tmp_path / "other.pub"
    other.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    refused = cli(served.env, "audit", "verify", "--public-key", str(other))
    assert refused.returncode == 1 and "signed by key" in refused.stderr

    edited = json.loads(saved.read_text())
    edited["tree_size"] -= 1
    saved.write_text(json.dumps(edited))
    refused = cli(served.env, "audit", "verify", "--checkpoint", str(saved))
    assert refused.returncode == 1 and "signature does not verify" in refused.stderr


def test_a_viewer_checks_a_saved_checkpoint(served: Served, tmp_path: Path) -> None:
    project = write_some(served, projects=1)
    principal = f"viewer-{uuid.uuid4().hex[:6]}"
    created = cli(served.env, "admin", "create-token", "--principal", principal)
    token = created.stdout.split()[-1]
    assert api(served, "PUT", f"/v1/projects/{project}/members/{principal}", json={"role": "viewer"}).is_success
    viewer = {**served.env, "RLHF_REGISTRY_TOKEN": token}

    saved = tmp_path / "checkpoint.json"
    assert cli(viewer, "audit", "checkpoint", "-o", str(saved)).returncode == 0
    write_some(served, projects=1)
    assert stdout_json(cli(viewer, "audit", "verify", "--checkpoint", str(saved)))["ok"] is True
    whole = cli(viewer, "audit", "verify")
    assert whole.returncode == 2 and "global admin" in whole.stderr


def test_tampering_is_caught_and_the_event_named(tmp_path: Path) -> None:
    with serve(tmp_path / "served") as running:
        write_some(running, projects=3)
        assert cli(running.env, "audit", "verify").returncode == 0
        saved = tmp_path / "checkpoint.json"
        assert cli(running.env, "audit", "checkpoint", "-o", str(saved)).returncode == 0
        events = api(running, "GET", "/v1/audit", params={"limit": 1000}).json()["items"]
        target = events[2]
        database = tmp_path / "served" / "registry.db"

        # an edited event no longer matches its leaf hash: the full check names it
        _edit_with_triggers_off(
            database, f"UPDATE audit_event SET actor = 'mallory' WHERE \"index\" = {target['index']}"
        )
        broken = cli(running.env, "audit", "verify")
        assert broken.returncode == 1
        assert f"audit event {target['index']}:" in broken.stderr and "leaf hash" in broken.stderr

        # a history rewritten consistently (leaf hash recomputed) signs a new root, so only a checkpoint
        # kept from before shows that the log no longer extends what it was
        forged = leaf_hash_of_event({**target, "actor": "mallory"})
        _edit_with_triggers_off(
            database, f"UPDATE audit_event SET leaf_hash = '{forged}' WHERE \"index\" = {target['index']}"
        )
        assert cli(running.env, "audit", "verify").returncode == 0
        rewritten = cli(running.env, "audit", "verify", "--checkpoint", str(saved))
        assert rewritten.returncode == 1 and "does not extend" in rewritten.stderr


def _edit_with_triggers_off(database: Path, statement: str) -> None:
    engine = create_engine(f"sqlite:///{database}")
    try:
        edit_audit_log(engine, statement)
    finally:
        engine.dispose()
