"""The TrainerCallback that streams a run's step metrics, stops it on request and marks checkpoint steps."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from transformers import TrainerCallback

from workers.trainers.spec import TrainJob


def finite_numbers(logs: dict[str, Any]) -> dict[str, float]:
    """The numeric, finite entries of a TRL log record (TRL logs None for a metric with no valid value)."""
    return {
        k: float(v)
        for k, v in logs.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(float(v))
    }


def silence(trainer: Any) -> None:
    """No per-step printing to stdout (transformers prints every log when tqdm is off): the worker streams."""
    from transformers.trainer_callback import PrinterCallback, ProgressCallback

    trainer.remove_callback(PrinterCallback)
    trainer.remove_callback(ProgressCallback)


class RunProgress(TrainerCallback):
    """Sends every log record to `job.on_metrics` (with `samples`, the examples trained on so far, and
    `samples_per_second` since the previous record, both counted over every process), calls
    `at_checkpoint(step, model)` every `checkpoint_every` steps, ends training early when `job.should_stop()`
    says so, and hands the trained model to `job.on_trained` at the end.

    `samples_per_step` is one process's: per-device batch times gradient accumulation steps."""

    def __init__(
        self,
        job: TrainJob,
        samples_per_step: int,
        checkpoint_every: int | None = None,
        at_checkpoint: Callable[[int, Any], None] | None = None,
    ) -> None:
        self.job = job
        self.samples_per_step = samples_per_step
        self.checkpoint_every = checkpoint_every
        self.at_checkpoint = at_checkpoint
        self.stopped = False
        self._clock = time.monotonic()
        self._last_step = 0
        self.world_size = 1

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._clock, self._last_step = time.monotonic(), state.global_step
        self.world_size = args.world_size

    def on_train_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
        self.job.on_trained(state.global_step, model)

    def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> Any:
        step = state.global_step
        if self.at_checkpoint is not None and self.checkpoint_every and step % self.checkpoint_every == 0:
            began = time.monotonic()
            self.at_checkpoint(step, model)
            self._clock += time.monotonic() - began  # evaluating is not training throughput
        if step < state.max_steps and self.job.should_stop():
            self.stopped = True
            control.should_training_stop = True
        return control

    def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kwargs: Any) -> None:
        metrics = finite_numbers(logs or {})
        step = state.global_step
        now = time.monotonic()
        per_step = self.samples_per_step * self.world_size
        if metrics:
            metrics["samples"] = step * per_step
        if step > self._last_step and now > self._clock:
            metrics["samples_per_second"] = (step - self._last_step) * per_step / (now - self._clock)
            self._clock, self._last_step = now, step
        if metrics:
            self.job.on_metrics(step, metrics)
