"""`make demo` end to end: the whole loop through a real `serve` with its worker, ending with `verify`
passing on the package it built (fewer PandaLM pairs than `make demo` uses, same code path). It reads
only the data shipped in `demo/data`: the environment it runs in names no folder outside the repository."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_demo_builds_an_approved_package_that_verifies(tmp_path: Path) -> None:
    data_dir = tmp_path / "demo-data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RLHF_REGISTRY_", "RLHF_SHARED_DATA"))}
    result = subprocess.run(
        [sys.executable, "-m", "demo.run", "--data-dir", str(data_dir), "--pairs", "120"],
        cwd=ROOT,
        env={**env, "OMP_NUM_THREADS": "1", "COLUMNS": "400"},  # rich wraps long paths at 80 otherwise
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert f"OK {data_dir / 'handoff.zip'}" in result.stdout
    assert "checked: lineage back to criteria" in result.stdout
    verify = subprocess.run(
        [
            sys.executable,
            "-m",
            "app.cli",
            "verify",
            str(data_dir / "handoff.zip"),
            "--public-key",
            str(data_dir / "signing-key.pem"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
