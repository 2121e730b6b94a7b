"""Runs survive the broker: a Redis of the test's own (no persistence) and a real `rlhf-registry worker`.

One run is queued and its message flushed from Redis; another is submitted while Redis is down (202, and
its retry with the same Idempotency-Key answers the same run). Redis comes back empty, a worker starts,
and the outbox's re-sends get both runs executed, each exactly once, however many duplicates it sent."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import redis

from app.state import AppState
from tests.support.services import missing_service
from tests.workers.e2e_support import Registry, build_registry, celery_worker, registry_app, state_with_broker

pytest.importorskip("trl", reason="the train extra is not installed")

PARAMS = {"max_steps": 2, "seed": 3, "per_device_batch_size": 4, "max_length": 96, "learning_rate": 1e-3}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """`redis-server` on a loopback port, without persistence: a restart comes back with nothing queued."""

    def __init__(self, port: int, log_path: Path) -> None:
        self.port, self.log_path = port, log_path
        self.process: subprocess.Popen[bytes] | None = None
        self.client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=1, socket_timeout=2)

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            missing_service("redis-server is not installed")
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(argv, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        _wait(self._answers, 20, "redis-server to answer")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def _answers(self) -> bool:
        try:
            return bool(self.client.ping())
        except redis.exceptions.ConnectionError:
            return False

    def queued(self) -> int:
        """Messages waiting in the runs queue (every priority list kombu keeps for it)."""
        return sum(
            int(self.client.llen(key)) for key in self.client.scan_iter("runs*") if self.client.type(key) == b"list"
        )


@contextmanager
def redis_server(tmp: Path) -> Iterator[RedisServer]:
    server = RedisServer(_free_port(), tmp / "redis.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _wait(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _executions(registry: Registry, run_id: str) -> list[dict[str, Any]]:
    events = registry.trainer.get(registry.url(f"runs/{run_id}/events")).json()["items"]
    return [e for e in events if e["type"] == "status" and e["data"]["status"] == "running"]


def test_runs_survive_a_flushed_queue_and_a_broker_outage_exactly_once(sqlite_stack: AppState, tmp_path: Path) -> None:
    with redis_server(tmp_path) as broker:
        state = state_with_broker(
            sqlite_stack,
            f"redis://127.0.0.1:{broker.port}/0",
            run_lease_seconds=60.0,
            dispatch_interval_seconds=0.3,
            dispatch_backoff_seconds=1.0,
            dispatch_backoff_max_seconds=2.0,
        )
        with registry_app(state) as client:
            registry = build_registry(client, state, tmp_path, pairs=40)
            inputs = {"dataset": {"id": registry.dataset["id"]}, "base_model": {"id": registry.base["id"]}}

            flushed = registry.start("reward_model", inputs, PARAMS, "rm-flushed")
            _wait(lambda: broker.queued() >= 1, 10, "the run's message in Redis")
            broker.client.flushall()
            _wait(lambda: broker.queued() >= 1, 20, "the outbox to send the flushed run again")

            broker.stop()
            body = {"kind": "reward_model", "inputs": inputs, "params": PARAMS, "output_name": "rm-outage"}
            key = {"Idempotency-Key": "outage-1"}
            during = registry.trainer.post(registry.url("runs"), json=body, headers=key)
            assert during.status_code == 202, during.text
            retried = registry.trainer.post(registry.url("runs"), json=body, headers=key)
            assert retried.status_code == 200 and retried.json()["id"] == during.json()["id"]
            ready = client.get("/readyz")
            assert ready.status_code == 200 and ready.json()["checks"]["broker"] == "unreachable"

            broker.start()  # empty: nothing survived the restart
            with celery_worker(state, tmp_path / "worker.log"):
                for run_id in (flushed["id"], during.json()["id"]):
                    done = registry.wait(run_id, ("succeeded", "failed", "cancelled"), timeout_s=300)
                    assert done["status"] == "succeeded", (done, (tmp_path / "worker.log").read_text()[-3000:])
                # every duplicate the outbox sent is consumed, and none executed its run again
                _wait(lambda: broker.queued() == 0, 60, "the duplicates to be consumed")
                for run_id in (flushed["id"], during.json()["id"]):
                    run = registry.trainer.get(registry.url(f"runs/{run_id}")).json()
                    assert run["attempt"] == 1 and len(run["outputs"]) == 1
                    assert len(_executions(registry, run_id)) == 1
            runs = registry.trainer.get(registry.url("runs")).json()["items"]
            assert sorted(r["output_name"] for r in runs) == ["rm-flushed", "rm-outage"]
