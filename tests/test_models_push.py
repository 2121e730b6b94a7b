"""`rlhf-registry models push` against a real `serve` (embedded filesystem store): uploads a model folder
(a small file in one POST, a large one in a multipart session), skips everything the second time, and
resumes an interrupted multipart upload from the parts already stored."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.client import RegistryClient, sha256_file
from app.client.uploads import THRESHOLD_ENV, folder_files, upload_large
from bench.serving import CLI, Served, serve

MiB = 1024 * 1024
PART = 5 * MiB
COLLECTION = "base-models"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    with serve(tmp_path_factory.mktemp("models-served")) as running:
        yield running


def _project(served: Served) -> str:
    name = f"models-{uuid.uuid4().hex[:8]}"
    response = httpx.post(
        f"{served.url}/v1/projects",
        json={"name": name, "description": "model pushes"},
        headers={"Authorization": f"Bearer {served.token}"},
    )
    assert response.status_code == 201, response.text
    return name


def _models_cli() -> list[str]:
    """`rlhf-registry models` once app/cli.py registers it; the module's own entry point until then."""
    probe = subprocess.run([*CLI, "models", "--help"], capture_output=True, check=False)
    return [*CLI, "models"] if probe.returncode == 0 else [sys.executable, "-m", "app.cli_models"]


def _serves_collection(served: Served) -> bool:
    paths = httpx.get(f"{served.url}/openapi.json").json()["paths"]
    return f"/v1/projects/{{project}}/{COLLECTION}" in paths


def _model_folder(root: Path) -> Path:
    folder = root / "tiny-model"
    (folder / "tokenizer").mkdir(parents=True)
    (folder / ".git" / "objects").mkdir(parents=True)
    (folder / "config.json").write_text('{"architectures": ["TinyForCausalLM"], "hidden_size": 8}')
    (folder / "tokenizer" / "vocab.txt").write_text("\n".join(f"tok{i}" for i in range(1000)))
    (folder / "model.safetensors").write_bytes(os.urandom(2 * PART + 4321))  # above the threshold
    (folder / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (folder / ".git" / "objects" / "ab").write_bytes(b"not part of the model")
    return folder


def _push(served: Served, folder: Path, project: str) -> subprocess.CompletedProcess[str]:
    command = [
        *_models_cli(),
        "push",
        str(folder),
        "--project",
        project,
        "--collection",
        COLLECTION,
        "--name",
        "tiny",
        "--part-size",
        str(PART),
    ]
    env = {**served.env, THRESHOLD_ENV: str(MiB), "COLUMNS": "200"}
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, check=False)


def _lines(result: subprocess.CompletedProcess[str], what: str) -> list[str]:
    return sorted(line.split()[-1] for line in (result.stdout + result.stderr).splitlines() if line.startswith(what))


def test_push_uploads_the_folder_then_skips_everything(served: Served, tmp_path: Path) -> None:
    folder = _model_folder(tmp_path)
    files = ["config.json", "model.safetensors", "tokenizer/vocab.txt"]
    assert [path for path, _ in folder_files(folder)] == files
    registers = _serves_collection(served)
    project = _project(served)

    first = _push(served, folder, project)
    assert _lines(first, "uploaded") == files, first.stdout + first.stderr
    headers = {"Authorization": f"Bearer {served.token}"}
    for path in files:
        digest = sha256_file(folder / path)
        head = httpx.head(f"{served.url}/v1/blobs/{digest}", headers=headers)
        assert head.status_code == 200 and head.headers["content-length"] == str((folder / path).stat().st_size)
    if registers:
        assert first.returncode == 0, first.stderr
    else:  # the upload half worked; the collection is not served yet
        assert first.returncode == 1 and "not_found" in first.stderr, first.stderr

    second = _push(served, folder, project)
    assert _lines(second, "skipped (already stored)") == files, second.stdout + second.stderr
    assert _lines(second, "uploaded") == []
    if registers:
        assert second.returncode == 0, second.stderr
        assert "3 uploaded" not in second.stdout and "0 uploaded, 3 skipped" in second.stdout


def test_push_registers_the_folder(served: Served, tmp_path: Path) -> None:
    if not _serves_collection(served):
        pytest.skip(f"the {COLLECTION} collection is not served yet: registration of pushed folders is unchecked")
    folder = _model_folder(tmp_path)
    project = _project(served)
    result = _push(served, folder, project)
    assert result.returncode == 0, result.stderr
    with RegistryClient(served.url, served.token) as client:
        record = client.get(project, COLLECTION, "tiny")
    expected = [
        {"path": path, "digest": sha256_file(file), "size": file.stat().st_size} for path, file in folder_files(folder)
    ]
    assert record["spec"]["files"] == expected
    assert f"id={record['id']}" in result.stdout
    again = _push(served, folder, project)
    assert again.returncode == 0 and f"id={record['id']}" in again.stdout  # identical content: same record


class Interrupted(Exception):
    pass


def test_interrupted_multipart_upload_resumes_from_the_stored_parts(served: Served, tmp_path: Path) -> None:
    data = tmp_path / "weights.bin"
    data.write_bytes(os.urandom(3 * PART + 7))
    size = data.stat().st_size
    sent = 0

    def killed_in_part_two(nbytes: int) -> None:
        nonlocal sent
        sent += nbytes
        if sent > PART + MiB:
            raise Interrupted

    with RegistryClient(served.url, served.token) as client:
        with pytest.raises(Interrupted):
            upload_large(client, data, killed_in_part_two, part_size=PART, concurrency=1)
        progressed: list[int] = []
        result = upload_large(client, data, progressed.append, part_size=PART, concurrency=1)
        assert result.sent == size - PART  # part 1 was stored; the cut-off part 2 was not
        assert sum(progressed) == size
        assert (result.digest, result.size) == (sha256_file(data), size)
        again = upload_large(client, data, part_size=PART)
        assert again.sent == 0  # now stored: nothing to send
