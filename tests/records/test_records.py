"""The record envelope, idempotency, versions, `latest`, pagination and lookups by id."""

from __future__ import annotations

from app.kinds.policy import DEFAULT_POLICY
from tests.conftest import World
from tests.factories import criteria_body, reranked_dimensions

ENVELOPE = {
    "id",
    "kind",
    "project",
    "name",
    "version",
    "digest",
    "created_at",
    "created_by",
    "parents",
    "spec",
    "blobs",
    "derived",
}


def test_register_returns_envelope_and_is_idempotent(world: World) -> None:
    project = world.project()
    first = world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body())
    assert first.status_code == 201, first.text
    record = first.json()
    # a registration's answer is the envelope plus the leaf hash of the event that logged it
    assert set(record) == ENVELOPE | {"audit_leaf_hash"} and len(record["audit_leaf_hash"]) == 64
    assert record["kind"] == "criteria" and record["project"] == project and record["version"] == "1.0.0"
    assert record["digest"].startswith("sha256:") and len(record["digest"]) == 71
    assert record["created_by"] == world.admin.principal

    again = world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body())
    assert again.status_code == 200
    assert again.json()["id"] == record["id"] and again.json()["digest"] == record["digest"]


def test_different_content_under_existing_version_is_a_conflict(world: World) -> None:
    project = world.project()
    assert world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body()).status_code == 201
    changed = criteria_body(playbook="something else")
    response = world.admin.post(f"/v1/projects/{project}/criteria", json=changed)
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "version_conflict"
    stored = world.admin.get(f"/v1/projects/{project}/criteria/assistant-quality/1.0.0").json()
    assert stored["spec"]["playbook"] != "something else"


def test_breaking_change_refused_then_accepted_as_major(world: World) -> None:
    project = world.project()
    world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body("1.4.2"))
    refused = world.admin.post(
        f"/v1/projects/{project}/criteria", json=criteria_body("1.5.0", dimensions=reranked_dimensions())
    )
    assert refused.status_code == 409
    problem = refused.json()
    assert problem["code"] == "criteria_version_too_low"
    assert problem["minimum_version"] == "2.0.0"
    assert problem["diff"]["level"] == "major"
    assert any(c["path"] == "dimensions[accuracy].rank" for c in problem["diff"]["changes"])
    assert world.admin.get(f"/v1/projects/{project}/criteria/assistant-quality/latest").json()["version"] == "1.4.2"

    accepted = world.admin.post(
        f"/v1/projects/{project}/criteria", json=criteria_body("2.0.0", dimensions=reranked_dimensions())
    )
    assert accepted.status_code == 201
    assert accepted.json()["derived"]["change"]["level"] == "major"


def test_minor_change_needs_minor_bump(world: World) -> None:
    project = world.project()
    world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body("1.4.2"))
    too_low = world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body("1.4.3", playbook="new text"))
    assert too_low.json()["code"] == "criteria_version_too_low"
    ok = world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body("1.5.0", playbook="new text"))
    assert ok.status_code == 201


def test_diff_endpoint_classifies(world: World) -> None:
    project = world.project()
    world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body("1.0.0"))
    world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body("1.1.0", playbook="clearer"))
    world.admin.post(
        f"/v1/projects/{project}/criteria", json=criteria_body("2.0.0", playbook="clearer", tie_breaking=[])
    )
    minor = world.admin.get(
        f"/v1/projects/{project}/criteria/assistant-quality/diff", params={"from": "1.0.0", "to": "1.1.0"}
    )
    assert minor.status_code == 200 and minor.json()["level"] == "minor"
    major = world.admin.get(f"/v1/projects/{project}/criteria/assistant-quality/diff", params={"from": "1.0.0"})
    assert major.json()["to"] == "2.0.0" and major.json()["level"] == "major"
    missing = world.admin.get(f"/v1/projects/{project}/criteria/assistant-quality/diff", params={"from": "9.9.9"})
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"


def test_semver_must_be_declared_and_well_formed(world: World) -> None:
    project = world.project()
    body = criteria_body()
    del body["version"]
    assert world.admin.post(f"/v1/projects/{project}/criteria", json=body).json()["code"] == "validation_failed"
    bad = world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body("1.0"))
    assert bad.status_code == 422 and bad.json()["code"] == "validation_failed"


def test_latest_follows_semver_order_not_insertion(world: World) -> None:
    project = world.project()
    for version in ("1.0.0", "1.2.0", "1.10.0"):
        world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body(version, playbook=version))
    latest = world.admin.get(f"/v1/projects/{project}/criteria/assistant-quality/latest").json()
    assert latest["version"] == "1.10.0"


def test_policy_defaults_and_integer_versions(world: World) -> None:
    project = world.project()
    first = world.admin.post(
        f"/v1/projects/{project}/policies", json={"name": "default", "spec": {"kappa_target": 0.7}}
    )
    assert first.status_code == 201, first.text
    assert first.json()["version"] == "1"
    assert first.json()["spec"] == {**DEFAULT_POLICY, "kappa_target": 0.7}
    same = world.admin.post(f"/v1/projects/{project}/policies", json={"spec": {"kappa_target": 0.7}})
    assert same.status_code == 200 and same.json()["id"] == first.json()["id"]
    second = world.admin.post(f"/v1/projects/{project}/policies", json={"spec": {}})
    assert second.status_code == 201 and second.json()["version"] == "2"
    skip = world.admin.post(f"/v1/projects/{project}/policies", json={"version": 7, "spec": {"kappa_floor": 0.3}})
    assert skip.status_code == 409 and skip.json()["code"] == "version_conflict"


def test_policy_validation(world: World) -> None:
    project = world.project()
    bad = world.admin.post(f"/v1/projects/{project}/policies", json={"spec": {"kappa_floor": 0.9, "kappa_target": 0.5}})
    assert bad.status_code == 422 and bad.json()["code"] == "validation_failed"
    other = world.admin.post(f"/v1/projects/{project}/policies", json={"name": "strict", "spec": {}})
    assert other.json()["code"] == "validation_failed"
    unknown = world.admin.post(f"/v1/projects/{project}/policies", json={"spec": {"nope": 1}})
    assert unknown.json()["errors"][0]["loc"] == ["body", "spec", "nope"]


def test_audit_event_cites_policy_version(world: World) -> None:
    project = world.project()
    rec = world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body()).json()
    events = world.admin.get("/v1/audit", params={"record": rec["id"]}).json()["items"]
    assert [e["policy_version"] for e in events] == [0]
    world.admin.post(f"/v1/projects/{project}/policies", json={"spec": {}})
    rec2 = world.admin.post(
        f"/v1/projects/{project}/criteria", json=criteria_body("1.0.1", metadata={"owner": "x"})
    ).json()
    events = world.admin.get("/v1/audit", params={"record": rec2["id"]}).json()["items"]
    assert [e["policy_version"] for e in events] == [1]


def test_pagination_walks_every_record_once(world: World) -> None:
    project = world.project()
    for version in range(1, 8):
        world.admin.post(f"/v1/projects/{project}/policies", json={"spec": {"gold_share_min": version / 100}})
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = world.admin.get(f"/v1/projects/{project}/policies", params=params).json()
        seen += [item["version"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [str(v) for v in range(1, 8)]
    bad = world.admin.get(f"/v1/projects/{project}/policies", params={"cursor": "%%%"})
    assert bad.json()["code"] == "validation_failed"


def test_record_by_id_and_visibility(world: World) -> None:
    project = world.project()
    rec = world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body()).json()
    viewer = world.member(project, "viewer")
    assert viewer.get(f"/v1/records/{rec['id']}").json()["digest"] == rec["digest"]
    outsider = world.principal()
    hidden = outsider.get(f"/v1/records/{rec['id']}")
    assert hidden.status_code == 404 and hidden.json()["code"] == "not_found"
    assert world.admin.get("/v1/records/does-not-exist").status_code == 404


def test_unknown_top_level_field_is_refused(world: World) -> None:
    project = world.project()
    body = {**criteria_body(), "prompt_set": {"id": "x"}}
    response = world.admin.post(f"/v1/projects/{project}/criteria", json=body)
    assert response.status_code == 422 and response.json()["errors"][0]["loc"] == ["body", "prompt_set"]
