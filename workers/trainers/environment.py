"""The process a run trains in: offline, quiet, seeded, and described by its library versions."""

from __future__ import annotations

import os
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version

# what a run's outputs depend on: the training stack, and the libraries that seed (numpy), load
# (huggingface_hub, tokenizers) and write (safetensors) them
LIBRARIES = (
    "torch",
    "transformers",
    "trl",
    "accelerate",
    "datasets",
    "tokenizers",
    "safetensors",
    "huggingface_hub",
    "numpy",
)


def library_versions() -> dict[str, str]:
    """Versions of Python and of the distributions in `LIBRARIES`, recorded on every output of every run
    kind (in its `training_config.json` and its record's `spec.metadata`) and listed by the SLSA
    provenance of a handoff package."""
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def go_offline() -> None:
    """No hub: models come from local folders, and TRL's trainers send no telemetry.

    huggingface_hub reads these variables when it is first imported; the module constants are set as
    well, for a process that imported it earlier.
    """
    for name in ("HF_HUB_OFFLINE", "HF_HUB_DISABLE_TELEMETRY", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        os.environ[name] = "1"
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from huggingface_hub import constants

    constants.HF_HUB_OFFLINE = True
    constants.HF_HUB_DISABLE_TELEMETRY = True
    from transformers.utils import logging

    logging.disable_progress_bar()  # type: ignore[no-untyped-call]


def seed_everything(seed: int) -> None:
    """Python, NumPy and torch (every device) from one seed."""
    from transformers import set_seed

    set_seed(seed)


@contextmanager
def isolated_rng(seed: int) -> Iterator[None]:
    """Run a block from its own seed and give the training loop back the random state it had: evaluating a
    checkpoint must neither depend on nor change what training samples next."""
    import random

    import numpy as np
    import torch

    python_state, numpy_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        try:
            yield
        finally:
            random.setstate(python_state)
            np.random.set_state(numpy_state)


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"
