"""The CLI starts light: importing it, or printing a command's help, loads neither pyarrow nor the
server's stack; only the commands that need them (`datasets export`, a kind named) import them."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("pyarrow", "numpy", "sqlalchemy", "fastapi", "app.kinds")

_PROBE = """
import json, sys
from app.cli import main
sys.argv = ["rlhf-registry", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)), file=sys.stderr)
"""


def _loaded(*args: str) -> list[str]:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE.format(heavy=HEAVY), *args], capture_output=True, text=True, timeout=120
    )
    loaded: list[str] = json.loads(result.stderr.strip().splitlines()[-1])
    return loaded


def test_start_up_imports_nothing_heavy() -> None:
    assert _loaded("--help") == []
    assert _loaded("records", "list", "--help") == []
    assert _loaded("datasets", "export", "--help") == []
