"""Skip a test whose external service is missing, except under CI, where a missing service fails."""

from __future__ import annotations

import os
from pathlib import Path
from typing import NoReturn

import pytest


def missing_service(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and a required service is missing: {reason}", pytrace=False)
    pytest.skip(reason)


SHARED_DATA = Path(os.environ.get("RLHF_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data"))


def shared_data(relative: str) -> Path:
    """A path under the shared real-data folder (`../shared/data`, or RLHF_SHARED_DATA); a missing one
    skips the test, and fails it under CI."""
    path = SHARED_DATA / relative
    if not path.exists():
        missing_service(f"shared data not available: {path}")
    return path
