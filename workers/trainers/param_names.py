"""The names a run's `params` may use, per kind, and how they map onto the installed TRL's config classes.

The tables (our names per kind, TRL's spellings, the fields the worker owns) live with the API's check of a
run's params (`app.runs.trainer_params`); this module adds what only a worker with TRL installed can read.
Nothing here imports torch or TRL at import time.
"""

from __future__ import annotations

import dataclasses
import importlib
from functools import cache
from importlib.metadata import PackageNotFoundError, version

from app.runs.trainer_params import KINDS, OUR_PARAMS, RENAMED, RESERVED, SPELLED_OURS, TRL_CONFIGS

__all__ = [
    "DEFAULT_SEED", "KINDS", "OUR_PARAMS", "RENAMED", "RESERVED", "SPELLED_OURS", "TRL_CONFIGS", "trl_fields",
    "trl_version",
]  # fmt: skip

DEFAULT_SEED = 42  # TRL's default; a run without a seed still records and reuses the one it used


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
