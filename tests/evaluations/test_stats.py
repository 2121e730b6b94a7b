"""The figures of a campaign evaluation against hand-computed values and independent computations:
Wilson intervals against scipy's, Bradley-Terry ratings against a maximum-likelihood fit written here
with scipy.optimize, position bias against scipy's binomial test."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import binomtest
from sklearn.metrics import cohen_kappa_score

from app.evaluations import stats

REF = "ref"
STEPS = {"c50": 50, "c100": 100, "c150": 150}


def models(*checkpoints: str) -> list[dict[str, Any]]:
    reference = {"id": REF, "kind": "base_model", "name": "base", "version": "1", "step": None, "role": "reference"}
    return [reference] + [
        {"id": c, "kind": "policy_checkpoint", "name": "policy", "version": str(i + 1), "step": STEPS[c]}
        | {"role": "checkpoint"}
        for i, c in enumerate(checkpoints)
    ]


class Campaign:
    """Tasks and judgments built comparison by comparison, each task shown in a random left/right order."""

    def __init__(self, seed: int = 0) -> None:
        self.tasks: list[dict[str, Any]] = []
        self.judgments: list[dict[str, Any]] = []
        self.rng = random.Random(seed)

    def judge(self, winner: str | None, loser: str, evaluator: str = "ann-1", task: str | None = None) -> None:
        """One judgment: `winner` preferred over `loser`, or a tie between `loser` and `winner`'s slot
        model when `winner` is None (then `loser` names the pair as "x|y")."""
        if winner is None:
            x, y = loser.split("|")
            left, right, choice = x, y, "tie"
        elif self.rng.random() < 0.5:
            left, right, choice = winner, loser, "a"
        else:
            left, right, choice = loser, winner, "b"
        task_id = task or f"t{len(self.tasks)}"
        if task is None or all(t["task_id"] != task for t in self.tasks):
            self.tasks.append({"task_id": task_id, "left_model": left, "right_model": right})
        self.judgments.append({"task_id": task_id, "evaluator": evaluator, "choice": choice})

    def repeat(self, winner: str, loser: str, times: int) -> None:
        for _ in range(times):
            self.judge(winner, loser)

    def ties(self, x: str, y: str, times: int) -> None:
        for _ in range(times):
            self.judge(None, f"{x}|{y}")

    def figures(self, *checkpoints: str, seed: int = 7) -> dict[str, Any]:
        return stats.campaign_figures(models(*checkpoints), self.tasks, self.judgments, seed)


def by_model(figures: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["model"]: r for r in figures["ratings"]}


# --- Wilson -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("k", "n"), [(0, 5), (3, 10), (8, 10), (10, 10), (57, 100), (1, 1000)])
def test_wilson_matches_scipy(k: int, n: int) -> None:
    interval = stats.wilson_interval(k, n)
    assert interval is not None
    expected = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    assert interval == pytest.approx((expected.low, expected.high), abs=1e-12)


def test_wilson_by_hand_and_with_nothing_judged() -> None:
    # 8 of 10: p = 0.8, z^2 = 3.8415; (0.8 + 0.19207 -+ 1.96 * sqrt(0.016 + 0.0096037)) / 1.38415
    low, high = stats.wilson_interval(8, 10) or (0.0, 0.0)
    assert low == pytest.approx(0.4902, abs=1e-4) and high == pytest.approx(0.9433, abs=1e-4)
    assert stats.wilson_interval(0, 0) is None
    assert stats.win_rate(0, 0, 0) is None


def test_ties_count_as_half_a_win() -> None:
    record = stats.win_rate(3, 1, 2)
    assert record is not None
    assert record["win_rate"] == pytest.approx(4 / 6)
    low, high = stats.wilson_interval(4, 6) or (0.0, 0.0)
    assert (record["low"], record["high"]) == (pytest.approx(low, abs=1e-6), pytest.approx(high, abs=1e-6))
    # a fractional count: both ends are the roots in p of (p_hat - p)^2 = z^2 p (1 - p) / n
    p_hat, n, z = 3.5 / 5, 5, stats.Z_95
    for end in stats.wilson_interval(3.5, n) or ():
        assert (p_hat - end) ** 2 == pytest.approx(z * z * end * (1 - end) / n, abs=1e-12)


# --- Bradley-Terry ------------------------------------------------------------------------------------


def mle_ratings(comparisons: list[tuple[str, str, str]], reference: str) -> dict[str, float]:
    """The maximum-likelihood Bradley-Terry fit, written independently: a tie is half a win each way, and
    one drawn comparison is added per compared pair (the prior `stats` documents), reference fixed at 0."""
    pairs = {tuple(sorted((x, y))) for x, y, _ in comparisons}
    rows = [(x, y, {"a": 1.0, "b": 0.0, "tie": 0.5}[c], 1.0) for x, y, c in comparisons]
    rows += [(x, y, 0.5, stats.PRIOR_TIES) for x, y in pairs]
    others = sorted({m for x, y, _ in comparisons for m in (x, y)} - {reference})
    at = {m: i for i, m in enumerate(others)}

    def negative_log_likelihood(theta: np.ndarray) -> float:
        def rating(m: str) -> float:
            return 0.0 if m == reference else float(theta[at[m]])

        total = 0.0
        for x, y, score, weight in rows:
            d = rating(x) - rating(y)
            total += weight * (score * np.logaddexp(0.0, -d) + (1 - score) * np.logaddexp(0.0, d))
        return total

    fit = minimize(negative_log_likelihood, np.zeros(len(others)), method="BFGS", options={"gtol": 1e-10})
    return {reference: 0.0, **{m: float(fit.x[i]) for m, i in at.items()}}


def random_comparisons(seed: int, n: int) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    strength = {REF: 0.0, "c50": 0.4, "c100": 1.1, "c150": 0.2}
    out = []
    for _ in range(n):
        x, y = rng.sample(sorted(strength), 2)
        p = 1 / (1 + math.exp(strength[y] - strength[x]))
        u = rng.random()
        out.append((x, y, "tie" if u < 0.15 else "a" if rng.random() < p else "b"))
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_ratings_are_the_maximum_likelihood_fit(seed: int) -> None:
    comparisons = random_comparisons(seed, 240)
    fitted = stats.bradley_terry_ratings(comparisons, REF, seed=0, n_resamples=50)
    expected = mle_ratings(comparisons, REF)
    assert {m: r["rating"] for m, r in fitted.items()} == pytest.approx(expected, abs=1e-4)


def test_rating_against_the_reference_alone_by_hand() -> None:
    # one pair: exp(r) = (wins + ties/2 + prior/2) / (losses + ties/2 + prior/2) = (7 + 0.5 + 0.5) / (2 + 0.5 + 0.5)
    campaign = Campaign()
    campaign.repeat("c50", REF, 7)
    campaign.repeat(REF, "c50", 2)
    campaign.ties(REF, "c50", 1)
    rating = by_model(campaign.figures("c50"))["c50"]
    assert rating["rating"] == pytest.approx(math.log(8 / 3), abs=1e-5)
    assert rating["vs_reference"] == {
        "wins": 7,
        "losses": 2,
        "ties": 1,
        "n": 10,
        "win_rate": 0.75,
        "low": pytest.approx(stats.wilson_interval(7.5, 10)[0], abs=1e-6),  # type: ignore[index]
        "high": pytest.approx(stats.wilson_interval(7.5, 10)[1], abs=1e-6),  # type: ignore[index]
    }


def test_bootstrap_intervals_are_seeded_and_hold_the_rating() -> None:
    comparisons = random_comparisons(5, 200)
    first = stats.bradley_terry_ratings(comparisons, REF, seed=11, n_resamples=200)
    assert stats.bradley_terry_ratings(comparisons, REF, seed=11, n_resamples=200) == first
    other = stats.bradley_terry_ratings(comparisons, REF, seed=12, n_resamples=200)
    assert other != first
    assert first[REF] == {"rating": 0.0, "low": 0.0, "high": 0.0}
    for model in ("c50", "c100", "c150"):
        entry = first[model]
        assert entry["low"] < entry["rating"] < entry["high"]  # type: ignore[operator]
    # more judgments of the same kind: narrower intervals
    wide = stats.bradley_terry_ratings(comparisons[:60], REF, seed=11, n_resamples=200)["c100"]
    assert (wide["high"] - wide["low"]) > (first["c100"]["high"] - first["c100"]["low"])  # type: ignore[operator]


def test_a_checkpoint_that_wins_every_comparison_has_a_finite_rating() -> None:
    campaign = Campaign()
    campaign.repeat("c50", REF, 12)
    campaign.repeat("c100", REF, 6)
    campaign.repeat(REF, "c100", 6)
    ratings = by_model(campaign.figures("c50", "c100"))
    assert ratings["c50"]["rating"] == pytest.approx(math.log(12.5 / 0.5), abs=1e-4)
    assert ratings["c100"]["rating"] == pytest.approx(0.0, abs=1e-6)
    assert math.isfinite(ratings["c50"]["low"]) and math.isfinite(ratings["c50"]["high"])


# --- degenerate inputs ----------------------------------------------------------------------------------


def test_no_judgments_rate_nothing_and_say_why() -> None:
    figures = Campaign().figures("c50", "c100")
    assert [r["rating"] for r in figures["ratings"]] == [None, None, None]
    assert {r["reason"] for r in figures["ratings"]} == {"no judgment compares it"}
    assert figures["candidate"] is None
    assert figures["position_bias"] == {"left_share": None, "n": 0, "p_value": None}
    assert figures["agreement"]["pairwise_agreement"] is None and figures["judgments"] == 0


def test_an_unjudged_checkpoint_is_unrated_and_never_the_candidate() -> None:
    campaign = Campaign()
    campaign.repeat("c50", REF, 3)
    ratings = by_model(campaign.figures("c50", "c100"))
    assert ratings["c100"]["rating"] is None and ratings["c100"]["reason"] == "no judgment compares it"
    assert ratings["c100"]["vs_reference"] is None
    assert campaign.figures("c50", "c100")["candidate"]["model"] == "c50"


def test_checkpoints_judged_only_among_themselves_have_no_rating_against_the_reference() -> None:
    campaign = Campaign()
    campaign.repeat("c50", "c100", 4)
    ratings = by_model(campaign.figures("c50", "c100"))
    assert ratings["c50"]["rating"] is None
    assert ratings["c50"]["reason"] == "no chain of judged comparisons links it to the reference"


def test_a_single_judgment_rates_without_an_interval() -> None:
    campaign = Campaign()
    campaign.repeat("c50", REF, 1)
    rating = by_model(campaign.figures("c50"))["c50"]
    assert rating["rating"] == pytest.approx(math.log(1.5 / 0.5), abs=1e-5)
    assert rating["low"] is None and rating["high"] is None
    candidate = campaign.figures("c50")["candidate"]
    assert candidate["next"] is None and candidate["overlaps_next"] is False
    assert "only rated checkpoint" in candidate["advice"]


def test_all_ties_rate_every_checkpoint_like_the_reference() -> None:
    campaign = Campaign()
    for checkpoint in ("c50", "c100"):
        campaign.ties(REF, checkpoint, 5)
    figures = campaign.figures("c50", "c100")
    assert [r["rating"] for r in figures["ratings"]] == [0.0, 0.0, 0.0]
    candidate = figures["candidate"]
    # equal ratings: the earlier checkpoint, and the two cannot be told apart
    assert candidate["model"] == "c50" and candidate["overlaps_next"] is True
    assert figures["position_bias"]["n"] == 0


# --- the candidate --------------------------------------------------------------------------------------


def rated(model: str, rating: float, low: float, high: float, role: str = "checkpoint") -> dict[str, Any]:
    step = STEPS.get(model)
    return {"model": model, "name": "policy", "version": str(step), "step": step, "role": role} | {
        "rating": rating,
        "low": low,
        "high": high,
    }


def test_the_candidate_is_never_the_reference() -> None:
    ratings = [
        rated(REF, 0.0, 0.0, 0.0, role="reference"),
        rated("c50", -0.8, -1.2, -0.4),
        rated("c100", -1.5, -2, -1.3),
    ]
    best = stats.candidate(ratings)
    assert best is not None and best["model"] == "c50" and best["next"]["model"] == "c100"
    assert best["overlaps_next"] is False
    assert "not shown to beat the reference" in best["advice"]


def test_an_overlap_with_an_earlier_checkpoint_advises_preferring_it() -> None:
    ratings = [rated(REF, 0, 0, 0, "reference"), rated("c50", 0.6, 0.2, 1.0), rated("c100", 0.7, 0.3, 1.1)]
    best = stats.candidate(ratings)
    assert best is not None and best["model"] == "c100" and best["overlaps_next"] is True
    assert best["next"] == {"model": "c50", "version": "50", "step": 50, "rating": 0.6, "low": 0.2, "high": 1.0}
    assert "prefer the earlier checkpoint" in best["advice"]


def test_an_overlap_with_a_later_checkpoint_asks_for_more_judgments() -> None:
    ratings = [rated(REF, 0, 0, 0, "reference"), rated("c50", 0.8, 0.3, 1.1), rated("c100", 0.7, 0.3, 1.1)]
    best = stats.candidate(ratings)
    assert best is not None and best["model"] == "c50" and best["overlaps_next"] is True
    assert "collect more judgments" in best["advice"] and "prefer the earlier" not in best["advice"]


def test_peak_then_degrade_names_the_middle_checkpoint() -> None:
    campaign = Campaign(seed=3)
    for checkpoint, wins in (("c50", 30), ("c100", 48), ("c150", 22)):
        campaign.repeat(checkpoint, REF, wins)
        campaign.repeat(REF, checkpoint, 60 - wins)
    figures = campaign.figures("c50", "c100", "c150")
    assert figures["candidate"]["model"] == "c100"
    ratings = by_model(figures)
    assert ratings["c100"]["rating"] > ratings["c50"]["rating"] > ratings["c150"]["rating"]
    assert ratings["c100"]["vs_reference"]["win_rate"] == pytest.approx(0.8)


# --- position bias and agreement ------------------------------------------------------------------------


def test_position_bias_against_scipy() -> None:
    choices = ["a"] * 7 + ["b"] * 3 + ["tie"] * 2
    bias = stats.position_bias(choices)
    assert bias["left_share"] == pytest.approx(0.7) and bias["n"] == 10
    assert bias["p_value"] == pytest.approx(binomtest(7, 10).pvalue, abs=1e-6)
    assert bias["p_value"] == pytest.approx(0.34375, abs=1e-6)


def test_agreement_over_tasks_judged_twice_or_more() -> None:
    judgments = [
        {"task_id": t, "evaluator": e, "choice": c}
        for t, e, c in [
            ("t1", "x", "a"), ("t1", "y", "a"), ("t1", "z", "b"),  # pairs xy agree, xz, yz disagree
            ("t2", "x", "b"), ("t2", "y", "b"),  # agree
            ("t3", "x", "tie"), ("t3", "y", "a"),  # disagree
            ("t4", "x", "a"),  # judged once: not counted
        ]
    ]  # fmt: skip
    result = stats.agreement(judgments)
    assert result["tasks_multiply_judged"] == 3 and result["evaluator_pairs"] == 5
    assert result["pairwise_agreement"] == pytest.approx(2 / 5)
    [pair] = result["pairs"]  # only x and y share two or more tasks
    assert pair["evaluators"] == ["x", "y"] and pair["n"] == 3 and pair["agreement"] == pytest.approx(2 / 3)
    # x: a, b, tie; y: a, b, a -> observed 2/3; chance: x uniform, y a 2/3, b 1/3 -> (1/3)(2/3 + 1/3 + 0) = 1/3
    assert pair["kappa"] == pytest.approx((2 / 3 - 1 / 3) / (1 - 1 / 3))
    assert pair["kappa"] == pytest.approx(cohen_kappa_score(["a", "b", "tie"], ["a", "b", "a"]))
    assert result["kappa_mean"] == pair["kappa"]
