"""`make demo` end to end: the whole loop through a real `serve` with its worker, ending with `verify`
passing on the package it built (fewer PandaLM pairs than `make demo` uses, same code path), with the SFT
stage (a demonstration set and an `sft` checkpoint the RLOO policy starts from) in the package's records,
and the deployed checkpoint the candidate of an AI-judged campaign across the series, labelled as such. It reads
only the data shipped in `demo/data`: the environment it runs in names no folder outside the repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _records(archive: Path) -> dict[str, dict[str, Any]]:
    with zipfile.ZipFile(archive) as package:
        named = [n for n in package.namelist() if n.startswith("records/") and n.endswith(".json")]
        return {r["id"]: r for r in (json.loads(package.read(n)) for n in named)}


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
    assert "SFT (demonstrations) -> reward model -> RLOO (from the SFT checkpoint)" in result.stdout
    records = _records(data_dir / "handoff.zip")
    [demonstrations] = [r for r in records.values() if r["kind"] == "demonstration_set"]
    assert demonstrations["spec"]["procedure"].startswith("Responses preferred by PandaLM's annotators")
    [sft] = [r for r in records.values() if r["kind"] == "policy_checkpoint" and r["spec"]["algorithm"] == "sft"]
    assert {p["id"] for p in sft["parents"]} >= {demonstrations["id"]}
    [deployment] = [r for r in records.values() if r["kind"] == "deployment"]
    [deployed] = [p["id"] for p in deployment["parents"] if p["kind"] == "policy_checkpoint"]
    policy = records[deployed]
    assert policy["spec"]["algorithm"] == "rloo"
    assert {p["role"]: p["id"] for p in policy["parents"]}["reference_model"] == sft["id"]
    # the candidate of a campaign across the RLOO series, judged by the reward model and shown as AI judgments
    [campaign] = [r for r in records.values() if r["kind"] == "evaluation_campaign"]
    [judged] = [r for r in records.values() if r["kind"] == "evaluation" and r["spec"]["type"] == "ai_preference"]
    assert {p["id"] for p in judged["parents"]} >= {campaign["id"], deployed}
    assert judged["derived"]["ai_judged"] is True and judged["derived"]["candidate"]["model"] == deployed
    assert [r["role"] for r in judged["derived"]["ratings"]] == ["reference", "checkpoint", "checkpoint"]
    assert "candidate (AI judge)" in result.stdout
    with zipfile.ZipFile(data_dir / "handoff.zip") as package:
        report = package.read("handoff.html").decode()
    assert "AI judge" in report and "Ratings across the series" in report
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
