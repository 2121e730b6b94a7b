"""`bench/profile_requests.py` sends every phase through the app in process, every request answered as
the phase expects, and prints a CPU figure per phase and a profile when asked.

Behaviour only: which figures the script prints, never how fast."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.test_bench_api import REGISTRY_PHASES

ROOT = Path(__file__).resolve().parent.parent


def test_profile_requests_prints_cpu_per_request_of_every_phase() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "bench/profile_requests.py",
            "-n",
            "3",
            "--warmup",
            "1",
            "--profile",
            "read by id",
            "--top",
            "300",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    rows = {}
    for line in done.stdout.splitlines():
        found = re.match(r"^(\S.*?)\s+3\s+(\d+\.\d\d)\s+-\s+\d+\.\d\d\s*(\d+%)?$", line)
        if found:
            rows[found[1]] = found
    for phase in ["bare GET", "bare POST", *REGISTRY_PHASES]:
        assert phase in rows, (phase, done.stdout[-3000:])
        assert float(rows[phase][2]) > 0, phase
    for phase in REGISTRY_PHASES:
        assert rows[phase][3] is not None, phase  # compared with the bare app
    assert re.search(r"cProfile of 3 requests of 'read by id' \([1-9]\d* pool thread", done.stdout)
    # the handler and the authentication run in a pool thread: that thread was profiled too
    assert "record_by_id" in done.stdout and "authenticate" in done.stdout
