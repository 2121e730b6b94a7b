"""The S3 server stopped and started under blob traffic: uploads, downloads and multipart starts answer
503 `unavailable` while it is down (never a 500, never a 200 cut short), registrations that need no blob
keep working, and every acknowledged upload reads back whole from both replicas afterwards."""

from __future__ import annotations

import os
import time

from tests.faults.blob_traffic import BlobTraffic, digest_of
from tests.faults.load import (
    Clients,
    Load,
    assert_audit_verifies,
    assert_only_unavailable,
    assert_records_durable,
    register_criteria,
)
from tests.support.topology import Topology


def test_storage_outage_answers_503_and_loses_no_acknowledged_upload(
    topo: Topology, clients: Clients, project: str
) -> None:
    seed = os.urandom(4096)
    stored = clients.call(0, "POST", "/v1/blobs", content=seed)
    assert stored.status == 201, stored
    traffic = BlobTraffic({stored.body["digest"]: seed})
    records = Load(clients, register_criteria(project), tag="s3", threads=1)
    blobs = Load(clients, traffic.operation(), tag="blob", threads=2)
    with records.running(), blobs.running():
        blobs.wait_for(6)
        stopped_at = time.monotonic()
        topo.stop("s3")
        for replica in (0, 1):
            blobs.wait_for_unavailable(replica=replica, count=3, since=stopped_at)
            # a registration needs no blob: the outage does not reach it
            records.wait_for_on(replica=replica, acknowledged=2, since=stopped_at)
        topo.start("s3")
        started_at = time.monotonic()
        for replica in (0, 1):
            blobs.wait_for_on(replica=replica, acknowledged=3, since=started_at)

    assert not records.failures(), records.summary()
    assert_only_unavailable(blobs.failures(), allow_transport=lambda _: False)
    downloads = [a for a in blobs.answers if a.method == "GET" and a.ok]
    assert downloads and all(a.body["sha256"] == stored.body["digest"] for a in downloads)
    assert traffic.uploaded, blobs.summary()
    for digest, data in traffic.uploaded.items():
        for replica in (0, 1):
            back = clients.http[replica].get(f"/v1/blobs/{digest}")
            assert back.status_code == 200 and digest_of(back.content) == digest, (replica, back.status_code)
            assert back.content == data
    assert_records_durable(clients, project, records.acknowledged())
    assert_audit_verifies(clients)
