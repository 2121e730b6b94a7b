"""Every write appends an audit event in the same transaction; verify recomputes the log and names the
first event that was tampered with."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.main import create_app
from app.state import AppState
from tests.conftest import World
from tests.factories import criteria_body, reranked_dimensions
from tests.support.audit_tamper import edit_audit_log


def _actions(world: World, **params: str) -> list[str]:
    return [e["action"] for e in world.admin.get("/v1/audit", params={"limit": 1000, **params}).json()["items"]]


def test_writes_append_events_and_refusals_do_not(world: World) -> None:
    project = world.project()
    member = world.member(project, "viewer")
    world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body("1.0.0"))
    before = _actions(world, project=project)
    assert before == ["project.created", "member.role_set", "record.registered"]
    refused = world.admin.post(
        f"/v1/projects/{project}/criteria", json=criteria_body("1.0.1", dimensions=reranked_dimensions())
    )
    assert refused.status_code == 409
    assert _actions(world, project=project) == before
    assert member.get("/v1/audit", params={"project": project}).status_code == 200


def test_event_fields_and_leaf_hash(world: World) -> None:
    project = world.project()
    rec = world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body()).json()
    [event] = world.admin.get("/v1/audit", params={"record": rec["id"]}).json()["items"]
    assert set(event) == {
        "index",
        "leaf_hash",
        "at",
        "actor",
        "action",
        "target",
        "project",
        "request_id",
        "payload_digest",
        "policy_version",
        "token_id",  # the token that made the write, by id
        "event_id",  # in the leaf data instead of the index, which the sequencer assigns later
    }
    assert event["target"] == f"record:{rec['id']}" and event["actor"] == world.admin.principal
    assert len(event["leaf_hash"]) == 64 and event["payload_digest"].startswith("sha256:")


def test_viewer_sees_only_its_projects_events(world: World) -> None:
    mine, other = world.project(), world.project()
    viewer = world.member(mine, "viewer")
    projects = {e["project"] for e in viewer.get("/v1/audit", params={"limit": 1000}).json()["items"]}
    assert projects == {mine}
    assert viewer.get("/v1/audit", params={"project": other}).status_code == 404


def test_verify_passes_on_an_untouched_log(world: World) -> None:
    result = world.admin.get("/v1/audit/verify").json()
    assert result["ok"] is True and result["tree_size"] > 0 and len(result["root_hash"]) == 64


@pytest.mark.parametrize("column,value", [("actor", "'mallory'"), ("payload_digest", "'sha256:00'")])
def test_tampered_event_is_named(fresh_stack: AppState, column: str, value: str) -> None:
    with TestClient(create_app(fresh_stack.settings, state=fresh_stack)) as client:
        world = World(fresh_stack, client)
        project = world.project()
        for version in ("1.0.0", "1.1.0", "1.2.0"):
            world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body(version, playbook=version))
        assert world.admin.get("/v1/audit/verify").json()["ok"] is True
        target = world.admin.get("/v1/audit", params={"project": project}).json()["items"][2]["index"]

        edit_audit_log(
            fresh_stack.sessions.engine, f'UPDATE audit_event SET {column} = {value} WHERE "index" = {target}'
        )

        result = world.admin.get("/v1/audit/verify").json()
        assert result["ok"] is False
        assert result["first_bad_index"] == target
        assert "leaf hash" in result["problem"]


def test_removed_event_is_caught(fresh_stack: AppState) -> None:
    with TestClient(create_app(fresh_stack.settings, state=fresh_stack)) as client:
        world = World(fresh_stack, client)
        project = world.project()
        world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body())
        size = world.admin.get("/v1/audit/verify").json()["tree_size"]
        edit_audit_log(fresh_stack.sessions.engine, f'DELETE FROM audit_event WHERE "index" = {size - 1}')
        result = world.admin.get("/v1/audit/verify").json()
        assert result["ok"] is False and result["first_bad_index"] == size - 1
