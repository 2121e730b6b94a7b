"""The API checks a run before queueing it without importing torch or TRL: in a fresh interpreter (so no
other test's imports count), a run is accepted and one is refused for an unknown param, and neither
torch, transformers nor trl was imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import json, sys
from fastapi.testclient import TestClient
from app.core import migrate
from app.core.settings import Settings
from app.main import create_app
from app.state import AppState
from tests.decisions.test_model_chain import Chain
from tests.conftest import RecordingDispatcher, World

data = sys.argv[1]
settings = Settings(data_dir=data, log_level="WARNING", reaper_interval_seconds=3600, dispatch_interval_seconds=3600)
migrate.upgrade(settings.database_url)
state = AppState.build(settings)
state.dispatcher = RecordingDispatcher()
with TestClient(create_app(state=state)) as client:
    chain = Chain(World(state, client))
    inputs = {"dataset": {"id": chain.dataset["id"]}, "base_model": {"id": chain.base["id"]}}
    body = {"kind": "rloo", "inputs": {**inputs, "reward_checkpoint": {"id": chain.reward["id"]}}}
    accepted = chain.trainer.post(chain.url("runs"), json={**body, "params": {"max_steps": 2, "warmup_steps": 1}})
    refused = chain.trainer.post(chain.url("runs"), json={**body, "params": {"no_such_knob": 1}})
loaded = sorted(m for m in ("torch", "transformers", "trl") if m in sys.modules)
print(json.dumps({"accepted": accepted.status_code, "refused": refused.json().get("code"), "loaded": loaded}))
"""


def test_run_submission_imports_neither_torch_nor_trl(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    assert outcome == {"accepted": 202, "refused": "validation_failed", "loaded": []}, result.stderr[-3000:]
