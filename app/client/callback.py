"""`RegistryCallback`: a transformers `TrainerCallback` that reports a training loop into an external run
(`app.client.external.ExternalRun`), for any `Trainer`, TRL's included:

    trainer = DPOTrainer(..., callbacks=[RegistryCallback(run, algorithm="dpo")])
    trainer.train()
    run.finish()

On each log it posts the step's numeric metrics as a `metrics` event; on each save it uploads the
checkpoint folder the trainer just wrote (`<output_dir>/checkpoint-<step>`, without the optimizer,
scheduler and random states, which are not the model) and registers it with the run's inputs as its
parents. Only the main process reports (`state.is_world_process_zero`), so the callback is safe under
several processes. The run is left running when training ends (a final model saved after `train()` can
still be registered); `finish_on_train_end=True` finishes it as succeeded there instead.

transformers is imported here only (the client runs without it; `RegistryCallback` then cannot be made)."""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any

from app.client.external import ExternalRun

try:
    from transformers import TrainerCallback
except ImportError:  # the rest of the client works without transformers
    TrainerCallback = object  # type: ignore[misc,assignment]

# what a Trainer checkpoint folder holds beside the model: its training state (`Trainer._save_checkpoint`)
TRAINING_STATE = ("optimizer.pt", "scheduler.pt", "scaler.pt", "rng_state")


def is_training_state(relative: str) -> bool:
    name = relative.rsplit("/", 1)[-1]
    return any(name.startswith(prefix) for prefix in TRAINING_STATE)


class RegistryCallback(TrainerCallback):
    def __init__(
        self,
        run: ExternalRun,
        *,
        kind: str = "policy_checkpoint",
        algorithm: str | None = None,
        finish_on_train_end: bool = False,
    ) -> None:
        if TrainerCallback is object:
            raise ImportError("RegistryCallback needs transformers (pip install transformers)")
        if kind == "policy_checkpoint" and algorithm is None:
            raise ValueError("a policy checkpoint names its algorithm: RegistryCallback(run, algorithm='dpo')")
        self.run = run
        self.kind = kind
        self.algorithm = algorithm
        self.finish_on_train_end = finish_on_train_end
        self.last_metrics: dict[str, float] = {}
        self.registered: list[dict[str, Any]] = []

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **_: Any) -> None:
        if not state.is_world_process_zero or not logs:
            return
        metrics = {
            key: float(value)
            for key, value in logs.items()
            if isinstance(value, numbers.Real) and not isinstance(value, bool)
        }
        if metrics:
            self.last_metrics = {**self.last_metrics, **metrics}
            self.run.log_metrics(int(state.global_step), metrics)

    def on_save(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        if not state.is_world_process_zero:
            return
        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if not folder.is_dir():
            self.run.log(f"step {state.global_step}: no checkpoint folder at {folder} to register")
            return
        record = self.run.register_checkpoint(
            folder,
            kind=self.kind,
            algorithm=self.algorithm,
            step=int(state.global_step),
            metrics=dict(self.last_metrics),
            hyperparameters=_hyperparameters(args),
            skip=is_training_state,
        )
        self.registered.append(record)

    def on_train_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
        if self.finish_on_train_end and state.is_world_process_zero:
            self.run.finish("succeeded")


def _hyperparameters(args: Any) -> dict[str, Any]:
    """The training arguments that are plain JSON values (a `TrainingArguments` holds enums and paths)."""
    plain = (str, int, float, bool, type(None))
    return {key: value for key, value in args.to_dict().items() if isinstance(value, plain)}
