"""A fast restart of the PostgreSQL server under load: both replicas answer 503 `unavailable` while it is
down, recover without a restart, and every acknowledged write survives."""

from __future__ import annotations

import time

from tests.faults.load import (
    Clients,
    Load,
    assert_audit_verifies,
    assert_only_unavailable,
    assert_records_durable,
    register_criteria,
    wait_until_writes_succeed,
)
from tests.support.topology import Topology


def test_database_restart_answers_503_and_loses_no_acknowledged_write(
    topo: Topology, clients: Clients, project: str
) -> None:
    load = Load(clients, register_criteria(project), tag="pg")
    with load.running():
        load.wait_for(10)
        stopped_at = time.monotonic()
        topo.stop("postgres")
        for replica in (0, 1):
            load.wait_for_unavailable(replica=replica, count=3, since=stopped_at)
        topo.start("postgres")
        started_at = time.monotonic()
        for replica in (0, 1):
            load.wait_for_on(replica=replica, acknowledged=3, since=started_at)

    assert_only_unavailable(load.failures(), allow_transport=lambda _: False)
    assert_records_durable(clients, project, load.acknowledged())
    assert_audit_verifies(clients)
    wait_until_writes_succeed(clients, project, "pg")
