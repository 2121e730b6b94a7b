"""Blob traffic for the storage-outage test: uploads, downloads and starts of multipart uploads."""

from __future__ import annotations

import hashlib
import os
import threading

from tests.faults.load import Answer, Clients, Operation


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class BlobTraffic:
    """Each step uploads a small blob of fresh bytes to one replica, downloads a blob stored before the
    load from the other, and starts a multipart upload of a fresh digest (which asks the store for an
    upload id). A download answered 200 records the digest of the bytes that came, so that a test can
    tell a whole answer from a cut one."""

    def __init__(self, stored: dict[str, bytes]) -> None:
        self.stored = stored  # digest -> bytes, uploaded before the load
        self.uploaded: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def operation(self) -> Operation:
        return self.step

    def step(self, clients: Clients, replica: int, key: str) -> list[Answer]:
        other = (replica + 1) % len(clients.http)
        data = key.encode() + os.urandom(2048)
        upload = clients.call(replica, "POST", "/v1/blobs", content=data)
        if upload.ok:
            with self._lock:
                self.uploaded[upload.body["digest"]] = data
        known = next(iter(self.stored))
        download = clients.call(other, "GET", f"/v1/blobs/{known}", as_bytes=True)
        fresh = os.urandom(64)
        started = clients.call(
            replica, "POST", "/v1/blobs/uploads", json={"digest": digest_of(fresh), "size": len(fresh)}
        )
        return [upload, download, started]
