"""A failed run says which step failed and why, in words; no traceback reaches its row, its events or the
API (the worker's log keeps it). The trainer is replaced by one that fails: no training here."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select

from app.core.errors import ValidationFailed
from app.runs.models import Run, RunEvent
from app.state import AppState
from tests.conftest import World
from tests.decisions.test_model_chain import Chain
from workers import executor
from workers.trainers import dispatch

NESTED_TRACE = 'CUDA out of memory.\nTraceback (most recent call last):\n  File "/srv/trainer.py", line 3, in step'


@pytest.mark.parametrize(
    ("error", "code", "detail"),
    [
        (
            RuntimeError(NESTED_TRACE),
            "training_failed",
            "training (reward_model) failed: RuntimeError: CUDA out of memory.",
        ),
        (
            ValidationFailed("the reward head needs num_labels=1"),
            "validation_failed",
            "training (reward_model) failed: the reward head needs num_labels=1",
        ),
    ],
)
def test_failed_run_error_names_the_step_without_a_traceback(
    world: World, stack: AppState, monkeypatch: pytest.MonkeyPatch, error: Exception, code: str, detail: str
) -> None:
    chain = Chain(world)
    body = {
        "kind": "reward_model",
        "inputs": {"dataset": {"id": chain.dataset["id"]}, "base_model": {"id": chain.base["id"]}},
        "params": {"max_steps": 1},
    }
    run = chain.trainer.post(chain.url("runs"), json=body).json()

    def fail(job: Any) -> Any:
        raise error

    monkeypatch.setattr(dispatch, "run", fail)
    executor.execute(stack, run["id"], "worker-test")

    answered = chain.trainer.get(chain.url(f"runs/{run['id']}")).json()
    assert answered["status"] == "failed"
    assert answered["error"] == {"code": code, "detail": detail}
    events = chain.trainer.get(chain.url(f"runs/{run['id']}/events")).json()["items"]
    with stack.sessions.read() as session:
        row = session.get(Run, run["id"])
        stored = list(session.scalars(select(RunEvent.data).where(RunEvent.run_id == run["id"])))
    assert row is not None and row.error == answered["error"]
    for text in (json.dumps(answered), json.dumps(events), json.dumps(stored)):
        assert "Traceback" not in text and '"trace"' not in text and "trainer.py" not in text
