"""GET /v1/audit/checkpoint and the proof endpoints, on both stacks: the checkpoint is signed by the key
of /v1/signing-key over the C2SP body, and every proof verifies against signed roots."""

from __future__ import annotations

import base64
from typing import Any

from fastapi.testclient import TestClient

from app.audit import proofs
from app.audit.checkpoint import verify_checkpoint
from app.audit.merkle import root_from_leaf_hashes
from app.core.signing import load_public_key
from app.main import create_app
from app.state import AppState
from tests.conftest import Api, World
from tests.support.audit_tamper import edit_audit_log


def _checkpoint(api: Api) -> dict[str, Any]:
    response = api.get("/v1/audit/checkpoint")
    assert response.status_code == 200, response.text
    return dict(response.json())


def _events(api: Api) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 1000}
    while True:
        page = api.get("/v1/audit", params=params).json()
        events += page["items"]
        if not page["next_cursor"]:
            return events
        params["cursor"] = page["next_cursor"]


def _problem(response: Any, param: str | None = None) -> None:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["code"] == "validation_failed"
    if param is not None:
        assert any(param in error["loc"] for error in body["errors"]), body


def test_checkpoint_signature_over_the_c2sp_body(world: World) -> None:
    world.project()
    checkpoint = _checkpoint(world.admin)
    assert set(checkpoint) == {"origin", "tree_size", "root_hash", "key_id", "signature"}
    key = world.admin.get("/v1/signing-key").json()
    assert checkpoint["key_id"] == key["key_id"] and checkpoint["origin"] == world.state.settings.audit_origin

    public = load_public_key(key["public_key_pem"])
    root = bytes.fromhex(checkpoint["root_hash"])
    body = f"{checkpoint['origin']}\n{checkpoint['tree_size']}\n{base64.b64encode(root).decode()}\n"
    public.verify(base64.b64decode(checkpoint["signature"]), body.encode())  # raises when it does not verify
    assert verify_checkpoint(checkpoint, public) == (checkpoint["tree_size"], root)


def test_checkpoint_root_is_the_root_of_the_events(world: World) -> None:
    world.project()
    checkpoint = _checkpoint(world.admin)
    events = [e for e in _events(world.admin) if e["index"] < checkpoint["tree_size"]]
    assert [e["index"] for e in events] == list(range(checkpoint["tree_size"]))
    assert root_from_leaf_hashes(e["leaf_hash"] for e in events) == (checkpoint["tree_size"], checkpoint["root_hash"])
    verified = world.admin.get("/v1/audit/verify").json()
    if verified["tree_size"] == checkpoint["tree_size"]:
        assert verified["root_hash"] == checkpoint["root_hash"]


def test_a_viewer_of_any_project_reads_checkpoints_and_proofs(world: World) -> None:
    viewer = world.member(world.project(), "viewer")
    checkpoint = _checkpoint(viewer)
    assert checkpoint["tree_size"] > 0
    assert viewer.get("/v1/audit/proofs/inclusion", params={"index": 0}).status_code == 200
    assert viewer.get("/v1/audit/proofs/consistency", params={"from": 1}).status_code == 200
    outsider = world.principal()
    response = outsider.get("/v1/audit/checkpoint")
    assert response.status_code == 403 and response.json()["code"] == "forbidden"


def test_inclusion_proofs_verify_against_the_signed_root(world: World) -> None:
    project = world.project()
    checkpoint = _checkpoint(world.admin)
    size, root = checkpoint["tree_size"], bytes.fromhex(checkpoint["root_hash"])
    mine = world.admin.get("/v1/audit", params={"project": project}).json()["items"][0]
    for index in sorted({0, size // 2, mine["index"], size - 1}):
        proof = world.admin.get("/v1/audit/proofs/inclusion", params={"index": index, "tree_size": size}).json()
        assert proof["leaf_index"] == index and proof["tree_size"] == size
        hashes = [bytes.fromhex(x) for x in proof["hashes"]]
        assert proofs.verify_inclusion(index, size, bytes.fromhex(proof["leaf_hash"]), hashes, root)
        flipped = bytes([hashes[0][0] ^ 1]) + hashes[0][1:] if hashes else b""
        if hashes:
            assert not proofs.verify_inclusion(
                index, size, bytes.fromhex(proof["leaf_hash"]), [flipped, *hashes[1:]], root
            )
    proof = world.admin.get("/v1/audit/proofs/inclusion", params={"index": mine["index"]}).json()
    assert proof["leaf_hash"] == mine["leaf_hash"]


def test_old_checkpoints_stay_provable_after_the_log_grows(world: World) -> None:
    world.project()
    old = _checkpoint(world.admin)
    project = world.project()
    world.member(project, "viewer")
    new = _checkpoint(world.admin)
    assert new["tree_size"] > old["tree_size"]
    old_root, new_root = bytes.fromhex(old["root_hash"]), bytes.fromhex(new["root_hash"])

    proof = world.admin.get(
        "/v1/audit/proofs/consistency", params={"from": old["tree_size"], "to": new["tree_size"]}
    ).json()
    assert proof["from"] == old["tree_size"] and proof["to"] == new["tree_size"]
    hashes = [bytes.fromhex(x) for x in proof["hashes"]]
    assert proofs.verify_consistency(old["tree_size"], new["tree_size"], old_root, new_root, hashes)
    assert not proofs.verify_consistency(old["tree_size"], new["tree_size"], new_root, new_root, hashes)

    last_old = old["tree_size"] - 1
    inclusion = world.admin.get(
        "/v1/audit/proofs/inclusion", params={"index": last_old, "tree_size": old["tree_size"]}
    ).json()
    leaf = bytes.fromhex(inclusion["leaf_hash"])
    path = [bytes.fromhex(x) for x in inclusion["hashes"]]
    assert proofs.verify_inclusion(last_old, old["tree_size"], leaf, path, old_root)

    same = world.admin.get("/v1/audit/proofs/consistency", params={"from": old["tree_size"], "to": old["tree_size"]})
    assert same.json()["hashes"] == []


def test_bad_proof_parameters_are_422(world: World) -> None:
    world.project()
    size = _checkpoint(world.admin)["tree_size"]
    inclusion, consistency = "/v1/audit/proofs/inclusion", "/v1/audit/proofs/consistency"
    _problem(world.admin.get(inclusion, params={"index": 3, "tree_size": 3}), "index")
    _problem(world.admin.get(inclusion, params={"index": size + 1000}), "index")
    _problem(world.admin.get(inclusion, params={"index": 0, "tree_size": size + 1000}), "tree_size")
    _problem(world.admin.get(inclusion, params={"index": -1}), "index")
    _problem(world.admin.get(inclusion, params={"index": 0, "tree_size": 0}), "tree_size")
    _problem(world.admin.get(inclusion, params={"index": "x"}), "index")
    _problem(world.admin.get(inclusion), "index")
    _problem(world.admin.get(consistency, params={"from": 3, "to": 2}), "from")
    _problem(world.admin.get(consistency, params={"from": 0, "to": 2}), "from")
    _problem(world.admin.get(consistency, params={"from": -1}), "from")
    _problem(world.admin.get(consistency, params={"from": 1, "to": size + 1000}), "to")
    _problem(world.admin.get(consistency, params={"from": size + 1000}), "from")
    _problem(world.admin.get(consistency), "from")


def test_a_log_missing_an_event_is_refused_not_signed(fresh_stack: AppState) -> None:
    with TestClient(create_app(fresh_stack.settings, state=fresh_stack), raise_server_exceptions=False) as client:
        world = World(fresh_stack, client)
        world.project()
        assert _checkpoint(world.admin)["tree_size"] >= 3
        edit_audit_log(fresh_stack.sessions.engine, 'DELETE FROM audit_event WHERE "index" = 1')
        response = world.admin.get("/v1/audit/checkpoint")
        assert response.status_code == 500 and response.json()["code"] == "audit_log_broken"
        assert "event 1" in response.json()["detail"]
