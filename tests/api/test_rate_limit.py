"""Per-token write rate limits: off by default; when set, a token over its rate gets 429 `rate_limited`
with Retry-After, while its reads and other tokens' writes go on."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import anyio
import pytest
from fastapi.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from app.api.middleware import WriteRateLimitMiddleware
from app.core.security import bearer_secret
from app.core.settings import Settings
from app.main import create_app
from app.state import AppState
from tests.conftest import World

PER_MINUTE = 3


@pytest.fixture
def limited(sqlite_stack: AppState) -> Iterator[World]:
    """An app of its own over the shared database, allowing `PER_MINUTE` writes a minute per token."""
    settings = sqlite_stack.settings.model_copy(update={"write_rate_limit": PER_MINUTE})
    state = dataclasses.replace(sqlite_stack, settings=settings)
    with TestClient(create_app(state=state), raise_server_exceptions=False) as client:
        yield World(state, client)


def test_writes_over_the_rate_are_refused_with_retry_after(limited: World) -> None:
    api = limited.principal()
    for _ in range(PER_MINUTE):
        assert api.post("/v1/projects", json={}).status_code == 422  # reaches the route, which refuses it
    response = api.post("/v1/projects", json={})
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "rate_limited"
    assert 1 <= int(response.headers["retry-after"]) <= 60 // PER_MINUTE
    assert response.headers["x-request-id"]
    assert api.request("DELETE", "/v1/projects/any").status_code == 429
    assert api.get("/v1/projects").status_code == 200  # reads are not limited
    other = limited.principal()
    assert other.post("/v1/projects", json={}).status_code == 422


def test_spellings_of_one_token_share_its_bucket(limited: World) -> None:
    api = limited.principal()
    spellings = [f"bearer {api.token}", f"Bearer    {api.token}", f"BEARER {api.token}  ", f"bEaReR \t{api.token}"]
    answers = [api.post("/v1/projects", json={}, headers={"Authorization": h}).status_code for h in spellings]
    assert answers == [422] * PER_MINUTE + [429]


def test_secrets_that_authenticate_nothing_take_no_write_from_a_token(limited: World) -> None:
    api = limited.principal()
    assert api.post("/v1/projects", json={}).status_code == 422  # the token's bucket exists
    for header in ("Bearer rlr_made-up", "Bearer ", "Basic x", f"Bearer {api.token}x"):
        for _ in range(PER_MINUTE + 1):  # made-up tokens are never limited: authentication refuses them
            response = limited.client.post("/v1/projects", json={}, headers={"Authorization": header})
            assert response.status_code == 401 and response.json()["code"] == "unauthenticated"
    assert [api.post("/v1/projects", json={}).status_code for _ in range(PER_MINUTE)] == [422] * (PER_MINUTE - 1) + [
        429
    ]


def test_only_authenticated_secrets_make_buckets() -> None:
    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if bearer_secret(dict(scope["headers"]).get(b"authorization", b"").decode()) == "good":
            scope.setdefault("state", {})["token_id"] = "id"  # as `note_token` does once a route authenticates
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    limiter = WriteRateLimitMiddleware(app=app, per_minute=2)

    async def write(authorization: bytes | None) -> int:
        sent: list[Message] = []

        async def send(message: Message) -> None:
            sent.append(message)

        headers = [(b"authorization", authorization)] if authorization is not None else []
        scope: Scope = {"type": "http", "method": "POST", "headers": headers}
        await limiter(scope, lambda: None, send)  # type: ignore[arg-type]
        return int(sent[0]["status"])

    async def walk() -> list[int]:
        for made_up in (b"Bearer bad", b"bearer  other", b"Basic good", b"Bearer ", None):
            assert await write(made_up) == 200
        assert limiter.buckets == {}
        return [await write(b) for b in (b"Bearer good", b"bearer   good", b"BEARER good")]

    assert anyio.run(walk) == [200, 200, 429]
    assert len(limiter.buckets) == 1


def test_no_limit_by_default(world: World) -> None:
    assert Settings.model_fields["write_rate_limit"].default == 0
    api = world.principal()
    assert all(api.post("/v1/projects", json={}).status_code == 422 for _ in range(20))


def test_a_bucket_refills_at_the_rate() -> None:
    limiter = WriteRateLimitMiddleware(app=None, per_minute=6)  # type: ignore[arg-type]
    assert [limiter.take(b"t", 0.0) for _ in range(7)] == [0.0] * 6 + [10.0]
    assert limiter.take(b"t", 5.0) == 5.0  # half a write refilled: five seconds to go
    assert limiter.take(b"t", 10.0) == 0.0
    assert limiter.take(b"other", 10.0) == 0.0


def test_buckets_are_bounded() -> None:
    limiter = WriteRateLimitMiddleware(app=None, per_minute=1)  # type: ignore[arg-type]
    limiter.MAX_BUCKETS = 2
    for key in (b"a", b"b", b"c"):
        assert limiter.take(key, 0.0) == 0.0
    assert list(limiter.buckets) == [b"b", b"c"]
