"""The TRL config of a run: our params mapped onto the kind's config class, with what this layer owns.

This layer owns saving (`save_strategy="no"`: it saves checkpoints itself), logging (every step, to the
run's event stream through a callback, `report_to="none"`), the device (`use_cpu` where there is no
CUDA), precision (float32 unless the run asks for `bf16`/`fp16`, since TRL defaults to bf16) and data
loading in the main process, so that one seed gives one result.
"""

from __future__ import annotations

import importlib
import json
import math
from enum import Enum
from pathlib import Path
from typing import Any

from workers.trainers.param_names import DEFAULT_SEED, OUR_PARAMS, RENAMED, TRL_CONFIGS, trl_fields

# Keys of the effective config that name a local folder: left out, so that a retried run records the same.
LOCAL_PATHS = ("output_dir", "logging_dir")


def cuda_available() -> bool:
    import torch

    return bool(torch.cuda.is_available())


def config_kwargs(kind: str, params: dict[str, Any], output_dir: Path) -> dict[str, Any]:
    """Keyword arguments of the kind's TRL config: our params renamed, other keys passed as they are."""
    ours = OUR_PARAMS[kind]
    fields = trl_fields(kind) or frozenset()
    kwargs: dict[str, Any] = {
        "output_dir": str(output_dir),
        "save_strategy": "no",
        "eval_strategy": "no",
        "logging_strategy": "steps",
        "logging_steps": 1,
        "report_to": "none",
        "push_to_hub": False,
        "disable_tqdm": True,
        "dataloader_num_workers": 0,
        "use_cpu": not cuda_available(),
        # on several devices (workers/launch.py) every parameter takes part in each step: DDP need not look
        # for unused ones after each backward pass
        "ddp_find_unused_parameters": False,
    }
    if "fp16" not in params and "bf16" not in params:
        kwargs["bf16"] = False
    stated = {"activation_checkpointing", "gradient_checkpointing"} & set(params)
    if "activation_checkpointing" in fields and not stated:
        # transformers renamed gradient_checkpointing; TRL still sets the old name (True), which warns on every
        # config: state TRL's default under the new name.
        kwargs["activation_checkpointing"] = _default(kind, "gradient_checkpointing")
    for key, value in params.items():
        if key in ours:
            if RENAMED.get(key, key) in fields:
                kwargs[RENAMED.get(key, key)] = value
        elif key.startswith("gradient_checkpointing") and key.replace("gradient", "activation") in fields:
            kwargs.setdefault(key.replace("gradient", "activation"), value)
        else:
            kwargs[key] = value
    seed = params.get("seed", DEFAULT_SEED)
    kwargs["seed"] = seed
    kwargs["data_seed"] = seed
    return kwargs


def _config_class(kind: str) -> Any:
    module, name = TRL_CONFIGS[kind]
    return getattr(importlib.import_module(module), name)


def _default(kind: str, name: str) -> Any:
    import dataclasses

    found = next(f for f in dataclasses.fields(_config_class(kind)) if f.name == name)
    return found.default


def build_config(kind: str, params: dict[str, Any], output_dir: Path) -> Any:
    """The kind's TRL config object (RewardConfig, DPOConfig, RLOOConfig or GRPOConfig)."""
    return _config_class(kind)(**config_kwargs(kind, params, output_dir))


def json_safe(value: Any) -> Any:
    """A JSON-safe copy: enums by value, paths and unknown objects as strings, NaN and infinities as None."""
    if isinstance(value, Enum):
        return json_safe(value.value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [json_safe(v) for v in items]
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    if hasattr(value, "to_dict"):
        return json_safe(value.to_dict())
    return str(value)


def config_dict(config: Any) -> dict[str, Any]:
    """The effective TRL config as a JSON-safe dict, with its class name and without local paths."""
    raw = config.to_dict()
    for key in LOCAL_PATHS:
        raw.pop(key, None)
    safe: dict[str, Any] = json_safe(raw)
    safe["trl_config_class"] = type(config).__name__
    json.dumps(safe)  # fails here, not at registration, if anything slipped through
    return safe
