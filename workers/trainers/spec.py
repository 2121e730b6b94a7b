"""What a trainer is given and what it returns, and the worker's check of a run's `params`: the API's
(`app.runs.trainer_params`, on the exported TRL fields), then the installed TRL's own.

This module imports neither torch nor TRL at import time: the TRL config classes are imported on the first
call that needs them.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.errors import ValidationFailed
from app.runs.trainer_params import ppo_refusal, refuse
from app.runs.trainer_params import validate_params as app_validate_params
from workers.trainers.param_names import trl_fields, trl_version
from workers.trainers.trl_config import build_config


@dataclass
class TrainJob:
    """One run as the worker hands it over: local paths of the downloaded inputs and three callbacks.

    `dataset_path` is the preference Parquet (prompt, chosen, rejected, split `train|validation`, and
    `dim_<dimension>` labels `chosen|rejected|tie|null`); `outputs_path` is the JSONL a `score` run scores.
    """

    kind: str
    params: dict[str, Any]
    output_dir: Path
    dataset_path: Path | None = None
    base_model_dir: Path | None = None
    reward_model_dir: Path | None = None
    adversarial_prompts: list[str] = field(default_factory=list)
    outputs_path: Path | None = None
    on_metrics: Callable[[int, dict[str, Any]], None] = lambda step, metrics: None
    on_checkpoint: Callable[[int, Path, dict[str, Any]], None] = lambda step, folder, metrics: None
    should_stop: Callable[[], bool] = lambda: False
    # called at the end of training with the step reached and the trained model (each rank's, on several devices)
    on_trained: Callable[[int, Any], None] = lambda step, model: None


@dataclass
class TrainResult:
    """What a run produced.

    `output_dir` is the final model folder (`<job.output_dir>/final`; for `score`, the folder holding
    `scores.jsonl`), or None when the run stopped early on `should_stop` (`stopped` is then True).
    `config` is the effective TRL config (JSON-safe, without local paths); `checkpoints` lists
    `(step, folder, metrics)` in step order, each folder inside `job.output_dir`.
    """

    output_dir: Path | None
    metrics: dict[str, Any]
    config: dict[str, Any]
    library_versions: dict[str, str]
    checkpoints: list[tuple[int, Path, dict[str, Any]]] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    kl_coefficient: float | None = None
    stopped: bool = False


def ppo_available() -> bool:
    """Whether the installed TRL still ships PPOTrainer (it left TRL in 1.13), found without importing TRL."""
    spec = importlib.util.find_spec("trl")
    if spec is None or not spec.submodule_search_locations:
        return False
    root = Path(next(iter(spec.submodule_search_locations)))
    return (root / "experimental" / "ppo" / "ppo_trainer.py").exists() or (root / "trainer" / "ppo_trainer.py").exists()


def refuse_ppo() -> ValidationFailed:
    return ppo_refusal(trl_version())


def validate_params(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """The API's check (`app.runs.trainer_params`), then, where TRL is installed, the kind's TRL config
    built from `params`, so a worker refuses what its own TRL refuses before it loads a model. A `ppo` run
    is refused where the installed TRL no longer ships PPOTrainer."""
    if kind == "ppo" and not ppo_available():
        raise refuse_ppo()
    checked = app_validate_params(kind, params)
    if trl_fields(kind) is not None:
        _check_with_trl(kind, checked)
    return checked


def _check_with_trl(kind: str, params: dict[str, Any]) -> None:
    """Build the TRL config: its own checks run in `__post_init__`."""
    try:
        build_config(kind, params, Path("validate-only"))
    except (TypeError, ValueError) as exc:
        raise refuse(f"TRL refuses these params for a {kind} run: {exc}", msg=str(exc)) from exc
