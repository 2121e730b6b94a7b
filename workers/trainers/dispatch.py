"""One entry point for the worker: `run(job)` trains (or scores) by the job's kind."""

from __future__ import annotations

import importlib

from app.core.errors import ValidationFailed
from workers.trainers.param_names import KINDS
from workers.trainers.spec import TrainJob, TrainResult, ppo_available, refuse_ppo

MODULES = {
    "sft": "workers.trainers.sft",
    "reward_model": "workers.trainers.reward",
    "dpo": "workers.trainers.dpo",
    "rloo": "workers.trainers.online",
    "grpo": "workers.trainers.online",
    "ppo": "workers.ppo.trainer",  # in the PPO environment only (workers/ppo/requirements.txt)
    "score": "workers.trainers.score",
}


def run(job: TrainJob) -> TrainResult:
    """Train (or score) as `job.kind` says; the torch/TRL stack is imported only here, on first use."""
    if job.kind == "ppo" and not ppo_available():
        raise refuse_ppo()
    if job.kind not in MODULES:
        raise ValidationFailed(
            f"unknown run kind {job.kind!r}; one of {list(KINDS)}", errors=[{"loc": ["kind"], "msg": "unknown"}]
        )
    module = importlib.import_module(MODULES[job.kind])
    result: TrainResult = module.run(job)
    return result
