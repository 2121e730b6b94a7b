"""`app/runs/trainer_params.json` is what the installed TRL exports, and the API's check of a run's params
(which never imports TRL) refuses exactly the combinations TRL's config classes refuse."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.core.errors import ValidationFailed
from app.runs import trainer_params

pytest.importorskip("trl", reason="the training extra (torch, transformers, trl) is not installed")


def test_checked_in_params_file_is_what_the_installed_trl_exports(tmp_path: Path) -> None:
    from workers.trainers.export_params import export, main, render

    assert json.loads(trainer_params.PARAMS_FILE.read_text(encoding="utf-8")) == export(), (
        "app/runs/trainer_params.json is stale: run `python -m workers.trainers.export_params`"
    )
    assert main([str(tmp_path / "params.json")]) == 0
    assert (tmp_path / "params.json").read_text(encoding="utf-8") == render(export())


# combinations on both sides of TRL's rules (generation batches, loss weights, choices), with TRL's verdict
CASES: list[tuple[str, dict[str, Any], bool]] = [
    ("rloo", {"per_device_batch_size": 4, "num_generations": 2}, False),
    ("rloo", {"per_device_batch_size": 3, "num_generations": 2}, True),
    ("rloo", {"per_device_batch_size": 3, "num_generations": 3, "gradient_accumulation_steps": 2}, False),
    ("rloo", {"per_device_batch_size": 2, "num_generations": 4, "gradient_accumulation_steps": 2}, False),
    ("rloo", {"per_device_batch_size": 2, "num_generations": 4, "generation_batch_size": 8}, False),
    ("rloo", {"per_device_batch_size": 4, "num_generations": 4, "generation_batch_size": 6}, True),
    ("rloo", {"per_device_batch_size": 2, "num_generations": 3, "steps_per_generation": 3}, False),
    ("rloo", {"per_device_batch_size": 2, "num_generations": 4, "steps_per_generation": 3}, True),
    ("rloo", {"per_device_batch_size": 2, "generation_batch_size": 4, "steps_per_generation": 2}, True),
    ("rloo", {"auto_find_batch_size": True}, True),
    ("grpo", {"per_device_batch_size": 4}, True),
    ("grpo", {"per_device_batch_size": 4, "num_generations": 2}, False),
    ("grpo", {"per_device_batch_size": 6, "num_generations": 3}, False),
    ("grpo", {"log_completions_hub_repo": "org/completions", "per_device_batch_size": 8}, True),
    (
        "grpo",
        {"log_completions_hub_repo": "org/completions", "log_completions": True, "per_device_batch_size": 8},
        False,
    ),
    ("dpo", {"loss_type": ["sigmoid", "bco_pair"], "loss_weights": [0.5, 0.5]}, False),
    ("dpo", {"loss_type": ["sigmoid", "bco_pair"], "loss_weights": [1.0]}, True),
    ("dpo", {"loss_weights": [1.0]}, False),
    ("dpo", {"loss_weights": [1.0, 2.0]}, True),
    ("dpo", {"warmup_steps": 2, "weight_decay": 0.01, "lr_scheduler_type": "cosine"}, False),
    ("reward_model", {"lr_scheduler_type": "zigzag"}, True),
    ("reward_model", {"optim": "sgd", "max_length": 64}, False),
]


def _refused_by_api(kind: str, params: dict[str, Any]) -> bool:
    try:
        trainer_params.validate_params(kind, params)
    except ValidationFailed:
        return True
    return False


def _refused_by_trl(kind: str, params: dict[str, Any]) -> bool:
    from workers.trainers.trl_config import build_config

    try:
        build_config(kind, params, Path("validate-only"))
    except (TypeError, ValueError):
        return True
    return False


@pytest.mark.parametrize(("kind", "params", "refused"), CASES)
def test_api_check_agrees_with_trl(kind: str, params: dict[str, Any], refused: bool) -> None:
    assert _refused_by_trl(kind, params) == refused
    assert _refused_by_api(kind, params) == refused
