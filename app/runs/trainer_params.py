"""A run's `params`, checked before it is queued against `trainer_params.json`: what each run kind's TRL
config accepts (field, JSON types, choices, default), exported from the installed TRL by
`python -m workers.trainers.export_params` and checked in, so the API process never imports torch or TRL.

Our names map onto each kind's TRL config (`per_device_batch_size` is `per_device_train_batch_size`,
`kl_coefficient` is `beta` for rloo and grpo); `checkpoint_every` and `max_eval_prompts` are ours (the
checkpoint series and its evaluations), and so is `devices` (how many processes train the run); any other
key must be a field of the kind's TRL config, of one of its types, and the fields the worker owns (where
outputs go, logging, saving, hub pushes) are refused. The kinds that train nothing (`score`, `campaign`,
`judge`) have no TRL config and take our names only.
The cross-field rules TRL enforces in its configs' `__post_init__` are repeated here
(tests/workers/test_trainer_params.py compares both on the installed TRL).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from app.core.errors import ValidationFailed

PARAMS_FILE = Path(__file__).with_name("trainer_params.json")

KINDS = ("sft", "reward_model", "dpo", "rloo", "grpo", "ppo", "score", "campaign", "judge")
# The TRL config class of each kind that trains (module, class).
TRL_CONFIGS = {
    "sft": ("trl", "SFTConfig"),
    "reward_model": ("trl", "RewardConfig"),
    "dpo": ("trl", "DPOConfig"),
    "rloo": ("trl", "RLOOConfig"),
    "grpo": ("trl", "GRPOConfig"),
}
COMMON = ("max_steps", "learning_rate", "per_device_batch_size", "max_length", "seed")
SERIES = ("max_completion_length", "checkpoint_every", "max_eval_prompts")  # policy checkpoints and their evaluations
# how many processes train the run, one a device (workers/launch.py); its maximum is a setting
DEVICES = ("devices",)
ONLINE = (*COMMON, *SERIES, *DEVICES, "kl_coefficient", "num_generations")
OUR_PARAMS: dict[str, tuple[str, ...]] = {
    "sft": COMMON,
    "reward_model": (*COMMON, *DEVICES),
    "dpo": (*COMMON, *SERIES, *DEVICES, "beta"),
    "rloo": ONLINE,
    "grpo": ONLINE,
    # TRL's PPOConfig is not exported (the API's TRL no longer ships it): a ppo run takes our names only
    "ppo": (*COMMON, *SERIES, "kl_coefficient"),
    "score": ("per_device_batch_size", "max_length", "seed"),
    # responses of a checkpoint series and its reference on a prompt set; `max_prompts` caps each source
    "campaign": ("max_new_tokens", "max_prompts", "pairing", "seed", "per_device_batch_size", "max_length"),
    # a reward model's choice between two responses: a tie within `tie_margin`; `seed` draws the review sample
    "judge": ("tie_margin", "seed", "per_device_batch_size", "max_length"),
}
PAIRINGS = ("reference", "all")
# Our names that TRL spells otherwise. Any other key of ours goes to the TRL config under its own name where
# the config has that field (RLOO and GRPO have no `max_length`: we cut their prompts to
# `max_length - max_completion_length` tokens), and is this layer's alone where it has not.
RENAMED = {"per_device_batch_size": "per_device_train_batch_size", "kl_coefficient": "beta"}
# TRL spellings of our keys: one name per setting, so a run's hyperparameters read the same across kinds.
SPELLED_OURS = {"per_device_train_batch_size": "per_device_batch_size"}
# Owned by the worker: where outputs go, how they are logged and saved; never pushed anywhere.
RESERVED = frozenset(
    {
        "output_dir", "logging_dir", "overwrite_output_dir", "report_to", "logging_strategy", "logging_steps",
        "logging_first_step", "save_strategy", "save_steps", "save_total_limit", "save_only_model",
        "save_safetensors", "resume_from_checkpoint", "push_to_hub", "hub_model_id", "hub_strategy", "hub_token",
        "hub_private_repo", "hub_always_push", "hub_revision", "eval_strategy", "eval_steps", "do_eval",
        "do_train", "do_predict", "run_name", "disable_tqdm", "data_seed",
    }
)  # fmt: skip
POSITIVE_INTS = (
    "max_steps",
    "per_device_batch_size",
    "max_length",
    "max_completion_length",
    "checkpoint_every",
    "max_eval_prompts",
    "devices",
    "max_new_tokens",
    "max_prompts",
)
NON_NEGATIVE = ("beta", "kl_coefficient", "tie_margin")
JSON_TYPES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}


@cache
def exported() -> dict[str, Any]:
    """`trainer_params.json`, read once per process."""
    loaded: dict[str, Any] = json.loads(PARAMS_FILE.read_text(encoding="utf-8"))
    return loaded


def trl_fields(kind: str) -> dict[str, dict[str, Any]] | None:
    """The init fields of the kind's TRL config as exported (None for a kind without a TRL config)."""
    entry = exported()["kinds"].get(kind)
    return None if entry is None else dict(entry["fields"])


def refuse(detail: str, key: str | None = None, msg: str | None = None) -> ValidationFailed:
    loc: list[str] = ["body", "params"] if key is None else ["body", "params", key]
    return ValidationFailed(detail, errors=[{"loc": loc, "msg": msg or detail}])


def ppo_refusal(trl_version: str | None) -> ValidationFailed:
    """Why kind `ppo` cannot run on a worker whose TRL lacks PPOTrainer, naming the PPO environment's workers
    and rloo, which trains on the same inputs."""
    why = (
        f"the installed TRL ({trl_version or 'not installed'}) does not ship PPOTrainer, which left TRL in 1.13; "
        "ppo runs train on workers of the PPO environment (workers/ppo), which consume the 'ppo' queue"
    )
    return refuse(
        f"kind 'ppo' cannot run: {why}. Use kind 'rloo' (REINFORCE leave-one-out with a KL penalty against the "
        "reference model, on the same inputs and with the same kl_coefficient).",
        msg="ppo unavailable; use rloo",
    )


def validate_params(kind: str, params: Any) -> dict[str, Any]:
    """Refuse (`validation_failed`) a key the kind does not understand, a value of the wrong type or range,
    a combination TRL's config refuses; return a copy of `params`."""
    if kind not in KINDS:
        raise ValidationFailed(
            f"unknown run kind {kind!r}; one of {list(KINDS)}", errors=[{"loc": ["body", "kind"], "msg": "unknown"}]
        )
    if not isinstance(params, dict):
        raise refuse("params must be an object", msg="not an object")
    fields = trl_fields(kind)
    for key, value in params.items():
        check_key(kind, key, value, fields)
    if fields is not None:
        _check_combinations(kind, params, fields)
    return dict(params)


def _check_value(key: str, value: Any) -> None:
    is_int = isinstance(value, int) and not isinstance(value, bool)
    is_number = (is_int or isinstance(value, float)) and value == value  # NaN is no number
    if key in POSITIVE_INTS and not (is_int and value >= 1):
        raise refuse(f"params.{key} must be an integer >= 1", key, "must be an integer >= 1")
    if key == "seed" and not (is_int and value >= 0):
        raise refuse("params.seed must be an integer >= 0", key, "must be an integer >= 0")
    if key == "learning_rate" and not (is_number and value > 0):
        raise refuse("params.learning_rate must be a number > 0", key, "must be a number > 0")
    if key in NON_NEGATIVE and not (is_number and value >= 0):
        raise refuse(f"params.{key} must be a number >= 0", key, "must be a number >= 0")
    if key == "num_generations" and not (is_int and value >= 2):
        raise refuse("params.num_generations must be an integer >= 2", key, "must be an integer >= 2")
    if key == "pairing" and value not in PAIRINGS:
        raise refuse(f"params.pairing must be one of {list(PAIRINGS)}", key, "not one of the choices")


def check_key(kind: str, key: str, value: Any, fields: dict[str, dict[str, Any]] | None) -> None:
    ours = OUR_PARAMS[kind]
    if key in ours:
        _check_value(key, value)
        return
    if key in SPELLED_OURS and SPELLED_OURS[key] in ours:
        raise refuse(f"params.{key}: write {SPELLED_OURS[key]}", key, f"use {SPELLED_OURS[key]}")
    if key == "beta" and "kl_coefficient" in ours:
        raise refuse(
            f"params.beta: a {kind} run writes its KL coefficient as kl_coefficient", key, "use kl_coefficient"
        )
    if key == "kl_coefficient" and "beta" in ours:
        raise refuse("params.kl_coefficient: a dpo run writes its KL coefficient as beta", key, "use beta")
    if key in RESERVED:
        raise refuse(f"params.{key} is set by the worker, not by a run", key, "reserved")
    if key == "trust_remote_code" or (isinstance(value, dict) and "trust_remote_code" in value):
        raise refuse(
            f"params.{key}: a worker never runs code shipped inside a model folder (trust_remote_code)", key, "refused"
        )
    if fields is None or key not in fields:
        where = "has no TRL config" if fields is None else f"is not a field of TRL's {TRL_CONFIGS[kind][1]}"
        raise refuse(
            f"unknown param {key!r} for a {kind} run: it is not one of ours {sorted(ours)} and {where}", key, "unknown"
        )
    _check_type(key, value, fields[key])


def _check_type(key: str, value: Any, field: dict[str, Any]) -> None:
    got = "null" if value is None else JSON_TYPES.get(type(value), "unknown")
    types: list[str] = field["types"]
    if got not in types and not (got == "integer" and "number" in types):
        accepted = " or ".join(types) if types else "nothing a JSON body can carry"
        raise refuse(f"params.{key} must be {accepted} (TRL's type); got {got}", key, f"must be {accepted}")
    choices = field.get("choices")
    if choices and isinstance(value, str) and value not in choices:
        raise refuse(f"params.{key} must be one of {choices}; got {value!r}", key, "not one of the choices")


def _setting(params: dict[str, Any], fields: dict[str, dict[str, Any]], name: str) -> Any:
    """What the TRL config will hold for `name`: the run's value (under our name or TRL's), else TRL's default."""
    ours = next((k for k, v in RENAMED.items() if v == name and k in params), None)
    if ours is not None:
        return params[ours]
    if name in params:
        return params[name]
    return fields[name].get("default") if name in fields else None


def _check_combinations(kind: str, params: dict[str, Any], fields: dict[str, dict[str, Any]]) -> None:
    def get(name: str) -> Any:
        return _setting(params, fields, name)

    if kind in ("rloo", "grpo"):
        _check_generation_batch(get)
    if kind == "grpo" and get("log_completions_hub_repo") is not None and not get("log_completions"):
        raise refuse("params.log_completions_hub_repo needs log_completions", "log_completions_hub_repo")
    if kind == "dpo":
        weights, losses = get("loss_weights"), get("loss_type")
        count = 1 if isinstance(losses, str) or losses is None else len(losses)
        if weights is not None and len(weights) != count:
            raise refuse(f"params.loss_weights needs one weight per loss_type ({count})", "loss_weights")
    completion = get("max_completion_length")
    if "max_length" in params and completion is not None and params["max_length"] <= completion:
        raise refuse(
            f"params.max_length ({params['max_length']}) must exceed max_completion_length ({completion}): "
            "prompts are cut to the difference",
            "max_length",
            "must exceed max_completion_length",
        )


def _check_generation_batch(get: Any) -> None:
    """RLOOConfig and GRPOConfig: each generation batch holds whole groups of `num_generations` completions
    (checked for one process: `devices` processes multiply the batch, which keeps the groups whole)."""
    if get("auto_find_batch_size"):
        raise refuse("params.auto_find_batch_size cannot keep whole generation groups", "auto_find_batch_size")
    batch, accumulation = get("per_device_train_batch_size"), get("gradient_accumulation_steps")
    generation, steps = get("generation_batch_size"), get("steps_per_generation")
    if generation is not None and steps is not None:
        raise refuse("params: set generation_batch_size or steps_per_generation, not both", "generation_batch_size")
    if generation is None:
        generation = batch * (accumulation if steps is None else steps)
    elif generation % batch != 0:
        raise refuse(
            f"params.generation_batch_size ({generation}) must be a multiple of per_device_batch_size ({batch})",
            "generation_batch_size",
        )
    groups = get("num_generations")
    if groups is not None and generation % groups != 0:
        raise refuse(
            f"the generation batch ({generation} completions: per_device_batch_size x gradient_accumulation_steps, "
            f"or generation_batch_size) must be a multiple of num_generations ({groups})",
            "num_generations",
            "does not divide the generation batch",
        )
