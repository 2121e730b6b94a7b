"""The names a run's `params` may use, per kind, and how they map onto the installed TRL's config classes.

Our names map onto each kind's TRL config (`per_device_batch_size` is `per_device_train_batch_size`,
`kl_coefficient` is `beta` for rloo and grpo); `checkpoint_every` and `max_eval_prompts` are ours (the
checkpoint series and its evaluations); any other key must be a field of the kind's TRL config, and the
fields this layer owns (where outputs go, logging, saving, hub pushes) are refused. Nothing here imports
torch or TRL at import time.
"""

from __future__ import annotations

import dataclasses
import importlib
from functools import cache
from importlib.metadata import PackageNotFoundError, version

KINDS = ("reward_model", "dpo", "rloo", "grpo", "ppo", "score")
DEFAULT_SEED = 42  # TRL's default; a run without a seed still records and reuses the one it used

# The TRL config class of each kind that trains (module, class), imported lazily.
TRL_CONFIGS = {
    "reward_model": ("trl", "RewardConfig"),
    "dpo": ("trl", "DPOConfig"),
    "rloo": ("trl", "RLOOConfig"),
    "grpo": ("trl", "GRPOConfig"),
}

COMMON = ("max_steps", "learning_rate", "per_device_batch_size", "max_length", "seed")
SERIES = ("max_completion_length", "checkpoint_every", "max_eval_prompts")  # policy checkpoints and their evaluations
ONLINE = (*COMMON, *SERIES, "kl_coefficient", "num_generations")
OUR_PARAMS: dict[str, tuple[str, ...]] = {
    "reward_model": COMMON,
    "dpo": (*COMMON, *SERIES, "beta"),
    "rloo": ONLINE,
    "grpo": ONLINE,
    "ppo": ONLINE,
    "score": ("per_device_batch_size", "max_length", "seed"),
}

# Our names that TRL spells otherwise. Any other key of ours goes to the TRL config under its own name where
# the config has that field (RLOO and GRPO have no `max_length`: we cut their prompts to
# `max_length - max_completion_length` tokens), and is this layer's alone where it has not.
RENAMED = {"per_device_batch_size": "per_device_train_batch_size", "kl_coefficient": "beta"}
# TRL spellings of our keys: one name per setting, so a run's hyperparameters read the same across kinds.
SPELLED_OURS = {"per_device_train_batch_size": "per_device_batch_size"}
# Owned by this layer: where outputs go, how they are logged and saved; never pushed anywhere.
RESERVED = frozenset(
    {
        "output_dir", "logging_dir", "overwrite_output_dir", "report_to", "logging_strategy", "logging_steps",
        "logging_first_step", "save_strategy", "save_steps", "save_total_limit", "save_only_model",
        "save_safetensors", "resume_from_checkpoint", "push_to_hub", "hub_model_id", "hub_strategy", "hub_token",
        "hub_private_repo", "hub_always_push", "hub_revision", "eval_strategy", "eval_steps", "do_eval",
        "do_train", "do_predict", "run_name", "disable_tqdm", "data_seed",
    }
)  # fmt: skip


def trl_version() -> str | None:
    """The installed TRL version, or None; read from the package metadata, so nothing is imported."""
    try:
        return version("trl")
    except PackageNotFoundError:
        return None


@cache
def trl_fields(kind: str) -> frozenset[str] | None:
    """The init fields of the kind's TRL config, or None when TRL is not installed here."""
    if kind not in TRL_CONFIGS or trl_version() is None:
        return None
    module, name = TRL_CONFIGS[kind]
    config_class = getattr(importlib.import_module(module), name)
    return frozenset(f.name for f in dataclasses.fields(config_class) if f.init)
