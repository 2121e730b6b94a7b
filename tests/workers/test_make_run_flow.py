"""The issue's acceptance path: a run started against `serve` with its embedded worker (what `make run`
starts), followed with `rlhf-registry runs watch`, ends with a registered checkpoint whose lineage
reaches the criteria."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from app.core import migrate
from app.core.settings import Settings
from app.state import AppState
from bench.serving import CLI, serve
from tests.workers.e2e_support import build_registry

pytest.importorskip("trl", reason="the train extra is not installed")


def test_run_started_and_watched_ends_with_a_checkpoint_tracing_to_criteria(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with serve(data, worker=True) as served:
        migrate.upgrade(f"sqlite:///{data / 'registry.db'}")
        state = AppState.build(Settings(data_dir=data, log_level="WARNING"))
        with httpx.Client(base_url=served.url, timeout=120) as client:
            registry = build_registry(client, state, tmp_path / "models", pairs=60)  # type: ignore[arg-type]
        params = json.dumps({"max_steps": 3, "seed": 1, "per_device_batch_size": 4, "max_length": 96})
        env = {**served.env, "RLHF_REGISTRY_TOKEN": registry.trainer.token, "COLUMNS": "160"}
        started = subprocess.run(
            [
                *CLI,
                "runs",
                "start",
                registry.project,
                "--kind",
                "reward_model",
                "--input",
                f"dataset={registry.dataset['id']}",
                "--input",
                f"base_model={registry.base['id']}",
                "--params",
                params,
                "--output-name",
                "rm",
                "--watch",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert started.returncode == 0, started.stdout + started.stderr
        assert "succeeded" in started.stdout and "registered reward_checkpoint" in started.stdout
        record_id = started.stdout.split("registered reward_checkpoint ")[1].split()[0]
        trace = subprocess.run([*CLI, "trace", record_id], env=env, capture_output=True, text=True, timeout=60)
        assert "criteria assistant-quality v1.0.0" in trace.stdout, trace.stdout + trace.stderr
        state.sessions.engine.dispose()
