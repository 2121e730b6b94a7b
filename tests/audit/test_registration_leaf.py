"""A registration's answer names the leaf hash of its audit event, and the log proves that leaf once the
sequencer has integrated it (RFC 9162 inclusion proof against the signed checkpoint's root)."""

from __future__ import annotations

from app.audit.proofs import verify_inclusion
from tests.conftest import World
from tests.factories import criteria_body


def test_a_new_record_carries_its_audit_leaf_and_the_log_proves_it(world: World) -> None:
    project = world.project()
    created = world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body())
    assert created.status_code == 201, created.text
    leaf = created.json()["audit_leaf_hash"]
    assert isinstance(leaf, str) and len(leaf) == 64

    events = world.admin.get("/v1/audit", params={"record": created.json()["id"]}).json()["items"]
    (event,) = [e for e in events if e["action"] == "record.registered"]
    assert event["leaf_hash"] == leaf and event["index"] is not None

    checkpoint = world.admin.get("/v1/audit/checkpoint").json()
    proof = world.admin.get(
        "/v1/audit/proofs/inclusion", params={"index": event["index"], "tree_size": checkpoint["tree_size"]}
    ).json()
    assert proof["leaf_hash"] == leaf
    hashes = [bytes.fromhex(h) for h in proof["hashes"]]
    root = bytes.fromhex(checkpoint["root_hash"])
    assert verify_inclusion(event["index"], checkpoint["tree_size"], bytes.fromhex(leaf), hashes, root)

    # the same content again stores nothing and logs nothing: no leaf to name
    again = world.admin.post(f"/v1/projects/{project}/criteria", json=criteria_body())
    assert again.status_code == 200 and again.json()["audit_leaf_hash"] is None
