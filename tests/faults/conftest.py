"""One production topology for the whole package: starting it takes a good part of the package's time.

Each test takes one component away and brings it back; `heal` starts again, after every test, whatever
is still down, so that the next one begins from the whole topology."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.faults.load import Clients
from tests.support.topology import Topology, topology


@pytest.fixture(scope="package")
def topo() -> Iterator[Topology]:
    with topology() as running:
        yield running


@pytest.fixture(autouse=True)
def heal(topo: Topology) -> Iterator[None]:
    """Every test brings back what it took away: anything found down afterwards died by itself (or the
    test failed half-way); it is started again for the next test, and this test fails."""
    yield
    down = topo.heal()
    assert not down, f"{down} were down after the test:\n{topo.logs()}"


@pytest.fixture
def clients(topo: Topology) -> Iterator[Clients]:
    both = Clients(topo.urls, topo.token)
    yield both
    both.close()


@pytest.fixture
def project(clients: Clients) -> str:
    name = f"faults-{uuid.uuid4().hex[:8]}"
    created = clients.call(0, "POST", "/v1/projects", json={"name": name})
    assert created.status == 201, created
    return name
