"""The pages in a real browser (Debian's headless Chromium driven by Playwright) against a real HTTP
server: sign in with a token, open a deployment, follow its lineage to the criteria, download its
handoff package, watch a run page refresh, walk a series' versions and a criteria diff, filter a
batch's items, compare two runs, and read a series' ratings, candidate and alarms. Screenshots land in
test-artifacts/screenshots/.

Chromium missing: skipped, or failed when CI is set (tests.support.services.missing_service)."""

from __future__ import annotations

import shutil
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app.core.settings import Settings
from tests.packages.campaign_chain import HUMANS_SAY, JUDGE_SAYS, campaign, rate
from tests.packages.chain import PackageChain
from tests.support.live_app import Live, served
from tests.support.services import missing_service
from tests.web.support import (
    approved_chain,
    batch_project,
    build_package,
    criteria_project,
    end_run,
    log_metrics,
    policy_run,
    queued_run,
    register_checkpoint,
    start_run,
)

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
        missing_service(f"Debian's chromium is not installed at {CHROMIUM} (make system-packages installs it)")
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


def shot_of(locator: Any, name: str) -> None:
    """One part of a long page, at full resolution."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    locator.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


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
        page.wait_for_selector("#run-live figure.chart path")
        assert page.locator("#run-live table.metrics tbody tr").count() == len(rows)
        shot(page, "07-run")
    finally:
        context.close()


def signed_in_page(live: Live, chromium: Any, token: str, next_path: str) -> tuple[Any, Any, list[str]]:
    context = chromium.new_context(viewport={"width": 1360, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on(
        "response",
        lambda response: errors.append(f"{response.status} {response.url}") if response.status >= 400 else None,
    )
    page.goto(f"{live.url}/web/sign-in?next={next_path}")
    page.fill("#token", token)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{next_path}")
    return context, page, errors


def test_versions_and_the_criteria_diff(live: Live, chromium: Any) -> None:
    project, viewer, criteria = criteria_project(live.world)
    context, page, errors = signed_in_page(live, chromium, viewer.token, f"/web/records/{criteria[2]['id']}")
    try:
        assert page.get_by_test_id("change-level").inner_text() == "major"
        assert page.get_by_test_id("criteria-diff").locator("tbody tr").count() == 2
        shot(page, "08-criteria-diff")
        shot_of(page.locator("#criteria-diff"), "08a-criteria-diff-table")
        page.click("a[rel=prev]")
        page.wait_for_url(f"**/web/records/{criteria[1]['id']}")
        assert page.get_by_test_id("change-level").inner_text() == "minor"
        page.click("text=all versions of assistant-quality")
        page.wait_for_url(f"**/web/projects/{project}/series/criteria/assistant-quality")
        assert page.get_by_test_id("versions").locator("tbody tr").count() == 3
        assert page.locator("table.history th[scope=col]").count() >= 5
        shot(page, "09-series-history")
        assert not errors, errors
    finally:
        context.close()


def test_batch_items_filtered_by_annotator_and_disagreement(live: Live, chromium: Any) -> None:
    viewer, batch, _ = batch_project(live.world)
    context, page, errors = signed_in_page(live, chromium, viewer.token, f"/web/records/{batch['id']}")
    try:
        page.click("text=Items and annotators")
        page.wait_for_url(f"**/web/records/{batch['id']}/items")
        assert page.get_by_test_id("annotators").locator("tbody tr").count() == 4
        assert page.get_by_test_id("items").locator("tbody tr").count() == 50
        shot(page, "10-batch-items")
        shot_of(page.locator("#annotators"), "10a-batch-annotators")
        page.select_option("#annotator", "ann-4")
        page.select_option("#disagreement", "against")
        page.click("form.filters button[type=submit]")
        page.wait_for_url("**disagreement=against**")
        rows = page.get_by_test_id("items").locator("tbody tr")
        assert rows.count() >= 1
        assert set(rows.locator("td:nth-child(3)").all_inner_texts()) == {"ann-4"}
        rows.first.locator("summary").click()
        assert rows.first.locator("details p").first.is_visible()
        shot(page, "11-batch-items-filtered")
        shot_of(page.locator("#items"), "11a-batch-items-filtered-table")
        assert not errors, errors
    finally:
        context.close()


def test_run_charts_and_comparing_two_runs(live: Live, chromium: Any, tmp_path: Path) -> None:
    chain, _ = approved_chain(live.world)
    runs = [policy_run(chain, "policy-web"), policy_run(chain, "policy-web")]
    for n, run_id in enumerate(runs, start=1):
        start_run(live.state, run_id)
        rows = [
            {
                "step": s,
                "loss": 0.9 / (s * n) ** 0.5,
                "objective/rlhf_reward": 0.1 * s * n,
                "objective/kl": 0.02 * s * n,
                "learning_rate": 1e-5,
                "objective/entropy": 3.0 - s / 100,
            }
            for s in range(1, 61)
        ]
        log_metrics(live.state, run_id, rows)
        for step in (20, 40, 60):
            metrics = {"step": step, "mean_reward": 0.01 * step * n, "kl_to_reference": 0.001 * step * n}
            metrics["adversarial_mean_reward"] = metrics["mean_reward"] - 0.2
            metrics["length_reward_correlation"] = 0.05 * n + step / 400
            register_checkpoint(live.state, chain, run_id, step, metrics, tmp_path / f"{run_id}-{step}")
    viewer = live.world.member(chain.project, "viewer")
    context, page, errors = signed_in_page(live, chromium, viewer.token, f"/web/runs/{runs[0]}")
    try:
        assert page.locator("h1").inner_text() == "policy-web · run 1"
        assert page.get_by_test_id("chart").count() >= 6
        assert page.locator("#chart-checkpoint-mean-reward circle").count() == 6  # two figures, three steps
        assert not page.get_by_test_id("metrics-all").is_visible()
        page.click("details.more-metrics summary")
        assert page.get_by_test_id("metrics-all").is_visible()
        shot(page, "12-run-charts")
        shot_of(page.locator("#run-live .charts"), "12a-run-charts-only")
        shot_of(page.locator("#metrics h3").first, "12b-run-checkpoints-heading")
        shot_of(page.get_by_test_id("checkpoints"), "12c-run-checkpoints")
        page.goto(f"{live.url}/web/projects/{chain.project}#runs")
        for run_id in runs:
            page.check(f"#compare-{run_id}")
        page.click("text=Compare selected runs")
        page.wait_for_url("**/runs/compare?run=*")
        assert page.get_by_test_id("compared-runs").locator("tbody tr").count() == 2
        assert page.locator("#chart-loss g.series").count() == 2
        shot(page, "13-run-compare")
        shot_of(page.locator("#charts"), "13a-run-compare-charts")
        assert not errors, errors
    finally:
        context.close()


def test_choosing_a_checkpoint_ratings_candidate_and_alarms(live: Live, chromium: Any, tmp_path: Path) -> None:
    """A run whose quality peaked at step 100 for people while an AI judge preferred step 150: the run page
    shows the alarms, people's ratings with the candidate ringed, and the AI judge's, labelled as such."""
    chain = PackageChain(live.world)
    run_id = policy_run(chain, "policy-rated")
    start_run(live.state, run_id)
    adversarial = {50: 1.0, 100: 0.9, 150: 0.2}
    ids = [
        register_checkpoint(
            live.state,
            chain,
            run_id,
            step,
            {"mean_reward": 0.3, "kl_to_reference": step / 1000, "adversarial_mean_reward": adversarial[step]},
            tmp_path / str(step),
        )
        for step in (50, 100, 150)
    ]
    end_run(live.state, run_id)
    run = campaign(chain, [chain.trainer.get(f"/v1/records/{i}").json() for i in ids])
    people = [live.world.member(chain.project, "viewer").principal for _ in range(2)]
    rate(chain, run, HUMANS_SAY, people, "hp-browser", "human_preference")
    rate(chain, run, JUDGE_SAYS, ["ai:rm@1"], "judge-browser", "ai_preference")
    viewer = live.world.member(chain.project, "viewer")
    context, page, errors = signed_in_page(live, chromium, viewer.token, f"/web/runs/{run_id}")
    try:
        alarms = page.get_by_test_id("alarms")
        assert alarms.is_visible() and alarms.locator('[data-flag="reward_flat"]').count() == 3
        charts = page.get_by_test_id("ratings-chart")
        assert charts.count() == 2 and charts.first.is_visible()
        assert charts.first.get_attribute("data-ai-judged") == "no"
        assert charts.nth(1).get_attribute("data-ai-judged") == "yes" and "AI judge" in charts.nth(1).inner_text()
        assert charts.first.locator(".candidate").count() >= 1  # the candidate, ringed
        shot_of(alarms, "14a-run-alarms")
        shot_of(page.get_by_test_id("campaign").first, "14b-run-ratings")
        page.goto(f"{live.url}/web/projects/{chain.project}")
        assert page.get_by_test_id("ratings-chart").first.is_visible()
        shot(page, "15-project-candidates")
        assert not errors, errors
    finally:
        context.close()
