import json
from pathlib import Path
import pytest
from app.packages.archive import zip_bytes
from app.state import AppState
from tests.packages.conftest import Built
from tests.packages.test_verify_memory import _resign, _verify_measured, _write, MiB, public_key  # noqa

pytestmark = pytest.mark.parametrize("stack", ["sqlite-fs"], indirect=True)

@pytest.mark.parametrize("field,count", [("spec", 1), ("id", 3), ("parents", 3)])
def test_probe(built: Built, stack: AppState, tmp_path: Path, public_key: Path, field: str, count: int) -> None:
    files = built.files()
    paths = [p for p in sorted(files) if p.startswith("records/")][:count]
    for path in paths:
        record = json.loads(files[path])
        big = "\U0001F600" + "a" * (int(3.9 * MiB) - 400 - len(json.dumps(record)))
        if field == "parents":
            record["parents"] = [{"id": "x" * 36, "role": "r", "kind": "k"}] * 40000
        else:
            record[field] = {"big": big} if field == "spec" else big
        files[path] = json.dumps(record, ensure_ascii=False).encode()
    _resign(stack, files, {})
    code, output, peak = _verify_measured(_write(tmp_path, zip_bytes(files)), public_key)
    print(field, count, code, [l[:150] for l in output.splitlines() if "refused" in l or "budget" in l or "links" in l][:3], peak / MiB)
