"""`POST /runs` with a body of the wrong shape: each field of an odd JSON type is refused with 422, located
at the field, never a 500, and nothing is queued."""

from __future__ import annotations

from typing import Any

import pytest

from app.runs.dispatch import first_sends
from app.state import AppState
from tests.conftest import RecordingDispatcher, World
from tests.decisions.test_model_chain import Chain

ODD = [["dpo"], {}, 3, 1.5, True, "x"]


@pytest.fixture
def chain(world: World) -> Chain:
    return Chain(world)


def _body(chain: Chain) -> dict[str, Any]:
    return {
        "kind": "reward_model",
        "inputs": {"dataset": {"id": chain.dataset["id"]}, "base_model": {"id": chain.base["id"]}},
        "params": {"max_steps": 2, "seed": 1},
        "output_name": "rm-run",
    }


def _refused(chain: Chain, body: dict[str, Any], loc: list[Any], code: str = "validation_failed") -> None:
    response = chain.trainer.post(chain.url("runs"), json=body)
    assert response.status_code == 422, (body, response.text)
    problem = response.json()
    assert problem["code"] == code, (body, problem)
    assert problem["errors"][0]["loc"] == loc, (body, problem)


def test_odd_types_are_refused_where_they_are(chain: Chain, stack: AppState) -> None:
    dispatcher = stack.dispatcher
    assert isinstance(dispatcher, RecordingDispatcher)
    first_sends.wait_idle(10)
    before = len(dispatcher.sent)
    good = _body(chain)
    for value in ODD:
        _refused(chain, {**good, "kind": value}, ["body", "kind"])
        if not isinstance(value, dict):
            _refused(chain, {**good, "inputs": value}, ["body", "inputs"])
            _refused(chain, {**good, "params": value}, ["body", "params"])
        if not isinstance(value, str):
            _refused(chain, {**good, "output_name": value}, ["body", "output_name"])
        for role in ("dataset", "base_model"):
            _refused(chain, {**good, "inputs": {**good["inputs"], role: value}}, ["body", "inputs", role])
        for param in ("max_steps", "seed", "learning_rate", "max_length", "per_device_batch_size"):
            if not isinstance(value, (int, float)) or isinstance(value, bool):
                _refused(chain, {**good, "params": {param: value}}, ["body", "params", param])
    for output_name in ("", ".."):
        _refused(chain, {**good, "output_name": output_name}, ["body", "output_name"])
    assert first_sends.wait_idle(10)
    assert len(dispatcher.sent) == before


def test_references_of_odd_values_are_not_found(chain: Chain) -> None:
    good = _body(chain)
    for ref in ({"id": []}, {"id": {}}, {"name": {}, "version": []}, {"name": "prefs", "version": 1.5}):
        _refused(
            chain,
            {**good, "inputs": {**good["inputs"], "dataset": ref}},
            ["body", "inputs", "dataset"],
            "missing_reference",
        )


def test_a_score_run_with_an_odd_outputs_blob_is_refused(chain: Chain) -> None:
    for value in [*ODD, None]:
        body = {"kind": "score", "inputs": {"reward_checkpoint": {"id": chain.reward["id"]}, "outputs_blob": value}}
        _refused(chain, body, ["body", "inputs", "outputs_blob"])


def test_trl_params_of_odd_types_are_refused(chain: Chain) -> None:
    good = _body(chain)
    dpo = {**good, "kind": "dpo", "output_name": "dpo-run"}
    rloo = {
        **good,
        "kind": "rloo",
        "output_name": "rloo-run",
        "inputs": {**good["inputs"], "reward_checkpoint": {"id": chain.reward["id"]}},
    }
    cases: list[tuple[dict[str, Any], dict[str, Any]]] = [
        (dpo, {"loss_type": 3}),
        (dpo, {"loss_weights": "x"}),
        (dpo, {"loss_type": ["sigmoid"], "loss_weights": [1.0, 2.0]}),
        (dpo, {"max_length": 4, "max_completion_length": 8}),
        (rloo, {"generation_batch_size": "8"}),
        (rloo, {"num_generations": [2]}),
        (rloo, {"steps_per_generation": {}}),
        (rloo, {"kl_coefficient": "0.1"}),
        (rloo, {"generation_batch_size": 6, "per_device_batch_size": 4}),
    ]
    for body, params in cases:
        response = chain.trainer.post(chain.url("runs"), json={**body, "params": params})
        assert response.status_code == 422 and response.json()["code"] == "validation_failed", (params, response.text)
        assert response.json()["errors"][0]["loc"][:2] == ["body", "params"], params
