"""`rlhf-registry package build|download` as a client of the API, then `verify` on what it wrote."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from app.cli import app
from app.cli import packages as cli_packages
from app.client import RegistryClient
from tests.packages.conftest import Built
from tests.packages.conftest import built as built  # the fixture: one approved chain and its package

runner = CliRunner()
# the client passes timeout=None for long builds and downloads; the TestClient standing in for httpx warns
pytestmark = pytest.mark.filterwarnings("ignore:You should not use the 'timeout' argument")


@pytest.fixture
def as_approver(built: Built, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's client, talking to the test app with the approver's token."""
    application, headers = built.chain.world.client.app, built.chain.approver.headers

    class Bound(RegistryClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self._http = TestClient(application, headers=headers)

    monkeypatch.setattr(cli_packages, "RegistryClient", Bound)


def test_build_download_and_verify(built: Built, as_approver: None, tmp_path: Path) -> None:
    chain = built.chain
    out = tmp_path / "built.zip"
    result = runner.invoke(app, ["package", "build", chain.project, "prod@1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "handoff_package prod-v1 1" in result.output and out.read_bytes() == built.archive
    again = tmp_path / "downloaded.zip"
    result = runner.invoke(app, ["package", "download", chain.project, "prod-v1", "latest", "--out", str(again)])
    assert result.exit_code == 0, result.output
    assert again.read_bytes() == built.archive
    verified = runner.invoke(app, ["verify", str(again)])
    assert verified.exit_code == 0 and "OK" in verified.output, verified.output


def test_build_refusal_is_reported(built: Built, as_approver: None) -> None:
    chain = built.chain
    proposed = chain.deployment(name="cli-candidate")
    result = runner.invoke(app, ["package", "build", chain.project, proposed["id"]])
    assert result.exit_code == 1 and "deployment_not_approved" in result.output
