"""Token lifecycle over the REST API on both stacks: created with an expiry, used, expired, revoked by
their owner or a global admin, invisible (404) to everyone else, listed without secrets, and named by
id (never by secret) in audit events and request logs."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from app.access import service as access_service
from app.access import tokens
from app.access.models import Principal
from app.audit.chain import leaf_hash_of_event
from app.core.db import utcnow
from app.core.errors import Unauthenticated, ValidationFailed
from app.core.logging import JsonFormatter
from app.core.security import hash_token
from tests.conftest import Api, World
from tests.factories import criteria_body

LISTED_KEYS = {"id", "principal", "label", "created_at", "expires_at", "revoked_at", "state"}


def _as(api: Api, token: str) -> Api:
    return Api(api.client, token, api.principal)


def _issue(world: World, principal: str, *, expires_in_days: int, now: datetime) -> str:
    """A token created as if at `now` (the service takes the time as a parameter): no sleeping."""
    uow = world.state.unit_of_work(request_id="test")
    try:
        owner = uow.session.scalar(select(Principal).where(Principal.name == principal))
        assert owner is not None
        _, secret = tokens.create(
            uow,
            owner,
            principal_name=None,
            label="issued in the past",
            expires_in_days=expires_in_days,
            expires_at=None,
            max_days=None,
            parent_expires_at=None,
            now=now,
        )
        uow.commit()
    finally:
        uow.close()
    return secret


def _own_token_id(api: Api) -> str:
    items = api.get("/v1/tokens").json()["items"]
    assert len(items) == 1, items
    return str(items[0]["id"])


def test_create_with_an_expiry_then_use_it(world: World) -> None:
    user = world.principal()
    before = utcnow()
    response = user.post("/v1/tokens", json={"label": "ci", "expires_in_days": 7})
    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == LISTED_KEYS | {"token"} and created["state"] == "active"
    assert created["principal"] == user.principal and created["label"] == "ci"
    expires = datetime.fromisoformat(created["expires_at"])
    assert before + timedelta(days=7) <= expires <= utcnow() + timedelta(days=7)
    assert _as(user, created["token"]).get("/v1/me").json()["principal"] == user.principal


def test_an_expiry_at_an_instant(world: World) -> None:
    user = world.principal()
    at = (utcnow() + timedelta(hours=5)).replace(microsecond=0)
    created = user.post("/v1/tokens", json={"expires_at": at.isoformat()}).json()
    assert datetime.fromisoformat(created["expires_at"]) == at
    never = user.post("/v1/tokens", json={}).json()
    assert never["expires_at"] is None and never["state"] == "active"


@pytest.mark.parametrize(
    "body",
    [
        {"expires_in_days": 0},
        {"expires_at": "2020-01-01T00:00:00Z"},
        {"expires_at": "2099-01-01T00:00:00"},  # no timezone: ambiguous
        {"expires_in_days": 3, "expires_at": "2099-01-01T00:00:00Z"},
        {"secret": "mine"},
        {"expires_at": "9999-12-31T23:59:59-23:00"},  # beyond what a UTC timestamp holds
        {"label": "two\nlines"},
        {"principal": "nul\u0000"},
    ],
)
def test_bad_expiries_are_refused(world: World, body: dict[str, object]) -> None:
    user = world.principal()
    response = user.post("/v1/tokens", json=body)
    assert response.status_code == 422 and response.json()["code"] == "validation_failed"
    assert len(user.get("/v1/tokens").json()["items"]) == 1  # nothing stored


def test_an_expired_token_is_401_saying_expired(world: World) -> None:
    user = world.principal()
    secret = _issue(world, user.principal, expires_in_days=1, now=utcnow() - timedelta(days=2))
    for response in (_as(user, secret).get("/v1/me"), _as(user, secret).post("/v1/tokens", json={})):
        assert response.status_code == 401 and response.json()["code"] == "unauthenticated"
        detail = response.json()["detail"]
        assert "expired" in detail and user.principal not in detail and secret not in detail
    listed = [t for t in user.get("/v1/tokens").json()["items"] if t["label"] == "issued in the past"]
    assert [t["state"] for t in listed] == ["expired"]


def test_expiry_is_checked_at_the_time_given(world: World) -> None:
    user = world.principal()
    created = user.post("/v1/tokens", json={"expires_in_days": 1}).json()
    expires = datetime.fromisoformat(created["expires_at"])
    bearer = f"Bearer {created['token']}"
    with world.state.sessions.read() as session:
        assert (
            access_service.authenticate(session, bearer, now=expires - timedelta(seconds=1)).token_id == created["id"]
        )
        with pytest.raises(Unauthenticated, match="expired"):
            access_service.authenticate(session, bearer, now=expires)


def test_the_owner_revokes_a_token(world: World) -> None:
    user = world.principal()
    spare = user.post("/v1/tokens", json={"label": "spare"}).json()
    response = user.post(f"/v1/tokens/{spare['id']}/revoke")
    assert response.status_code == 200, response.text
    revoked = response.json()
    assert revoked["state"] == "revoked" and revoked["revoked_at"] is not None and "token" not in revoked
    refused = _as(user, spare["token"]).get("/v1/me")
    assert refused.status_code == 401 and "revoked" in refused.json()["detail"]
    again = user.post(f"/v1/tokens/{spare['id']}/revoke").json()
    assert again["revoked_at"] == revoked["revoked_at"]  # revoking twice changes nothing
    assert user.get("/v1/me").status_code == 200  # the owner's other token still works


def test_a_token_can_revoke_itself(world: World) -> None:
    user = world.principal()
    assert user.post(f"/v1/tokens/{_own_token_id(user)}/revoke").status_code == 200
    assert user.get("/v1/me").status_code == 401


def test_a_global_admin_revokes_anyones_token(world: World) -> None:
    user = world.principal()
    token_id = _own_token_id(user)
    response = world.admin.post(f"/v1/tokens/{token_id}/revoke")
    assert response.status_code == 200 and response.json()["principal"] == user.principal
    assert user.get("/v1/me").json()["code"] == "unauthenticated"


def test_others_cannot_see_or_revoke_a_token(world: World) -> None:
    owner, other = world.principal(), world.principal()
    project = world.project(**{other.principal: "admin"})  # an admin of a project is no global admin
    assert project
    token_id = _own_token_id(owner)
    for token in (token_id, "no-such-token", "0" * 36, "nul%00"):
        response = other.post(f"/v1/tokens/{token}/revoke")
        assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert token_id not in other.get("/v1/tokens").text
    assert owner.get("/v1/me").status_code == 200


def test_a_token_cannot_create_one_that_outlives_it(world: World) -> None:
    user = world.principal()
    parent = user.post("/v1/tokens", json={"expires_in_days": 1}).json()
    parent_expires = datetime.fromisoformat(parent["expires_at"])
    child = _as(user, parent["token"])
    defaulted = child.post("/v1/tokens", json={})
    assert defaulted.status_code == 201, defaulted.text
    assert datetime.fromisoformat(defaulted.json()["expires_at"]) == parent_expires
    earlier = (parent_expires - timedelta(hours=1)).isoformat()
    sooner = child.post("/v1/tokens", json={"expires_at": earlier})
    assert sooner.status_code == 201 and datetime.fromisoformat(
        sooner.json()["expires_at"]
    ) == parent_expires - timedelta(hours=1)
    for later in ({"expires_in_days": 2}, {"expires_at": (parent_expires + timedelta(seconds=1)).isoformat()}):
        refused = child.post("/v1/tokens", json=later)
        assert refused.status_code == 422 and refused.json()["code"] == "validation_failed", refused.text
    assert len(user.get("/v1/tokens").json()["items"]) == 4  # the refused ones stored nothing


def test_an_expiring_admin_token_caps_tokens_for_others(world: World) -> None:
    other = world.principal()
    parent = world.admin.post("/v1/tokens", json={"expires_in_days": 1}).json()
    admin = _as(world.admin, parent["token"])
    made = admin.post("/v1/tokens", json={"principal": other.principal})
    assert made.status_code == 201, made.text
    assert made.json()["expires_at"] == parent["expires_at"]
    refused = admin.post("/v1/tokens", json={"principal": other.principal, "expires_in_days": 3})
    assert refused.status_code == 422 and refused.json()["code"] == "validation_failed"


def test_tokens_for_another_principal(world: World) -> None:
    user, other = world.principal(), world.principal()
    refused = user.post("/v1/tokens", json={"principal": other.principal})
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    for_self = user.post("/v1/tokens", json={"principal": user.principal})
    assert for_self.status_code == 201
    made = world.admin.post("/v1/tokens", json={"principal": other.principal, "label": "for you"})
    assert made.status_code == 201 and made.json()["principal"] == other.principal
    assert _as(other, made.json()["token"]).get("/v1/me").json()["principal"] == other.principal
    missing = world.admin.post("/v1/tokens", json={"principal": "nobody-at-all-here"})
    assert missing.status_code == 422 and missing.json()["code"] == "validation_failed"
    assert missing.json()["errors"][0]["loc"] == ["body", "principal"]


def test_listing_shows_no_secret_and_no_hash(world: World) -> None:
    user = world.principal()
    created = user.post("/v1/tokens", json={"label": "listed"}).json()
    listing = user.get("/v1/tokens")
    assert listing.status_code == 200
    items = listing.json()["items"]
    assert {t["principal"] for t in items} == {user.principal} and len(items) == 2
    assert all(set(t) == LISTED_KEYS for t in items)
    assert created["token"] not in listing.text and user.token not in listing.text
    assert hash_token(created["token"]) not in listing.text
    everyone = world.admin.get("/v1/tokens", params={"all": "true"}).json()["items"]
    assert {user.principal, world.admin.principal} <= {t["principal"] for t in everyone}
    one = world.admin.get("/v1/tokens", params={"principal": user.principal}).json()["items"]
    assert {t["id"] for t in one} == {t["id"] for t in items}
    for params in ({"all": "true"}, {"principal": world.admin.principal}):
        refused = user.get("/v1/tokens", params=params)
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"


def test_audit_events_name_the_token_by_id_and_still_verify(world: World) -> None:
    user = world.principal()
    project = world.project(**{user.principal: "admin"})
    token_id = _own_token_id(user)
    registered = user.post(f"/v1/projects/{project}/criteria", json=criteria_body("1.0.0"))  # a registration
    assert registered.status_code == 201, registered.text
    member = user.put(f"/v1/projects/{project}/members/{world.principal().principal}", json={"role": "viewer"})
    assert member.status_code == 200  # a write through the request's unit of work
    events = world.admin.get("/v1/audit", params={"project": project})
    mine = [e for e in events.json()["items"] if e["actor"] == user.principal]
    assert {e["action"] for e in mine} >= {"member.role_set"} and len(mine) >= 2
    assert all(e["token_id"] == token_id for e in mine)
    assert user.token not in events.text
    assert all(leaf_hash_of_event(e) == e["leaf_hash"] for e in events.json()["items"])
    verified = world.admin.get("/v1/audit/verify").json()
    assert verified["ok"] is True, verified
    proof = world.admin.get("/v1/audit/proofs/inclusion", params={"index": mine[-1]["index"]})
    assert proof.status_code == 200 and proof.json()["leaf_hash"] == mine[-1]["leaf_hash"]


def test_creating_and_revoking_are_audited(world: World) -> None:
    user = world.principal()
    created = user.post("/v1/tokens", json={"label": "audited"}).json()
    user.post(f"/v1/tokens/{created['id']}/revoke")
    events = world.admin.get("/v1/audit").json()["items"]
    while world.admin.get("/v1/audit", params={"cursor": events[-1]["index"]}).json()["items"]:
        events += world.admin.get("/v1/audit", params={"cursor": events[-1]["index"]}).json()["items"]
    about = [e for e in events if e["target"] == f"token:{created['id']}"]
    assert [e["action"] for e in about] == ["token.created", "token.revoked"]
    assert all(e["actor"] == user.principal and e["token_id"] == _first_token(user) for e in about)


def _first_token(api: Api) -> str:
    return str(api.get("/v1/tokens").json()["items"][0]["id"])


@pytest.fixture
def access_log() -> Iterator[io.StringIO]:
    """The JSON log lines of the requests made meanwhile (tests run at WARNING: INFO here)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger("rlhf_registry")
    level = root.level
    root.setLevel(logging.INFO)
    root.addHandler(handler)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def test_request_log_lines_name_the_token_id(world: World, access_log: io.StringIO) -> None:
    user = world.principal()
    project = world.project(**{user.principal: "admin"})
    token_id = _own_token_id(user)
    record = user.post(f"/v1/projects/{project}/criteria", json=criteria_body("1.0.0")).json()
    user.get(f"/v1/records/{record['id']}")  # a hot read
    user.get("/v1/me")  # a route with the principal dependency
    world.client.get("/v1/me")  # no token
    lines = [json.loads(line) for line in access_log.getvalue().splitlines()]
    requests = {(e["method"], e["path"]): e for e in lines if e.get("msg") == "request"}
    for key in (("POST", f"/v1/projects/{project}/criteria"), ("GET", f"/v1/records/{record['id']}")):
        assert requests[key]["token_id"] == token_id, requests[key]
    assert any(e.get("token_id") == token_id and e["path"] == "/v1/me" for e in lines if e.get("msg") == "request")
    assert any("token_id" not in e and e.get("path") == "/v1/me" and e["status"] == 401 for e in lines)
    assert user.token not in access_log.getvalue()


def test_a_maximum_lifetime_caps_and_defaults_the_expiry(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(world.state.settings, "token_max_days", 30)
    user = world.principal()
    created = user.post("/v1/tokens", json={}).json()
    assert datetime.fromisoformat(created["expires_at"]) <= utcnow() + timedelta(days=30)
    assert datetime.fromisoformat(created["expires_at"]) > utcnow() + timedelta(days=29)
    refused = user.post("/v1/tokens", json={"expires_in_days": 31})
    assert refused.status_code == 422 and refused.json()["code"] == "validation_failed"


def test_expiry_rules() -> None:
    now = utcnow()
    assert tokens.expiry(expires_in_days=None, expires_at=None, max_days=None, now=now) is None
    assert tokens.expiry(expires_in_days=2, expires_at=None, max_days=None, now=now) == now + timedelta(days=2)
    assert tokens.expiry(expires_in_days=None, expires_at=None, max_days=5, now=now) == now + timedelta(days=5)
    with pytest.raises(ValidationFailed):
        tokens.expiry(expires_in_days=6, expires_at=None, max_days=5, now=now)
    with pytest.raises(ValidationFailed):
        tokens.expiry(expires_in_days=None, expires_at=now, max_days=None, now=now)
    parent = now + timedelta(days=3)
    assert (
        tokens.expiry(expires_in_days=None, expires_at=None, max_days=None, now=now, parent_expires_at=parent) == parent
    )
    assert tokens.expiry(
        expires_in_days=None, expires_at=None, max_days=2, now=now, parent_expires_at=parent
    ) == now + timedelta(days=2)
    assert tokens.expiry(expires_in_days=None, expires_at=None, max_days=5, now=now, parent_expires_at=parent) == parent
    with pytest.raises(ValidationFailed):
        tokens.expiry(expires_in_days=4, expires_at=None, max_days=None, now=now, parent_expires_at=parent)
