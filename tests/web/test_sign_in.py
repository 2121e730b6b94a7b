"""Signing in and out, and what a signed-out or revoked session sees."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from app.access.models import ApiToken
from app.core.db import utcnow
from app.core.security import hash_token
from app.state import AppState
from tests.web.support import Site, browser, csrf_of, revoke_token, sign_in

PAGES = [
    "/web/",
    "/web/projects/{project}",
    "/web/records/{deployment}",
    "/web/records/{deployment}/lineage",
    "/web/records/{deployment}/record.json",
    "/web/runs/{run}",
]


def _pages(site: Site) -> list[str]:
    ids = {"project": site.project, "deployment": site.deployment["id"], "run": site.run_id}
    return [page.format(**ids) for page in PAGES]


def test_signed_out_pages_redirect_to_sign_in(site: Site) -> None:
    client = browser(site.world)
    for path in _pages(site):
        response = client.get(path)
        if path.endswith(".json"):
            assert response.status_code == 401 and response.json()["code"] == "unauthenticated"
            continue
        assert response.status_code == 303, path
        assert response.headers["location"].startswith("/web/sign-in?next=" + path.split("?")[0])


def test_sign_in_page_is_a_form(site: Site) -> None:
    response = browser(site.world).get("/web/sign-in", params={"next": "/web/projects/x"})
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert 'name="token"' in response.text and 'value="/web/projects/x"' in response.text
    assert "default-src 'none'" in response.headers["content-security-policy"]


def test_sign_in_sets_an_httponly_lax_cookie_scoped_to_the_pages(site: Site) -> None:
    client = browser(site.world)
    target = f"/web/projects/{site.project}"
    response = sign_in(client, site.viewer.token, target)
    assert response.headers["location"] == target
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/web" in cookie
    page = client.get(target)
    assert page.status_code == 200 and site.viewer.principal in page.text


def test_the_cookie_is_secure_over_https_and_in_production(site: Site, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = sign_in(browser(site.world), site.viewer.token).headers["set-cookie"].lower()
    assert "secure" not in plain  # plain HTTP on loopback in development: a Secure cookie would never come back
    settings = site.world.client.app.state.registry.settings  # type: ignore[attr-defined]
    monkeypatch.setattr(settings, "environment", "production")
    client = browser(site.world)
    form = client.get("/web/sign-in")
    assert "secure" in form.headers["set-cookie"].lower()
    # a Secure cookie never travels over plain HTTP, so the test hands it back as the proxied browser would
    csrf = form.cookies["rlhf_registry_csrf"]
    client.cookies.clear()
    response = client.post(
        "/web/sign-in",
        data={"token": site.viewer.token, "csrf": csrf},
        headers={"cookie": f"rlhf_registry_csrf={csrf}"},
    )
    assert response.status_code == 303 and "secure" in response.headers["set-cookie"].lower()


@pytest.mark.parametrize("token", ["", "rlr_not-a-token"])
def test_a_bad_token_is_refused_without_a_cookie(site: Site, token: str) -> None:
    client = browser(site.world)
    response = client.post("/web/sign-in", data={"token": token, "csrf": csrf_of(client)})
    assert response.status_code == 401
    assert "set-cookie" not in response.headers and "unknown, expired or revoked" in response.text


def test_a_sign_in_posted_from_another_site_is_refused(site: Site) -> None:
    """Login CSRF: a form on another site cannot know the CSRF cookie this site set, so a valid token
    posted without it (or with another value) signs nobody in."""
    client = browser(site.world)
    for csrf in (None, "forged"):
        data = {"token": site.viewer.token, **({"csrf": csrf} if csrf else {})}
        response = client.post("/web/sign-in", data=data)
        assert response.status_code == 403 and "rlhf_registry_session" not in response.headers.get("set-cookie", "")
        csrf_of(client)  # the form sets a cookie; a forged value still does not match it
    assert client.get("/web/").status_code == 303


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/v1/projects", "/web/sign-in"])
def test_next_never_leaves_the_pages(site: Site, target: str) -> None:
    response = sign_in(browser(site.world), site.viewer.token, target)
    assert response.headers["location"] == "/web/"


def _sign_out_csrf(client: TestClient) -> str:
    """Open the sign-out page, as the header's link does: a form with a CSRF token of its own."""
    form = client.get("/web/sign-out")
    assert form.status_code == 200 and 'action="/web/sign-out"' in form.text
    assert "path=/web/sign-out" in form.headers["set-cookie"].lower()
    found = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert found is not None
    return found.group(1)


def test_sign_out_is_a_post_that_clears_the_cookie(site: Site) -> None:
    client = browser(site.world)
    sign_in(client, site.viewer.token)
    out = client.post("/web/sign-out", data={"csrf": _sign_out_csrf(client)})
    assert out.status_code == 303 and out.headers["location"] == "/web/sign-in"
    assert 'rlhf_registry_session=""' in out.headers["set-cookie"] or "max-age=0" in out.headers["set-cookie"].lower()
    assert client.get("/web/").status_code == 303


def test_a_get_of_the_sign_out_url_does_not_sign_out(site: Site) -> None:
    """A link or an image on another site must not sign the browser out: GET shows the form only."""
    client = browser(site.world)
    sign_in(client, site.viewer.token)
    for _ in range(2):
        _sign_out_csrf(client)
    assert client.get("/web/").status_code == 200


def test_a_sign_out_posted_from_another_site_is_refused(site: Site) -> None:
    client = browser(site.world)
    sign_in(client, site.viewer.token)
    _sign_out_csrf(client)  # the cookie is set; the forged post cannot know its value
    for data in ({}, {"csrf": "forged"}):
        refused = client.post("/web/sign-out", data=data)
        assert refused.status_code == 403 and "rlhf_registry_session" not in refused.headers.get("set-cookie", "")
    assert client.get("/web/").status_code == 200


def test_the_sign_out_page_sends_a_signed_out_browser_to_sign_in(site: Site) -> None:
    response = browser(site.world).get("/web/sign-out")
    assert response.status_code == 303 and response.headers["location"] == "/web/sign-in"


def test_an_expired_token_cannot_sign_in(site: Site) -> None:
    api = site.world.principal()
    created = api.post("/v1/tokens", json={"expires_in_days": 1}).json()
    client = browser(site.world)
    assert sign_in(client, created["token"]).status_code == 303
    assert client.get("/web/").status_code == 200
    expire_token(site.world.state, created["token"])
    assert client.get("/web/").status_code == 303  # the session ends with the token
    refused = client.post("/web/sign-in", data={"token": created["token"], "csrf": csrf_of(client)})
    assert refused.status_code == 401 and "unknown, expired or revoked" in refused.text


def test_a_revoked_token_ends_the_session_at_the_next_request(site: Site) -> None:
    api = site.world.member(site.project, "viewer")
    client = browser(site.world)
    sign_in(client, api.token)
    assert client.get("/web/").status_code == 200
    revoke_token(site.world.state, api.token)
    response = client.get("/web/")
    assert response.status_code == 303 and response.headers["location"].startswith("/web/sign-in")


def test_root_leads_to_the_pages(site: Site) -> None:
    response = browser(site.world).get("/")
    assert response.status_code == 307 and response.headers["location"] == "/web/"


def test_pages_stay_out_of_the_openapi_schema(site: Site) -> None:
    paths = site.world.client.app.openapi()["paths"]  # type: ignore[attr-defined]
    assert not [p for p in paths if p == "/" or p.startswith("/web")]


def expire_token(state: AppState, token: str) -> None:
    """Move a token's expiry to now (no sleeping until it passes)."""
    with state.sessions.write() as session:
        stmt = update(ApiToken).where(ApiToken.token_hash == hash_token(token)).values(expires_at=utcnow())
        session.execute(stmt)
        session.commit()
