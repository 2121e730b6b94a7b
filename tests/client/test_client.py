"""The Python client (and so the CLI) as a caller on a real network: an answer lost on the way back is
retried under the same Idempotency-Key and returns the run the first attempt created."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from app.client import RegistryClient
from app.core.settings import Settings
from bench.serving import HOST
from tests.decisions.test_model_chain import Chain
from tests.support.live_app import served


class AnswerLosingProxy(ThreadingHTTPServer):
    """Forwards every request to `upstream`; the answers to the first `lose` POSTs are dropped after the
    server has handled them, as a connection cut on the way back would."""

    def __init__(self, upstream: str, lose: int) -> None:
        super().__init__((HOST, 0), _Forward)
        self.upstream = upstream
        self.lose = lose
        self.seen_keys: list[str | None] = []

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.server_address[1]}"


class _Forward(BaseHTTPRequestHandler):
    server: AnswerLosingProxy

    def do_GET(self) -> None:
        self._forward(b"")

    def do_POST(self) -> None:
        self._forward(self.rfile.read(int(self.headers.get("Content-Length", "0"))))

    def _forward(self, body: bytes) -> None:
        headers = {k: v for k, v in self.headers.items() if k.lower() not in {"host", "content-length", "connection"}}
        answer = httpx.request(self.command, self.server.upstream + self.path, headers=headers, content=body)
        if self.command == "POST":
            self.server.seen_keys.append(self.headers.get("Idempotency-Key"))
            if self.server.lose > 0:
                self.server.lose -= 1
                self.close_connection = True
                return
        self.send_response(answer.status_code)
        for name in ("content-type", "retry-after"):
            if name in answer.headers:
                self.send_header(name, answer.headers[name])
        self.send_header("Content-Length", str(len(answer.content)))
        self.end_headers()
        self.wfile.write(answer.content)

    def log_message(self, *_: object) -> None:
        pass


@contextmanager
def proxy(upstream: str, lose: int) -> Iterator[AnswerLosingProxy]:
    server = AnswerLosingProxy(upstream, lose)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, log_level="CRITICAL", reaper_interval_seconds=3600.0)


def test_a_lost_answer_is_retried_under_one_key_and_returns_the_first_run(settings: Settings) -> None:
    with served(settings) as live, proxy(live.url, lose=1) as lossy:
        chain = Chain(live.world)
        body = {
            "kind": "reward_model",
            "inputs": {"dataset": {"id": chain.dataset["id"]}, "base_model": {"id": chain.base["id"]}},
            "params": {"max_steps": 2, "seed": 1},
            "output_name": "rm-run",
        }
        with RegistryClient(lossy.url, chain.trainer.token) as client:
            run = client.start_run(chain.project, body)
            second = client.start_run(chain.project, body)
        runs = chain.trainer.get(chain.url("runs")).json()["items"]
    assert len(lossy.seen_keys) == 3 and lossy.seen_keys[0] == lossy.seen_keys[1] != lossy.seen_keys[2]
    assert all(key for key in lossy.seen_keys)
    # the retry found the run the lost request created; a new submission is a new run
    assert sorted(r["id"] for r in runs) == sorted({run["id"], second["id"]}) and run["id"] != second["id"]


def test_a_lost_answer_is_not_retried_forever(settings: Settings) -> None:
    with served(settings) as live, proxy(live.url, lose=10) as lossy:
        chain = Chain(live.world)
        with RegistryClient(lossy.url, chain.trainer.token) as client, pytest.raises(httpx.TransportError):
            client.start_run(chain.project, {"kind": "score", "inputs": {}, "params": {}}, attempts=2)
    assert len(lossy.seen_keys) == 2
