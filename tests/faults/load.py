"""A bounded client load over both replicas, and the checks every fault test makes afterwards.

A few threads register small criteria records, each thread sending its requests to the replicas in
turn, and read back by id the record each acknowledged. Every answer is kept: what the checks need is
which writes were acknowledged (a 2xx with an id) and what every other answer was.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.factories import criteria_body

PROBLEM = "application/problem+json"


@dataclass(frozen=True)
class Answer:
    """One request's outcome: an HTTP answer, or (`status` None) a transport error."""

    replica: int
    method: str
    path: str
    status: int | None
    content_type: str = ""
    body: Any = None
    retry_after: str | None = None
    error: str = ""
    at: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    @property
    def code(self) -> str | None:
        return self.body.get("code") if isinstance(self.body, dict) else None

    def is_unavailable(self) -> bool:
        """A 503 problem+json with code `unavailable`, as every outage must answer."""
        return self.status == 503 and self.content_type.startswith(PROBLEM) and self.code == "unavailable"


class Clients:
    """One httpx client per replica, with the topology's admin token; thread-safe."""

    def __init__(self, urls: list[str], token: str, *, timeout_s: float = 15.0) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        self.http = [httpx.Client(base_url=url, headers=headers, timeout=timeout_s) for url in urls]

    def close(self) -> None:
        for client in self.http:
            client.close()

    def call(self, replica: int, method: str, path: str, *, as_bytes: bool = False, **kw: Any) -> Answer:
        """One request; with `as_bytes`, a 200's body is kept as `{"sha256": digest of the bytes}`."""
        try:
            response = self.http[replica].request(method, path, **kw)
        except httpx.TransportError as exc:
            return Answer(replica, method, path, None, error=repr(exc), at=time.monotonic())
        body: Any
        if as_bytes and response.status_code == 200:
            body = {"sha256": "sha256:" + hashlib.sha256(response.content).hexdigest()}
        else:
            try:
                body = response.json()
            except ValueError:
                body = response.text[:200]
        return Answer(
            replica,
            method,
            path,
            response.status_code,
            response.headers.get("content-type", ""),
            body,
            response.headers.get("retry-after"),
            at=time.monotonic(),
        )


Operation = Callable[[Clients, int, str], list[Answer]]
"""One step of a load thread: given the replica to send to and a unique key, the answers it got."""


def register_criteria(project: str) -> Operation:
    """Register a criteria record named by the key, then read it by id from the other replica."""

    def step(clients: Clients, replica: int, key: str) -> list[Answer]:
        body = criteria_body("1.0.0", name=key)
        answer = clients.call(replica, "POST", f"/v1/projects/{project}/criteria", json=body)
        if not answer.ok:
            return [answer]
        other = (replica + 1) % len(clients.http)
        return [answer, clients.call(other, "GET", f"/v1/records/{answer.body['id']}")]

    return step


@dataclass
class Load:
    """`threads` threads, each running `operation` at most `per_thread` times, until stopped; thread n
    sends its i-th step to replica (n + i) mod 2, under the key `{tag}-{n}-{i}`."""

    clients: Clients
    operation: Operation
    tag: str
    threads: int = 3
    per_thread: int = 1500
    pause_s: float = 0.05
    answers: list[Answer] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _thread(self, number: int) -> None:
        replicas = len(self.clients.http)
        for i in range(self.per_thread):
            if self._stop.is_set():
                return
            got = self.operation(self.clients, (number + i) % replicas, f"{self.tag}-{number}-{i}")
            with self._lock:
                self.answers.extend(got)
            # a refused step waits longer (as a client honouring Retry-After would, in miniature)
            time.sleep(self.pause_s if all(a.ok for a in got) else 4 * self.pause_s)

    @contextmanager
    def running(self) -> Iterator[Load]:
        workers = [threading.Thread(target=self._thread, args=(n,), daemon=True) for n in range(self.threads)]
        for worker in workers:
            worker.start()
        try:
            yield self
        finally:
            self._stop.set()
            for worker in workers:
                worker.join(timeout=60)
            assert not any(w.is_alive() for w in workers), "a load thread did not stop"

    def wait_for(self, acknowledged: int, *, timeout_s: float = 30) -> None:
        """Until this many writes were acknowledged in all (the load is flowing)."""
        deadline = time.monotonic() + timeout_s
        while len(self.acknowledged()) < acknowledged:
            assert time.monotonic() < deadline, f"fewer than {acknowledged} writes acknowledged: {self.summary()}"
            time.sleep(0.05)

    def wait_for_on(self, *, replica: int, acknowledged: int, since: float, timeout_s: float = 60) -> None:
        """Until `replica` has acknowledged this many writes answered after `since`."""
        self._wait(
            lambda a: a.replica == replica and a.method == "POST" and a.ok and a.at >= since,
            acknowledged,
            timeout_s,
            f"{acknowledged} writes acknowledged by replica {replica}",
        )

    def wait_for_unavailable(self, *, replica: int, count: int, since: float, timeout_s: float = 30) -> None:
        """Until `replica` has answered this many requests with a 503 `unavailable` after `since`."""
        self._wait(
            lambda a: a.replica == replica and a.is_unavailable() and a.at >= since,
            count,
            timeout_s,
            f"{count} answers 503 unavailable from replica {replica}",
        )

    def _wait(self, match: Callable[[Answer], bool], count: int, timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            with self._lock:
                seen = sum(1 for a in self.answers if match(a))
            if seen >= count:
                return
            assert time.monotonic() < deadline, f"no {what} within {timeout_s:.0f} s: {self.summary()}"
            time.sleep(0.05)

    def acknowledged(self) -> list[Answer]:
        """The successful POSTs: the writes a client was told are stored."""
        with self._lock:
            return [a for a in self.answers if a.method == "POST" and a.ok]

    def failures(self) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if not a.ok]

    def summary(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self._lock:
            for a in self.answers:
                key = f"{a.method} r{a.replica} {a.status if a.status is not None else 'transport'}"
                counts[key] = counts.get(key, 0) + 1
        return counts


def assert_only_unavailable(failures: list[Answer], *, allow_transport: Callable[[Answer], bool]) -> None:
    """Every answer that was not a success is a 503 `unavailable` problem with a Retry-After (or, where
    `allow_transport` says so, a transport error from a replica that was down)."""
    bad = [
        a
        for a in failures
        if not (a.is_unavailable() and a.retry_after) and not (a.status is None and allow_transport(a))
    ]
    assert not bad, f"{len(bad)} answers other than 503 unavailable, e.g. {bad[:3]}"


def assert_records_durable(clients: Clients, project: str, acknowledged: list[Answer]) -> None:
    """Every acknowledged record reads back by id, the same, from every replica; the collection's list
    holds each of them, and everything listed reads back by id (nothing half-written is visible)."""
    assert acknowledged, "no write was acknowledged"
    for answer in acknowledged:
        record = answer.body
        for replica in range(len(clients.http)):
            got = clients.call(replica, "GET", f"/v1/records/{record['id']}")
            assert got.status == 200, got
            assert got.body["digest"] == record["digest"] and got.body["name"] == record["name"]
    listed = list_all(clients, project)
    missing = {a.body["id"] for a in acknowledged} - set(listed)
    assert not missing, f"acknowledged but not listed: {sorted(missing)[:5]}"
    for record_id, name in itertools.islice(listed.items(), 0, None, max(1, len(listed) // 40)):
        latest = clients.call(0, "GET", f"/v1/projects/{project}/criteria/{name}/latest")
        assert latest.status == 200 and latest.body["id"] == record_id, latest


def list_all(clients: Clients, project: str) -> dict[str, str]:
    """Every criteria record of `project`, id to name, paged through replica 1."""
    found: dict[str, str] = {}
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = clients.call(1, "GET", f"/v1/projects/{project}/criteria", params=params)
        assert page.status == 200, page
        found.update({item["id"]: item["name"] for item in page.body["items"]})
        cursor = page.body["next_cursor"]
        if cursor is None:
            return found


def assert_audit_verifies(clients: Clients) -> None:
    for replica in range(len(clients.http)):
        verified = clients.call(replica, "GET", "/v1/audit/verify")
        assert verified.status == 200 and verified.body["ok"] is True, verified


def wait_until_writes_succeed(clients: Clients, project: str, tag: str, *, timeout_s: float = 30) -> None:
    """Each replica, as it runs (no restart), acknowledges a write again within `timeout_s`."""
    for replica in range(len(clients.http)):
        deadline = time.monotonic() + timeout_s
        attempt = 0
        while True:
            body = criteria_body("1.0.0", name=f"{tag}-recovered-{replica}-{attempt}")
            answer = clients.call(replica, "POST", f"/v1/projects/{project}/criteria", json=body)
            if answer.ok:
                break
            assert time.monotonic() < deadline, f"replica {replica} did not recover: {answer}"
            attempt += 1
            time.sleep(0.2)
