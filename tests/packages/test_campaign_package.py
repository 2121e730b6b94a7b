"""The handoff package shows how the deployed checkpoint was chosen: the series' ratings with their
intervals (a figure and a table), the candidate and whether the deployed checkpoint is it, the
reward-hacking flags of the series, and the waivers that covered them."""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.packages import plots
from app.state import AppState
from tests.conftest import World
from tests.packages import test_pdf_layout as layout
from tests.packages.campaign_chain import HUMANS_SAY, JUDGE_SAYS, campaign, rate
from tests.packages.chain import PackageChain
from tests.web.test_campaign_pages import campaign_derived

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ROOT / "test-artifacts" / "handoff-figures"


@dataclass(frozen=True)
class Package:
    chain: PackageChain
    files: dict[str, bytes]

    @property
    def html(self) -> str:
        return self.files["handoff.html"].decode()


@pytest.fixture(scope="module")
def package(stack: AppState, _clients: TestClient) -> Package:
    """A deployment of the step people rate highest, approved under a policy whose KL ceiling every
    checkpoint exceeds, after a human campaign and a later AI judge's that prefers another step: waivers
    cover the flag and the choice of a checkpoint that is not the latest campaign's candidate."""
    world = World(stack, _clients)
    chain = PackageChain(world)
    run = campaign(chain)
    people = [world.member(chain.project, "viewer").principal for _ in range(2)]
    rate(chain, run, HUMANS_SAY, people, "hp-series", "human_preference")
    rate(chain, run, JUDGE_SAYS, ["ai:rm@1"], "judge-series", "ai_preference")
    chain.ok(chain.admin, "policies", {"spec": {"kl_max": 0.01}})
    deployment = chain.deployment()
    reasons = {
        "reward_hacking_flagged": "KL ceiling set for a larger model; reviewed by hand",
        "not_deployment_candidate": "people rate step 100 highest; the AI judge prefers longer answers",
    }
    for rule, reason in reasons.items():
        waiver = {"rule": rule, "covers": [{"id": deployment["id"]}], "spec": {"reason": reason}}
        chain.ok(chain.approver, "waivers", {"name": rule.replace("_", "-"), **waiver})
    chain.approve(deployment)
    response = chain.build(deployment)
    assert response.status_code == 201, response.text
    with zipfile.ZipFile(io.BytesIO(chain.download(response.json()))) as archive:
        return Package(chain, {name: archive.read(name) for name in archive.namelist()})


def _between(html: str, start: str, end: str) -> str:
    return html[html.index(start) : html.index(end, html.index(start))]


def test_the_package_shows_the_series_ratings_with_intervals_and_the_candidate(package: Package) -> None:
    section = _between(package.html, 'id="ratings"', 'id="flags"')
    human = _between(section, "Human ratings across checkpoints (2 human evaluators)", "</table>")
    assert "The deployed checkpoint is the candidate." in human
    assert re.search(r"policy v2 \(step 100\) <strong>\(candidate\)</strong> <strong>\(deployed\)</strong>", human)
    assert "fixed at 0" in human and human.count(" to ") >= 6  # every checkpoint's two intervals
    assert 'id="plot-ratings-hp-series-v1"' in section and "plots/ratings-hp-series-v1.png" in package.files
    # the AI judge's campaign is shown as such, never as human evidence
    ai = _between(section, "AI judge ratings across checkpoints (AI judge ai:rm@1)", "</table>")
    assert "not human evaluations and count as no human evidence" in ai
    assert "is NOT the candidate" in ai and "rated highest by the AI judge" in ai
    assert "plots/ratings-judge-series-v1.png" in package.files
    warnings = _between(package.html, 'id="warnings"', "</section>")
    assert "NOT THE CANDIDATE: policy v2 is deployed, but an AI judge (evaluation judge-series v1)" in warnings


def test_the_package_shows_the_flags_of_the_series_and_the_waiver_that_covered_them(package: Package) -> None:
    flags = _between(package.html, 'id="flags"', "</section>")
    deployed = _between(flags, '<tr class="deployed">', "</tr>")
    assert "policy v2 (step 100) <strong>(deployed)</strong>" in deployed
    assert "kl_runaway" in deployed and "kl_max 0.01" in deployed
    later = _between(flags, "policy v3 (step 150)", "</tr>")
    assert "human_rating_peaked_earlier" in later and "kl_runaway" in later
    assert "reward-hacking-flagged v1" in flags and "<code>reward_hacking_flagged</code>" in flags
    assert "not-deployment-candidate v1" in flags and "the AI judge prefers longer answers" in flags
    warnings = _between(package.html, 'id="warnings"', "</section>")
    assert "FLAGGED kl_runaway: the deployed policy_checkpoint policy v2" in warnings


def test_the_ratings_figure_is_drawn_from_the_derived_figures_and_names_its_judge() -> None:
    drawn = plots.ratings_across_checkpoints("ratings-x.png", "Human ratings", campaign_derived(), deployed="cp-3")
    assert isinstance(drawn, plots.Plot) and "95% bootstrap interval" in drawn.caption
    assert "AI judge" not in drawn.caption
    with Image.open(io.BytesIO(drawn.png)) as image:
        assert image.size == (800, 440)
    again = plots.ratings_across_checkpoints("ratings-x.png", "Human ratings", campaign_derived(), deployed="cp-3")
    assert isinstance(again, plots.Plot) and again.png == drawn.png  # the same figures, the same bytes
    ai = plots.ratings_across_checkpoints("ratings-ai.png", "AI judge ratings", campaign_derived(ai=True), "cp-1")
    assert isinstance(ai, plots.Plot) and ai.caption.endswith("Judged by an AI judge: not human evidence.")
    FIGURES.mkdir(parents=True, exist_ok=True)
    (FIGURES / "ratings-human.png").write_bytes(drawn.png)
    (FIGURES / "ratings-ai.png").write_bytes(ai.png)


def test_one_rated_checkpoint_draws_no_shape() -> None:
    one = plots.ratings_across_checkpoints("r.png", "Human ratings", campaign_derived(((100, 0.4, 0.1, 0.7),)), "cp-0")
    assert isinstance(one, plots.NotDrawn) and "rates 1 checkpoint(s)" in one.reason


def test_the_ratings_and_flags_pages_of_the_pdf_lay_out_cleanly(package: Package, tmp_path: Path) -> None:
    """The PDF pages that carry the ratings figures and tables, left in test-artifacts/handoff-ratings/ to
    look at: no word overlaps another or runs into the margins (the layout checks of test_pdf_layout)."""
    layout._tools()
    pdf = tmp_path / "handoff.pdf"
    pdf.write_bytes(package.files["handoff.pdf"])
    words, sizes = layout.words_of(pdf)
    pages = {w.page for w in words if w.text in ("candidate.", "human_rating_peaked_earlier:")}
    assert pages, "the ratings section is not in the PDF"
    near = [w for w in words if min(pages) - 1 <= w.page <= max(pages) + 1]
    assert not layout.overlaps(near), [(a.page, a.text, b.text) for a, b in layout.overlaps(near)[:10]]
    assert not layout.outside(near, sizes)
    into = ROOT / "test-artifacts" / "handoff-ratings"
    shown = layout.pages_of(pdf, into, dpi=70)
    (into / "handoff.pdf").write_bytes(pdf.read_bytes())
    assert not [p.name for p in shown if layout.inked_margins(p)]
