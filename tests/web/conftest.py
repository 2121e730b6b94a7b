from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.state import AppState
from tests.conftest import World
from tests.web.support import Site, approved_chain, build_package, queued_run


@pytest.fixture(scope="module")
def site(stack: AppState, _clients: TestClient) -> Site:
    """One approved chain with its package per stack and module; tests that change a chain (revocation)
    make their own."""
    world = World(stack, _clients)
    chain, deployment = approved_chain(world)
    return Site(
        world=world,
        chain=chain,
        viewer=world.member(chain.project, "viewer"),
        deployment=deployment,
        run_id=queued_run(chain),
        package_id=build_package(chain, deployment),
    )
