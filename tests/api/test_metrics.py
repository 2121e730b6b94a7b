"""/metrics: open in development; in production it needs a token unless a setting opens it, and a
global admin's token wherever `metrics_require_admin` is set."""

from __future__ import annotations

import pytest

from tests.conftest import World


@pytest.fixture
def settings(world: World) -> object:
    return world.client.app.state.registry.settings  # type: ignore[attr-defined]


def test_open_in_development(world: World) -> None:
    response = world.client.get("/metrics")
    assert response.status_code == 200 and "rlhf_registry_requests_total" in response.text


def test_production_needs_a_token(world: World, settings: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "environment", "production")
    refused = world.client.get("/metrics")
    assert refused.status_code == 401 and refused.json()["code"] == "unauthenticated"
    bad = world.client.get("/metrics", headers={"Authorization": "Bearer rlr_nope"})
    assert bad.status_code == 401
    assert world.principal().get("/metrics").status_code == 200  # any valid token


def test_production_opened_explicitly(world: World, settings: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "environment", "production")
    monkeypatch.setattr(settings, "metrics_public", True)
    assert world.client.get("/metrics").status_code == 200


def test_admin_only_where_required(world: World, settings: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settings, "environment", "production")
    monkeypatch.setattr(settings, "metrics_require_admin", True)
    refused = world.principal().get("/metrics")
    assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
    assert world.admin.get("/metrics").status_code == 200
    assert world.client.get("/metrics").status_code == 401
