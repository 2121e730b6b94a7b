"""Pure ASGI middleware: request ids, access logs and metrics, the JSON body limit and write rate limits."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
import uuid

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.errors import AppError, PayloadTooLarge, RateLimited
from app.core.logging import request_id_var
from app.core.security import bearer_secret

log = logging.getLogger("rlhf_registry.access")

REQUESTS = Counter("rlhf_registry_requests_total", "HTTP requests", ["method", "route", "status"])
LATENCY = Histogram("rlhf_registry_request_seconds", "HTTP request latency", ["method", "route"])

# Raw bodies streamed to the blob store, with limits of their own: `POST /v1/blobs` and the parts of a
# large upload. Every other body (the JSON of `POST /v1/blobs/uploads` included) is bounded here.
STREAMED_PATHS = re.compile(r"^/v1/blobs(/uploads/[^/]+/parts/[^/]+)?$")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = request_id_var.set(request_id)
        status = 500
        start = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.setdefault("headers", [])
                headers.append((b"x-request-id", request_id.encode()))
                # every response, the static files of the pages included: no content sniffing
                if not any(name.lower() == b"x-content-type-options" for name, _ in headers):
                    headers.append((b"x-content-type-options", b"nosniff"))
            await send(message)

        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send_with_id(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception:
            # Inside this middleware, so the 500 carries the request id in its header, body and log line.
            log.exception("unexpected error on %s %s", scope["method"], scope["path"])
            if not started:
                await _send_problem(send_with_id, internal_error(request_id))
        finally:
            elapsed = time.perf_counter() - start
            route = scope.get("route")
            route_path = getattr(route, "path", "unmatched")
            REQUESTS.labels(scope["method"], route_path, str(status)).inc()
            LATENCY.labels(scope["method"], route_path).observe(elapsed)
            log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                },
            )
            request_id_var.reset(token)


def internal_error(request_id: str) -> AppError:
    return AppError(
        f"an unexpected error occurred; quote request id {request_id} when reporting it",
        extra={"request_id": request_id},
    )


async def _send_problem(send: Send, error: AppError, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
    payload = json.dumps(error.to_problem()).encode()
    await send(
        {
            "type": "http.response.start",
            "status": error.status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(payload)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class BodyLimitMiddleware:
    """Refuse JSON bodies over the limit with 413, by Content-Length or while reading a chunked body.

    Blob uploads stream to the store and have their own limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or STREAMED_PATHS.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._refuse(send)
            return
        if length is not None:
            await self.app(scope, receive, send)
            return
        # No Content-Length (chunked): read the body here, counting, and replay it to the app. FastAPI
        # would turn an error raised while it reads into a generic 400.
        messages: list[Message] = []
        seen = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                await self._refuse(send)
                return
            if not message.get("more_body", False):
                break
        replay = iter(messages)

        async def replay_receive() -> Message:
            try:
                return next(replay)
            except StopIteration:
                return await receive()

        await self.app(scope, replay_receive, send)

    def _detail(self) -> str:
        return f"JSON bodies are limited to {self.max_bytes} bytes; send large data as blobs (POST /v1/blobs)"

    async def _refuse(self, send: Send) -> None:
        await _send_problem(send, PayloadTooLarge(self._detail()))


class WriteRateLimitMiddleware:
    """At most `per_minute` writes (POST, PUT, PATCH, DELETE) a minute for each bearer token, in bursts
    of up to as many; beyond, 429 `rate_limited` with `Retry-After`. Reads pass through untouched, and
    so do requests without a bearer secret (their authentication refuses them).

    A token bucket per token, held in this process: each replica limits on its own, so a client spread
    over several replicas may write that many times more. Buckets are keyed by a hash of the secret as
    authentication reads it (`bearer_secret`: any case of `Bearer`, any spaces around the secret), so
    no secret is kept and no respelling of a header escapes its bucket. A bucket is made only once a
    request with that secret has authenticated (the route has named its token on the request's state,
    `app.api.deps.note_token`): made-up secrets fill no buckets. Only the `MAX_BUCKETS` most recently
    used are kept: a bucket dropped for a newer one starts full again when its token comes back.
    Everything runs on the event loop, so the buckets need no lock."""

    MAX_BUCKETS = 100_000

    def __init__(self, app: ASGIApp, per_minute: int) -> None:
        self.app = app
        self.capacity = float(per_minute)
        self.per_second = per_minute / 60.0
        # secret hash -> (tokens left, when counted); in least recently used order
        self.buckets: dict[bytes, tuple[float, float]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = self.key(scope) if scope["type"] == "http" and scope["method"] in WRITE_METHODS else None
        if key is None:
            await self.app(scope, receive, send)
            return
        if key in self.buckets:
            wait = self.take(key, time.monotonic())
            if wait > 0:
                await self._refuse(send, math.ceil(wait))
                return
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_counting(message: Message) -> None:
            # The token's first write here (or its first since its bucket was dropped): counted once it
            # has authenticated. Writes already under way when the bucket is made count as they answer.
            if message["type"] == "http.response.start" and state.get("token_id") is not None:
                self.take(key, time.monotonic())
            await send(message)

        await self.app(scope, receive, send_counting)

    @staticmethod
    def key(scope: Scope) -> bytes | None:
        """The bucket key of a request: a hash of its bearer secret; None when it sends none."""
        header = next((value for name, value in scope["headers"] if name == b"authorization"), None)
        secret = bearer_secret(header.decode("latin-1")) if header is not None else None
        return hashlib.sha256(secret.encode()).digest() if secret is not None else None

    def take(self, key: bytes, now: float) -> float:
        """Spend one write of `key`'s bucket: 0 when allowed, else the seconds until one is refilled."""
        tokens, counted = self.buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - counted) * self.per_second)
        allowed = tokens >= 1.0
        self.buckets[key] = (tokens - 1.0 if allowed else tokens, now)
        if len(self.buckets) > self.MAX_BUCKETS:
            del self.buckets[next(iter(self.buckets))]
        return 0.0 if allowed else (1.0 - tokens) / self.per_second

    async def _refuse(self, send: Send, retry_after: int) -> None:
        error = RateLimited(
            f"this token may write {self.capacity:.0f} times a minute; retry in {retry_after} s",
            extra={"retry_after": retry_after},
        )
        await _send_problem(send, error, ((b"retry-after", str(retry_after).encode()),))
