"""SIGKILL of one replica under load: the other keeps answering, and the killed one, started again,
serves every write acknowledged before or during its absence."""

from __future__ import annotations

import time

from tests.faults.load import (
    Clients,
    Load,
    assert_audit_verifies,
    assert_records_durable,
    register_criteria,
    wait_until_writes_succeed,
)
from tests.support.topology import Topology


def test_sigkill_of_one_replica_loses_no_acknowledged_write(topo: Topology, clients: Clients, project: str) -> None:
    load = Load(clients, register_criteria(project), tag="kill")
    with load.running():
        load.wait_for(10)
        killed_at = time.monotonic()
        topo.kill("replica0")
        load.wait_for_on(replica=1, acknowledged=10, since=killed_at)
        restarted_at = time.monotonic()
        topo.start("replica0")
        load.wait_for_on(replica=0, acknowledged=5, since=restarted_at)

    failures = load.failures()
    # the survivor never failed; the killed replica refused connections while it was down
    assert all(a.replica == 0 and a.status is None for a in failures), [a for a in failures if a.status][:3]
    assert all(killed_at <= a.at for a in failures)
    assert any(a.status is None for a in failures), "the kill was not seen by any client"
    assert_records_durable(clients, project, load.acknowledged())
    assert_audit_verifies(clients)
    wait_until_writes_succeed(clients, project, "kill")
