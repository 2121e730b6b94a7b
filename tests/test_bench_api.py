"""`bench/api.py --quick` measures every registration kind and read path without a failed request.

Behaviour only: which figures the bench prints and that every request succeeded, never how fast."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGISTRY_PHASES = [
    "register policy",
    "register criteria",
    "register waiver",
    "register evaluation",
    "register deployment",
    "register prompt set",
    "read by id",
    "read name/version",
    "read name/latest",
    "list page of 50",
    "lineage upstream",
]


def test_quick_bench_prints_a_figure_for_every_kind_and_read_path(tmp_path: Path) -> None:
    figures_path = tmp_path / "figures.json"
    done = subprocess.run(
        [
            sys.executable,
            "bench/api.py",
            "--quick",
            "--only",
            "sqlite",
            "--clients",
            "8",
            "--json",
            str(figures_path),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,  # the bench stops its servers on its own; this only bounds a hang
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    figures = json.loads(figures_path.read_text())
    by_phase = {(f["config"], f["phase"]): f for f in figures}
    expected = [("sqlite", phase) for phase in REGISTRY_PHASES]
    expected += [("bare --workers 1", "bare GET"), ("bare --workers 1", "bare POST")]
    for key in expected:
        figure = by_phase[key]
        assert figure["requests"] > 0, key
        assert figure["errors"] == 0, (key, figure["error_samples"])
        assert figure["p99_ms"] is not None, key
    for phase in REGISTRY_PHASES:
        assert by_phase[("sqlite", phase)]["ratio"] is not None, phase
        assert any(line.startswith("sqlite") and phase in line for line in done.stdout.splitlines()), phase
    assert "all requests succeeded (2xx)" in done.stdout
