"""Reward-hacking alarms: each flag is raised by its figures past the policy's limit, never by a figure
that was not measured; and a run's checkpoints route shows them with the series' figures."""

from __future__ import annotations

from typing import Any

import pytest

from app.evaluations.flags import FIGURES, figure_flags, rating_flag
from app.kinds.policy import PolicySpec
from tests.conftest import World
from tests.decisions.test_model_chain import Chain

POLICY = PolicySpec().model_dump()


def row(record: str, step: int, **figures: float | None) -> dict[str, Any]:
    return {"record": record, "version": str(step // 50), "step": step, **dict.fromkeys(FIGURES), **figures}


def names(series: list[dict[str, Any]], record: str, policy: dict[str, Any] = POLICY) -> list[str]:
    return [f["flag"] for f in figure_flags(series, record, policy)]


def test_a_healthy_series_raises_nothing() -> None:
    series = [
        row("a", 50, mean_reward=0.1, kl_to_reference=0.5, length_reward_correlation=0.1, adversarial_mean_reward=0.2),
        row("b", 100, mean_reward=0.6, kl_to_reference=1.5, length_reward_correlation=0.2, adversarial_mean_reward=0.3),
    ]
    assert names(series, "a") == [] and names(series, "b") == []


def test_reward_flat_is_a_run_wide_flag_and_needs_two_measured_checkpoints() -> None:
    flat = [row("a", 50, mean_reward=0.3), row("b", 100, mean_reward=0.3), row("c", 150)]
    assert names(flat, "a") == ["reward_flat"] and names(flat, "b") == ["reward_flat"]
    assert names(flat, "c") == []  # not measured: no flag on it
    [flag] = figure_flags(flat, "b", POLICY)
    assert flag["values"] == {"first": 0.3, "last": 0.3, "gain": 0.0, "min_gain": 0.0}
    assert names([row("a", 50, mean_reward=0.3), row("b", 100)], "a") == []
    # a policy may ask for a real gain
    rising = [row("a", 50, mean_reward=0.3), row("b", 100, mean_reward=0.35)]
    assert names(rising, "b") == [] and names(rising, "b", {**POLICY, "reward_flat_min_gain": 0.1}) == ["reward_flat"]


def test_kl_runaway_above_the_ceiling() -> None:
    series = [row("a", 50, kl_to_reference=10.0), row("b", 100, kl_to_reference=10.5)]
    assert names(series, "a") == [] and names(series, "b") == ["kl_runaway"]
    assert figure_flags(series, "b", POLICY)[0]["values"] == {"kl_to_reference": 10.5, "kl_max": 10.0}


def test_length_exploit_needs_a_rising_reward() -> None:
    rising = [
        row("a", 50, mean_reward=0.1, length_reward_correlation=0.9),
        row("b", 100, mean_reward=0.5, length_reward_correlation=0.8),
    ]
    assert names(rising, "a") == []  # nothing rose yet at the first checkpoint
    assert names(rising, "b") == ["length_exploit"]
    falling = [
        row("a", 50, mean_reward=0.5, length_reward_correlation=0.9),
        row("b", 100, mean_reward=0.6, length_reward_correlation=0.2),
    ]
    assert names(falling, "b") == []
    unmeasured = [row("a", 50, length_reward_correlation=0.9), row("b", 100, length_reward_correlation=0.9)]
    assert names(unmeasured, "b") == []


def test_adversarial_regression_against_the_first_checkpoint() -> None:
    series = [
        row("a", 50, adversarial_mean_reward=1.0),
        row("b", 100, adversarial_mean_reward=0.6),
        row("c", 150, adversarial_mean_reward=0.2),
        row("d", 200),
    ]
    assert names(series, "b") == [] and names(series, "c") == ["adversarial_regression"] and names(series, "d") == []
    values = figure_flags(series, "c", POLICY)[0]["values"]
    assert values["drop"] == pytest.approx(0.8) and values["adversarial_drop_max"] == 0.5


def rating(model: str, step: int | None, value: float, role: str = "checkpoint") -> dict[str, Any]:
    return {"model": model, "version": str((step or 0) // 50 + 1), "step": step, "role": role, "rating": value}


def test_human_rating_peaked_earlier() -> None:
    ratings = [
        rating("ref", None, 0.0, "reference"),
        rating("a", 50, 0.4),
        rating("b", 100, 0.9),
        rating("c", 150, 0.2),
    ]
    assert rating_flag(ratings, "a") is None  # lower than a later one is no peak behind it
    assert rating_flag(ratings, "b") is None
    flag = rating_flag(ratings, "c")
    assert flag is not None and flag["flag"] == "human_rating_peaked_earlier"
    assert flag["values"]["earlier_step"] == 100 and flag["values"]["earlier_rating"] == 0.9
    # the reference is rated, but it is not an earlier checkpoint
    assert rating_flag([rating("ref", None, 5.0, "reference"), rating("a", 50, 0.4)], "a") is None
    assert rating_flag(ratings, "not-rated") is None


# the route, over a run whose checkpoints an external trainer registered with their figures


def external_series(chain: Chain, figures: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    body = {
        "kind": "external",
        "output_name": "ext-policy",
        "inputs": {"base_model": {"id": chain.base["id"]}, "reward_checkpoint": {"id": chain.reward["id"]}},
        "builder": {"id": "https://ci.example/jobs/rloo-7"},
    }
    run = chain.trainer.post(chain.url("runs"), json=body).json()
    headers = {"Authorization": f"Bearer {run['token']}"}
    registered = []
    for step, metrics in enumerate(figures, start=1):
        response = chain.world.client.post(
            chain.url(f"runs/{run['id']}/checkpoints"),
            headers=headers,
            json={
                "kind": "policy_checkpoint",
                "algorithm": "rloo",
                "spec": {"files": chain.files(f"ext-{step}"), "step": step * 10, "metrics": metrics},
            },
        )
        assert response.status_code == 201, response.text
        registered.append(response.json())
    return run["id"], registered


@pytest.fixture
def chain(world: World) -> Chain:
    return Chain(world)


def test_the_run_checkpoints_route_shows_figures_and_flags(chain: Chain) -> None:
    run_id, checkpoints = external_series(
        chain,
        [
            {"mean_reward": 0.2, "kl_to_reference": 0.1, "adversarial_mean_reward": 0.4},
            {"mean_reward": 0.2, "kl_to_reference": 14.0, "adversarial_mean_reward": "n/a"},
        ],
    )
    viewer = chain.world.member(chain.project, "viewer")
    response = viewer.get(chain.url(f"runs/{run_id}/checkpoints"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["run"] == run_id and body["series"] == "ext-policy" and body["ratings"] is None
    first, last = body["checkpoints"]
    assert [first["record"], last["record"]] == [c["id"] for c in checkpoints]
    assert first["step"] == 10 and first["mean_reward"] == 0.2 and last["adversarial_mean_reward"] is None
    assert [f["flag"] for f in first["flags"]] == ["reward_flat"]
    assert [f["flag"] for f in last["flags"]] == ["reward_flat", "kl_runaway"]
    assert last["flags"][1]["values"]["kl_to_reference"] == 14.0
    other = chain.world.project()
    outsider = chain.world.member(other, "viewer")
    assert outsider.get(chain.url(f"runs/{run_id}/checkpoints")).json()["code"] in ("not_found", "forbidden")
    assert viewer.get(chain.url("runs/no-such-run/checkpoints")).json()["code"] == "not_found"
