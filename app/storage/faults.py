"""Blob store outages as the domain's `Unavailable` (503 with Retry-After), raised by the stores themselves
so that no route has to know what an unreachable S3 endpoint or a failing disk looks like.

A request that meets an outage is refused whole: its transaction rolls back and the client retries. An
error that says something about the request (an S3 4xx, a missing object) is not an outage and goes
through unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    HTTPClientError,
    IncompleteReadError,
)
from botocore.exceptions import (
    ConnectionError as BotoConnectionError,
)

from app.core.errors import Unavailable

log = logging.getLogger("rlhf_registry.blobs")

S3_OUTAGES: tuple[type[BotoCoreError], ...] = (BotoConnectionError, HTTPClientError, IncompleteReadError)
"""Connection refused or reset, connect and read timeouts, a body cut short: the store, not the request."""


def s3_server_error(exc: ClientError) -> bool:
    """A 5xx answer (InternalError, ServiceUnavailable, SlowDown, ...) after botocore's own retries."""
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return int(status) >= 500


def store_unavailable(exc: BaseException) -> Unavailable:
    log.warning("blob store unavailable: %s: %s", type(exc).__name__, exc)
    return Unavailable("the blob store is unavailable; retry later")


def is_s3_outage(exc: BaseException) -> bool:
    return isinstance(exc, S3_OUTAGES) or (isinstance(exc, ClientError) and s3_server_error(exc))


@contextmanager
def s3_outages() -> Iterator[None]:
    """Turn S3 outages inside the block into `Unavailable`; usable as a decorator."""
    try:
        yield
    except (BotoCoreError, ClientError) as exc:
        if not is_s3_outage(exc):
            raise
        raise store_unavailable(exc) from exc


@contextmanager
def fs_outages(tmp_dir: Path) -> Iterator[None]:
    """Turn filesystem errors inside the block into `Unavailable`; usable as a decorator.

    `FileNotFoundError` means a missing object (which callers handle) while the store's folder is
    there, and an outage (an unmounted or removed volume) once it is not."""
    try:
        yield
    except FileNotFoundError as exc:
        if tmp_dir.is_dir():
            raise
        raise store_unavailable(exc) from exc
    except OSError as exc:
        raise store_unavailable(exc) from exc
