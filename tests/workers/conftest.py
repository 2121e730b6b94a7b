"""The checkpoint series the campaign and judge run tests share: one dpo run, trained once per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.state import AppState
from tests.workers.series_support import Series, policy_series


@pytest.fixture(scope="session")
def series(sqlite_stack: AppState, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Series]:
    pytest.importorskip("trl", reason="the train extra is not installed")
    with policy_series(sqlite_stack, tmp_path_factory.mktemp("series")) as made:
        yield made
