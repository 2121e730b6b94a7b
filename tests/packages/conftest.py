"""One approved chain and its built package per stack, shared by the package tests of a module."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.state import AppState
from tests.conftest import World
from tests.packages.chain import PackageChain


@dataclass
class Built:
    chain: PackageChain
    deployment: dict[str, Any]
    package: dict[str, Any]
    archive: bytes

    def files(self) -> dict[str, bytes]:
        with zipfile.ZipFile(io.BytesIO(self.archive)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}


@pytest.fixture(scope="module")
def built(stack: AppState, _clients: TestClient) -> Built:
    chain = PackageChain(World(stack, _clients))
    deployment = chain.approved()
    response = chain.build(deployment)
    assert response.status_code == 201, response.text
    package = response.json()
    return Built(chain, deployment, package, chain.download(package))
