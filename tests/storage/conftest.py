"""The `backend` fixture of the blob store contract suites: every backend, S3 on the session's SeaweedFS."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.blob_backends import Backend, fs_backend, s3_backend
from tests.support.seaweed import SeaweedServer


@pytest.fixture(params=["fs", pytest.param("s3", marks=pytest.mark.s3)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if request.param == "fs":
        return fs_backend(tmp_path / "blobs")
    server: SeaweedServer = request.getfixturevalue("seaweed_s3")
    return s3_backend(server)
