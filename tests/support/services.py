"""Skip a test whose external service is missing, except under CI, where a missing service fails."""

from __future__ import annotations

import os
from typing import NoReturn

import pytest


def missing_service(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"CI is set and a required service is missing: {reason}", pytrace=False)
    pytest.skip(reason)
