"""The campaign ratings, the deployment candidate and the reward-hacking flags on the pages: the ratings
chart drawn from a campaign evaluation's derived figures (pure), and the run, project and record pages
that show them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.records.models import Record
from app.state import AppState
from app.web.ratings import campaign_view, candidate_sentence, ratings_chart
from app.web.templating import environment
from tests.conftest import Api, World
from tests.packages.campaign_chain import HUMANS_SAY, JUDGE_SAYS, campaign, rate
from tests.packages.chain import PackageChain
from tests.web.support import browser, end_run, policy_run, register_checkpoint, sign_in, start_run

# a series whose quality peaks at step 100 and then degrades: the shape the chart must show
PEAKED = ((50, 0.3, 0.1, 0.5), (100, 0.8, 0.55, 1.05), (150, 0.5, 0.25, 0.75), (200, 0.1, -0.15, 0.35))


def campaign_derived(
    points: tuple[tuple[int | None, float, float, float], ...] = PEAKED, *, ai: bool = False, overlaps: bool = True
) -> dict[str, Any]:
    """A campaign evaluation's derived block (the contract RATINGS writes), for a series rated `points`
    (step, rating, low, high)."""
    reference = {"model": "ref", "name": "tiny-base", "version": "1", "step": None, "role": "reference"}
    ratings: list[dict[str, Any]] = [{**reference, "rating": 0.0, "low": 0.0, "high": 0.0, "vs_reference": None}]
    versus = {"wins": 20, "losses": 10, "ties": 2, "n": 32, "win_rate": 0.656, "low": 0.48, "high": 0.8}
    for i, (step, rating, low, high) in enumerate(points):
        ratings.append(
            {
                "model": f"cp-{i}",
                "name": "policy",
                "version": str(i + 1),
                "step": step,
                "role": "checkpoint",
                "rating": rating,
                "low": low,
                "high": high,
                "vs_reference": versus,
            }
        )
    best = max(ratings[1:], key=lambda r: r["rating"])
    runner_up = sorted(ratings[1:], key=lambda r: -r["rating"])[1:2]
    return {
        "type": "ai_preference" if ai else "human_preference",
        "campaign": {"id": "camp", "name": "policy-campaign", "version": "1"},
        "series": "policy",
        "judgments": 240,
        "evaluators": ["ai:rm@1"] if ai else ["alice", "bob", "carol"],
        "ai_judged": ai,
        "ratings": ratings,
        "candidate": {
            **{k: best[k] for k in ("model", "name", "version", "step", "rating", "low", "high")},
            "next": {k: runner_up[0][k] for k in ("model", "version", "step", "rating", "low", "high")}
            if runner_up
            else None,
            "overlaps_next": overlaps,
            "advice": f"policy v{best['version']} is rated highest, but its interval overlaps that of policy "
            f"v{runner_up[0]['version']}: collect more judgments to separate them"
            if overlaps and runner_up
            else "",
        },
    }


def evaluation(derived: dict[str, Any]) -> Record:
    return Record(id="ev-1", kind="evaluation", name="policy-human", version="1", spec={}, derived=derived)


def block(view: dict[str, Any]) -> str:
    """The campaign block as the pages print it."""
    return str(environment().get_template("web/_ratings.html").module.campaign(view, "x"))  # type: ignore[attr-defined]


def test_the_chart_shows_the_peak_the_intervals_the_reference_and_the_candidate() -> None:
    chart = ratings_chart(campaign_derived())
    assert chart is not None and chart.x_label == "training step" and not chart.ai_judged
    xs = [p.x for p in chart.points]
    assert xs == sorted(xs) and len(set(xs)) == 4  # by step
    assert all(chart.left <= p.x <= chart.right for p in chart.points)
    assert all(chart.top <= p.y_high <= p.y <= p.y_low <= chart.bottom for p in chart.points)
    peak = min(chart.points, key=lambda p: p.y)  # highest on the chart: smallest SVG y
    assert peak.candidate and [p.candidate for p in chart.points].count(True) == 1
    assert "step 100" in peak.tip and "0.8 (95% interval 0.55 to 1.05)" in peak.tip
    # the reference sits at 0: above the last checkpoint's interval floor (-0.15), below its rating
    last = chart.points[-1]
    assert last.y < chart.reference_y < last.y_low
    assert chart.reference_label == "reference tiny-base v1 = 0"
    assert chart.y_ticks[0][1].startswith("-")  # the axis reaches below the reference


def test_an_ai_judged_campaign_says_so_in_the_title_legend_and_sentence() -> None:
    derived = campaign_derived(ai=True)
    chart = ratings_chart(derived)
    assert chart is not None and chart.ai_judged and chart.title.startswith("AI judge")
    assert chart.judge == "AI judge ai:rm@1"
    assert "rated highest by the AI judge" in candidate_sentence(derived)
    html = block(campaign_view(evaluation(derived)))
    assert 'data-ai-judged="yes"' in html and ">AI judge</span>" in html and "AI judge rating and 95% interval" in html
    assert "not human evidence" in html and "human rating" not in html


def test_the_candidate_sentence_says_when_its_interval_overlaps_the_next() -> None:
    overlapping = candidate_sentence(campaign_derived())
    assert overlapping.startswith("Candidate: policy v2 (step 100), rated highest by human evaluators")
    assert overlapping.endswith(
        ": 0.8 (95% interval 0.55 to 1.05). policy v2 is rated highest, but its interval overlaps that of policy v3: "
        "collect more judgments to separate them."
    )
    clear = candidate_sentence(campaign_derived(overlaps=False))
    assert "overlaps" not in clear
    unadvised = campaign_derived()
    unadvised["candidate"]["advice"] = ""
    assert candidate_sentence(unadvised).endswith("Its interval overlaps that of the next-rated checkpoint.")
    assert candidate_sentence({"ratings": [], "candidate": None}).startswith("No candidate")


def test_the_campaign_block_tabulates_every_model_with_its_intervals() -> None:
    view = campaign_view(evaluation(campaign_derived()))
    html = block(view)
    table = html[html.index('data-testid="ratings"') :]
    assert table.count("<tr") == 1 + 5  # header, reference and four checkpoints
    assert "fixed at 0" in table and "0.55 to 1.05" in table and "0.48 to 0.8" in table
    assert re.search(r"policy v2 \(step 100\)</a> <span class=\"badge gate-pass\">candidate</span>", table)
    assert 'class="alert warn"' in html  # the overlap is a warning
    assert html.count('class="rated') == 4 and html.count('class="rated candidate"') == 1
    compact = block(campaign_view(evaluation(campaign_derived()), compact=True))
    assert 'data-testid="ratings"' not in compact and 'data-testid="ratings-chart"' in compact


def test_checkpoints_without_steps_are_placed_in_order_and_labelled_by_version() -> None:
    chart = ratings_chart(campaign_derived(((None, 0.2, 0.0, 0.4), (None, 0.4, 0.1, 0.7))))
    assert chart is not None and chart.x_label == "checkpoint"
    assert [label for _, label in chart.x_ticks if label] == ["v1", "v2"]
    assert ratings_chart({"ratings": [], "candidate": None}) is None


@dataclass(frozen=True)
class RatedRun:
    """A policy run whose reward stays flat and whose adversarial reward collapses at its last step, with
    a campaign over its three checkpoints judged by people (peak at step 100) and later by an AI judge
    (which prefers step 150)."""

    world: World
    chain: PackageChain
    run_id: str
    checkpoints: dict[int, str]
    campaign: dict[str, Any]
    human: dict[str, Any]
    ai: dict[str, Any]
    viewer: Api


@pytest.fixture(scope="module")
def rated(stack: AppState, _clients: TestClient, tmp_path_factory: pytest.TempPathFactory) -> RatedRun:
    world = World(stack, _clients)
    chain = PackageChain(world)
    run_id = policy_run(chain, "policy-web")
    start_run(stack, run_id)
    folder = tmp_path_factory.mktemp("checkpoints")
    adversarial = {50: 1.0, 100: 0.9, 150: 0.2}
    ids = {
        step: register_checkpoint(
            stack,
            chain,
            run_id,
            step,
            {"mean_reward": 0.3, "kl_to_reference": step / 1000, "adversarial_mean_reward": adversarial[step]},
            folder / str(step),
        )
        for step in (50, 100, 150)
    }
    end_run(stack, run_id)
    checkpoints = [chain.trainer.get(f"/v1/records/{i}").json() for i in ids.values()]
    run = campaign(chain, checkpoints)
    people = [world.member(chain.project, "viewer").principal for _ in range(2)]
    human = rate(chain, run, HUMANS_SAY, people, "hp-web", "human_preference")
    ai = rate(chain, run, JUDGE_SAYS, ["ai:rm@1"], "judge-web", "ai_preference")
    return RatedRun(world, chain, run_id, ids, run, human, ai, world.member(chain.project, "viewer"))


def signed_in(rated: RatedRun) -> TestClient:
    client = browser(rated.world)
    sign_in(client, rated.viewer.token)
    return client


def test_the_run_page_shows_each_checkpoints_flags_and_the_series_ratings(rated: RatedRun) -> None:
    html = signed_in(rated).get(f"/web/runs/{rated.run_id}").text
    alarms = html[html.index('data-testid="alarms"') : html.index('data-testid="campaign"')]
    assert alarms.count('data-flag="reward_flat"') == 3  # a run-wide flag, on every measured checkpoint
    assert alarms.count('data-flag="adversarial_regression"') == 1 and "fell from 1 at the first" in alarms
    assert alarms.count('data-flag="human_rating_peaked_earlier"') == 1
    # people's ratings first, then the newer AI judge's, labelled as such
    human, ai = (html.index(f'data-evaluation="{e["id"]}"') for e in (rated.human, rated.ai))
    assert human < ai
    people = html[human:ai]
    assert 'data-ai-judged="no"' in people and "Candidate: policy-web v" in people and "(step 100)" in people
    assert 'class="rated candidate" data-record="' + rated.checkpoints[100] + '"' in people
    assert people.count('class="rated') == 3 and "reference tiny-base v1 = 0" in people
    judge = html[ai:]
    assert 'data-ai-judged="yes"' in judge and ">AI judge</span>" in judge and "rated highest by the AI judge" in judge
    assert 'class="rated candidate" data-record="' + rated.checkpoints[150] + '"' in judge
    table = html[html.index('data-testid="checkpoints"') :]
    assert '<th scope="col">Flags</th>' in table and 'data-flag="adversarial_regression"' in table
    assert "adversarial_mean_reward" in html[html.index('id="metrics"') :]  # the figure is charted and tabled


def test_the_project_page_shows_each_series_candidate_with_a_compact_chart(rated: RatedRun) -> None:
    html = signed_in(rated).get(f"/web/projects/{rated.chain.project}").text
    section = html[html.index('<section id="candidates">') : html.index("</section>", html.index('id="candidates"'))]
    assert 'data-series="policy-web"' in section and section.count('data-testid="ratings-chart"') == 2
    assert 'data-testid="ratings"' not in section  # compact: no table
    assert "rated highest by human evaluators" in section and "rated highest by the AI judge" in section


def test_a_checkpoints_record_page_shows_its_flags_and_its_ratings(rated: RatedRun) -> None:
    client = signed_in(rated)
    last = client.get(f"/web/records/{rated.checkpoints[150]}").text
    heading = last[last.index("<h1>") : last.index("</h1>")]
    assert 'data-flag="human_rating_peaked_earlier"' in heading and 'data-flag="adversarial_regression"' in heading
    section = last[last.index('<section id="choice">') :]
    assert "human evaluators rate the earlier checkpoint at step 100 higher" in section
    ratings = re.findall(r'<p data-testid="rating">(.*?)</p>', section, re.S)
    assert len(ratings) == 2
    assert "human evaluation" in ratings[0] and "not the candidate" in ratings[0]
    assert "AI judge" in ratings[1] and "candidate</span>" in ratings[1] and "not the candidate" not in ratings[1]
    best = client.get(f"/web/records/{rated.checkpoints[100]}").text
    assert re.search(r"human evaluators\)\: <strong>[^<]+</strong> <span class=\"badge gate-pass\">candidate", best)
    plain = client.get(f"/web/records/{rated.chain.series[0]['id']}").text  # measured figures, no alarm
    assert "No reward-hacking flag" in plain and 'data-flag="' not in plain


def test_a_campaign_and_its_evaluations_show_their_ratings_tables(rated: RatedRun) -> None:
    client = signed_in(rated)
    campaign = client.get(f"/web/records/{rated.campaign['id']}").text
    section = campaign[campaign.index('<section id="choice">') :]
    assert section.count('data-testid="ratings"') == 2 and section.count('data-testid="ratings-chart"') == 2
    assert section.index(rated.ai["id"]) < section.index(rated.human["id"])  # newest first
    ai = client.get(f"/web/records/{rated.ai['id']}").text
    block = ai[ai.index('data-testid="campaign"') :]
    assert 'data-ai-judged="yes"' in block and "not human evidence" in block
    table = block[block.index('data-testid="ratings"') : block.index("</table>", block.index('data-testid="ratings"'))]
    assert table.count("<tr") == 1 + 4 and "fixed at 0" in table and table.count(" to ") >= 6
