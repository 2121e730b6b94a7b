"""The pages in a real browser (Debian's headless Chromium driven by Playwright) against a real HTTP
server: sign in with a token, open a deployment, follow its lineage to the criteria, download its
handoff package, and watch a run page refresh. Screenshots land in test-artifacts/screenshots/.

Chromium missing: skipped, or failed when CI is set (tests.support.services.missing_service)."""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.settings import Settings
from tests.support.live_app import Live, served
from tests.support.services import missing_service
from tests.web.support import approved_chain, build_package, log_metrics, queued_run, start_run

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
TIMEOUT_MS = 15_000


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The app served by uvicorn on a free loopback port, in a thread, over a fresh embedded stack."""
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("browser"), log_level="WARNING", reaper_interval_seconds=3600.0
    )
    with served(settings) as running:
        yield running


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    if not Path(CHROMIUM).exists() and shutil.which("chromium") is None:
        missing_service(f"Debian's chromium is not installed at {CHROMIUM} (make browser installs it)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as exc:
        missing_service(f"the playwright package is not installed: {exc}")
    executable = CHROMIUM if Path(CHROMIUM).exists() else str(shutil.which("chromium"))
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def shot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def test_sign_in_open_deployment_follow_lineage_and_download_package(live: Live, chromium: Any, tmp_path: Path) -> None:
    chain, deployment = approved_chain(live.world)
    package_id = build_package(chain, deployment)
    viewer = live.world.member(chain.project, "viewer")
    context = chromium.new_context(accept_downloads=True, viewport={"width": 1360, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on(
        "response",
        lambda response: errors.append(f"{response.status} {response.url}") if response.status >= 400 else None,
    )
    try:
        # signed out: the pages send us to the sign-in form, which brings us back afterwards
        page.goto(f"{live.url}/web/projects/{chain.project}")
        assert "/web/sign-in" in page.url
        shot(page, "01-sign-in")
        page.fill("#token", viewer.token)
        page.click("button[type=submit]")
        page.wait_for_url(f"{live.url}/web/projects/{chain.project}")
        assert page.get_by_test_id("principal").inner_text().startswith(viewer.principal)
        shot(page, "02-project")

        # open the deployment from the project overview
        page.click(f'#kind-deployment a[href="/web/records/{deployment["id"]}"]')
        page.wait_for_url(f"**/web/records/{deployment['id']}")
        assert page.locator("#decisions .badge.status-approved").count() >= 1
        shot(page, "03-deployment")

        # its lineage, drawn on the server, down to the criteria it was optimised for
        page.click("text=Lineage upstream")
        page.wait_for_url(f"**/web/records/{deployment['id']}/lineage")
        graph = page.get_by_test_id("lineage-graph")
        assert graph.locator("svg a.node").count() >= 9
        shot(page, "04-lineage")
        graph.locator(f'svg a.node[data-id="{chain.criteria["id"]}"]').click()
        page.wait_for_url(f"**/web/records/{chain.criteria['id']}")
        assert "assistant-quality" in page.locator("h1").inner_text()
        assert page.locator(".kind-label").inner_text().lower() == "criteria"
        shot(page, "05-criteria")

        # back to the deployment: download its handoff package
        page.goto(f"{live.url}/web/records/{deployment['id']}")
        with page.expect_download() as download_info:
            page.click(f'a[href="/web/records/{package_id}/package/download"]')
        download = download_info.value
        saved = tmp_path / download.suggested_filename
        download.save_as(saved)
        assert saved.suffix == ".zip"
        with zipfile.ZipFile(saved) as archive:
            assert "handoff.html" in archive.namelist()
        page.goto(f"{live.url}/web/records/{package_id}/package/handoff.html")
        shot(page, "06-package-preview")
        assert not errors, errors
    finally:
        context.close()


def test_run_page_refreshes_in_the_browser(live: Live, chromium: Any) -> None:
    chain, _ = approved_chain(live.world)
    run_id = queued_run(chain)
    viewer = live.world.member(chain.project, "viewer")
    context = chromium.new_context(viewport={"width": 1360, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        page.goto(f"{live.url}/web/sign-in?next=/web/runs/{run_id}")
        page.fill("#token", viewer.token)
        page.click("button[type=submit]")
        page.wait_for_url(f"**/web/runs/{run_id}")
        assert page.get_by_test_id("run-status").inner_text().startswith("queued")
        start_run(live.state, run_id)
        rows = [
            {"step": s, "loss": 0.7 / s, "rewards/accuracies": 0.5 + s / 40, "learning_rate": 1e-5}
            for s in range(1, 13)
        ]
        log_metrics(live.state, run_id, rows)
        # no reload: run.js polls and swaps the live section in
        page.wait_for_selector("#run-live .badge.run-running")
        page.wait_for_selector("#run-live figure.spark polyline")
        assert page.locator("#run-live table.metrics tbody tr").count() == len(rows)
        shot(page, "07-run")
    finally:
        context.close()
