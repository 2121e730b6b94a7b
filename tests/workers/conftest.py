"""The checkpoint series the campaign and judge run tests share: one dpo run, trained once per session.

The series lives on an embedded stack of its own: the app it keeps open for the whole session campaigns
for the deployment's periodic duties (app.background), and on the shared test database it would hold
that election against every later test that needs its own reaper or outbox to run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from app.core import migrate
from app.state import AppState
from tests.conftest import make_settings
from tests.workers.series_support import Series, policy_series


@pytest.fixture(scope="session")
def series(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[Series]:
    pytest.importorskip("trl", reason="the train extra is not installed")
    settings = make_settings("sqlite-fs", tmp_path_factory.mktemp("series-stack"), request)
    migrate.upgrade(settings.database_url)
    state = AppState.build(settings)
    try:
        with policy_series(state, tmp_path_factory.mktemp("series")) as made:
            yield made
    finally:
        state.sessions.engine.dispose()
