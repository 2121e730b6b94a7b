"""What a trainer is given and what it returns, and the check of a run's `params` against the installed TRL.

`validate_params` is also called by the API before a run is queued, so this module imports neither torch
nor TRL at import time: the TRL config classes are imported on the first call that needs them. Which
names are ours and how they map onto TRL's is in `param_names`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app.core.errors import ValidationFailed
from workers.trainers.param_names import (
    KINDS,
    OUR_PARAMS,
    RESERVED,
    SPELLED_OURS,
    TRL_CONFIGS,
    trl_fields,
    trl_version,
)
from workers.trainers.trl_config import build_config

POSITIVE_INTS = (
    "max_steps",
    "per_device_batch_size",
    "max_length",
    "max_completion_length",
    "checkpoint_every",
    "max_eval_prompts",
)
NON_NEGATIVE = ("beta", "kl_coefficient")


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


def _refuse(detail: str, key: str | None = None, msg: str | None = None) -> ValidationFailed:
    loc: list[str] = ["body", "params"] if key is None else ["body", "params", key]
    return ValidationFailed(detail, errors=[{"loc": loc, "msg": msg or detail}])


def ppo_available() -> bool:
    """Whether the installed TRL still ships PPOTrainer (it left TRL in 1.13), found without importing TRL."""
    spec = importlib.util.find_spec("trl")
    if spec is None or not spec.submodule_search_locations:
        return False
    root = Path(next(iter(spec.submodule_search_locations)))
    return (root / "experimental" / "ppo" / "ppo_trainer.py").exists() or (root / "trainer" / "ppo_trainer.py").exists()


def refuse_ppo() -> ValidationFailed:
    installed = trl_version()
    if installed is not None and ppo_available():
        why = f"this worker has no PPO adapter for TRL {installed}"
    else:
        why = f"the installed TRL ({installed or 'not installed'}) does not ship PPOTrainer, which left TRL in 1.13"
    return _refuse(
        f"kind 'ppo' cannot run: {why}. Use kind 'rloo' (REINFORCE leave-one-out with a KL penalty against the "
        "reference model, on the same inputs and with the same kl_coefficient).",
        msg="ppo unavailable; use rloo",
    )


def _check_value(key: str, value: Any) -> None:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    is_number = (is_int or isinstance(value, float)) and value == value  # NaN is no number
    if key in POSITIVE_INTS and not (is_int and value >= 1):
        raise _refuse(f"params.{key} must be an integer >= 1", key, "must be an integer >= 1")
    if key == "seed" and not (is_int and value >= 0):
        raise _refuse("params.seed must be an integer >= 0", key, "must be an integer >= 0")
    if key == "learning_rate" and not (is_number and value > 0):
        raise _refuse("params.learning_rate must be a number > 0", key, "must be a number > 0")
    if key in NON_NEGATIVE and not (is_number and value >= 0):
        raise _refuse(f"params.{key} must be a number >= 0", key, "must be a number >= 0")
    if key == "num_generations" and not (is_int and value >= 2):
        raise _refuse("params.num_generations must be an integer >= 2", key, "must be an integer >= 2")


def validate_params(kind: str, params: dict[str, Any]) -> dict[str, Any]:
    """Refuse (`validation_failed`) a key the kind does not understand, a bad value, or `ppo` where it
    cannot run; return a copy of `params`. Where TRL is installed, the kind's TRL config is also built
    from them, so a combination TRL refuses (say a batch not divisible by `num_generations`) is refused
    here, before anything is queued."""
    if kind not in KINDS:
        raise ValidationFailed(
            f"unknown run kind {kind!r}; one of {list(KINDS)}", errors=[{"loc": ["body", "kind"], "msg": "unknown"}]
        )
    if kind == "ppo":
        raise refuse_ppo()
    if not isinstance(params, dict):
        raise _refuse("params must be an object", msg="not an object")
    fields = trl_fields(kind)
    for key, value in params.items():
        _check_key(kind, key, value, fields)
    if fields is not None:
        _check_with_trl(kind, params)
    return dict(params)


def _check_key(kind: str, key: str, value: Any, fields: frozenset[str] | None) -> None:
    ours = OUR_PARAMS[kind]
    if key in ours:
        _check_value(key, value)
        return
    if key in SPELLED_OURS and SPELLED_OURS[key] in ours:
        raise _refuse(f"params.{key}: write {SPELLED_OURS[key]}", key, f"use {SPELLED_OURS[key]}")
    if key == "beta" and "kl_coefficient" in ours:
        raise _refuse(
            f"params.beta: a {kind} run writes its KL coefficient as kl_coefficient", key, "use kl_coefficient"
        )
    if key == "kl_coefficient" and "beta" in ours:
        raise _refuse("params.kl_coefficient: a dpo run writes its KL coefficient as beta", key, "use beta")
    if key in RESERVED:
        raise _refuse(f"params.{key} is set by the worker, not by a run", key, "reserved")
    if key == "trust_remote_code" or (isinstance(value, dict) and "trust_remote_code" in value):
        raise _refuse(
            f"params.{key}: a worker never runs code shipped inside a model folder (trust_remote_code)", key, "refused"
        )
    if fields is None or key not in fields:
        if kind not in TRL_CONFIGS:
            where = "has no TRL config"
        elif fields is None:
            where = "cannot be checked: TRL is not installed here"
        else:
            where = f"is not a field of TRL's {TRL_CONFIGS[kind][1]}"
        raise _refuse(
            f"unknown param {key!r} for a {kind} run: it is not one of ours {sorted(ours)} and {where}", key, "unknown"
        )


def _check_with_trl(kind: str, params: dict[str, Any]) -> None:
    """Build the TRL config (its own checks run in `__post_init__`), then check what spans our keys and TRL's."""
    try:
        config = build_config(kind, params, Path("validate-only"))
    except (TypeError, ValueError) as exc:
        raise _refuse(f"TRL refuses these params for a {kind} run: {exc}", msg=str(exc)) from exc
    completion = getattr(config, "max_completion_length", params.get("max_completion_length"))
    if "max_length" in params and completion is not None and params["max_length"] <= completion:
        raise _refuse(
            f"params.max_length ({params['max_length']}) must exceed max_completion_length ({completion}): "
            "prompts are cut to the difference",
            "max_length",
            "must exceed max_completion_length",
        )
