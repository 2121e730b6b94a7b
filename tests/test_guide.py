"""docs/guide.md as a user follows it: every `bash` block, in order and as written, against a real
`rlhf-registry serve` with its training worker, from criteria to two handoff packages verified offline
(one by the CLI, one by curl)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from bench.serving import serve
from tests.support.services import missing_service

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "guide.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.S | re.M)


def blocks() -> list[tuple[str, str]]:
    return [(match.group(1), match.group(2)) for match in FENCE.finditer(GUIDE.read_text())]


def test_every_command_block_of_the_guide_is_one_the_test_runs() -> None:
    """Blocks are `bash` (run below) except the one `console` block that starts the server, which the
    test replaces with its own `serve`: no command can sit in the guide without being run."""
    languages = [language for language, _ in blocks()]
    assert set(languages) == {"bash", "console"}, languages
    assert [body.strip() for language, body in blocks() if language == "console"] == ["make run"]


def test_the_guide_works_as_written(tmp_path: Path) -> None:
    for tool in ("jq", "curl"):
        if shutil.which(tool) is None:
            missing_service(f"docs/guide.md uses {tool}, which is not installed")
    script = "\n".join(body for language, body in blocks() if language == "bash")
    work = tmp_path / "work"
    work.mkdir()
    with serve(tmp_path / "registry", worker=True, startup_timeout_s=120) as served:
        env = {k: v for k, v in served.env.items() if not k.startswith("RLHF_REGISTRY_")}
        result = subprocess.run(
            ["bash", "-e", "-o", "pipefail", "-c", script],
            cwd=work,
            env={**env, "URL": served.url, "TOKEN": served.token, "REPO": str(ROOT), "OMP_NUM_THREADS": "1"},
            capture_output=True,
            text=True,
            timeout=1500,
        )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]
    # both packages verified offline, the second against the registry's published key
    assert re.search(r"^OK .*handoff\.zip$", result.stdout, re.M), result.stdout[-3000:]
    assert re.search(r"^OK .*handoff-curl\.zip$", result.stdout, re.M), result.stdout[-3000:]
    assert "criteria_version_too_low" in result.stderr
