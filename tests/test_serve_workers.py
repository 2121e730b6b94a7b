"""`rlhf-registry serve --workers 2` as a user runs it: two API processes answer on one port, exactly one
of them runs the background loops (and another takes over when it dies), one among every replica that
shares a PostgreSQL database, and SIGTERM lets a request in flight finish before the processes exit."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from app.core import migrate
from bench.serving import Served, serve

ELECTED = "elected to run the background loops"
WORKERS = ["--workers", "2", "--shutdown-timeout", "20"]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    with serve(
        tmp_path,
        extra_env={"RLHF_REGISTRY_LOG_LEVEL": "INFO"},
        serve_args=WORKERS,
    ) as running:
        yield running


def parent_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("PPid:"):
            return int(line.split()[1])
    raise AssertionError(f"no PPid for {pid}")


def processes_answering(url: str, *, want: int, rounds: int = 40) -> dict[int, str]:
    """pid -> background role, from /readyz over fresh connections, 8 at a time, until `want` processes
    have answered (the kernel hands each connection to whichever process accepts first)."""

    def ask(_: int) -> tuple[int, str]:
        process = httpx.get(f"{url}/readyz", timeout=10).json()["process"]
        return int(process["pid"]), str(process["background"])

    seen: dict[int, str] = {}
    with ThreadPoolExecutor(8) as pool:
        for _ in range(rounds):
            seen.update(pool.map(ask, range(16)))
            if len(seen) >= want:
                break
    return seen


def log_of(served: Served) -> str:
    return (Path(served.env["RLHF_REGISTRY_DATA_DIR"]) / "serve.log").read_text()


def test_two_processes_serve_and_one_runs_the_background_loops(served: Served) -> None:
    roles = processes_answering(served.url, want=2)

    assert len(roles) == 2, roles
    assert {parent_of(pid) for pid in roles} == {served.pid}
    assert sorted(roles.values()) == ["leader", "standby"]
    assert log_of(served).count(ELECTED) == 1


def test_the_standby_takes_over_when_the_leader_dies(served: Served) -> None:
    roles = processes_answering(served.url, want=2)
    (leader,) = (pid for pid, role in roles.items() if role == "leader")

    os.kill(leader, signal.SIGKILL)

    # uvicorn replaces the killed process; whichever process wins the next campaign leads, and only one
    deadline = time.monotonic() + 30
    leaders: set[int] = set()
    while time.monotonic() < deadline and not leaders:
        time.sleep(0.5)
        try:
            now = processes_answering(served.url, want=2, rounds=5)
        except httpx.TransportError:
            continue
        leaders = {pid for pid, role in now.items() if role == "leader"}
    assert len(leaders) == 1 and leader not in leaders
    assert log_of(served).count(ELECTED) == 2


def test_sigterm_lets_the_request_in_flight_finish(served: Served) -> None:
    processes_answering(served.url, want=2)
    size = 8 * 1024 * 1024
    chunk = os.urandom(256 * 1024)
    first_chunk_sent = threading.Event()

    def slow_body() -> Iterator[bytes]:
        for index in range(size // len(chunk)):
            yield chunk
            if index == 0:
                first_chunk_sent.set()
            time.sleep(0.05)

    answers: list[httpx.Response] = []

    def upload() -> None:
        answers.append(
            httpx.post(
                f"{served.url}/v1/blobs",
                content=slow_body(),
                headers={"Authorization": f"Bearer {served.token}"},
                timeout=60,
            )
        )

    uploading = threading.Thread(target=upload)
    uploading.start()
    assert first_chunk_sent.wait(timeout=30)
    served.process.send_signal(signal.SIGTERM)  # the parent only: it passes SIGTERM on to its children
    uploading.join(timeout=60)

    assert answers and answers[0].status_code == 201, answers
    assert answers[0].json()["size"] == size
    assert served.process.wait(timeout=30) == 0
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{served.url}/healthz", timeout=2)


@pytest.mark.postgres
# a database of its own: the session's shared one is led by the in-process test apps' election
@pytest.mark.parametrize("empty_database", ["postgres"], indirect=True)
def test_one_process_of_two_postgres_replicas_runs_the_background_loops(tmp_path: Path, empty_database: str) -> None:
    pg_database = empty_database
    migrate.upgrade(pg_database)
    shared = {
        "RLHF_REGISTRY_DATABASE_URL": pg_database,
        "RLHF_REGISTRY_BLOB_URL": f"file://{tmp_path / 'blobs'}",
        "RLHF_REGISTRY_SIGNING_KEY_FILE": str(tmp_path / "signing_key.pem"),
    }
    with (
        serve(tmp_path / "a", extra_env=shared, serve_args=WORKERS) as first,
        serve(tmp_path / "b", extra_env=shared, serve_args=WORKERS) as second,
    ):
        # the four processes campaign as they start: wait (bounded) until one has won, never two
        deadline = time.monotonic() + 30
        while True:
            roles = processes_answering(first.url, want=2) | processes_answering(second.url, want=2)
            leaders = [pid for pid, role in roles.items() if role == "leader"]
            assert len(leaders) <= 1, roles
            if leaders or time.monotonic() > deadline:
                break
            time.sleep(0.5)

    assert len(roles) == 4, roles
    assert sorted(roles.values()) == ["leader", "standby", "standby", "standby"]
