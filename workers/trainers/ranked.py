"""`python -m workers.trainers.ranked <job.json>`: one process of a run trained on several devices, started
once per device by `accelerate launch` (workers/launch.py), which sets its rank in the environment.

Every process runs the kind's trainer (`dispatch.run`) on the same inputs, downloaded by the worker before
the launch; DDP averages the gradients, so all hold the same weights. The first process (rank 0) alone
saves and evaluates (the trainers check `is_world_process_zero`) and reports, as JSON lines appended to the
job's channel file, which the worker reads as they come:

- `{"type": "metrics", "step", "metrics"}` and `{"type": "checkpoint", "step", "folder", "metrics"}`;
- `{"type": "trained", "rank", "step", "weights"}` from every process: the SHA-256 of its final weights;
- `{"type": "result", ...}`: the `TrainResult`; or `{"type": "error", "rank", "code", "detail"}`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from app.core.errors import AppError
from workers.trainers.spec import TrainJob, TrainResult


def write_job(job: TrainJob, channel: Path, path: Path) -> None:
    """The job file of the ranks: the job's values (its callbacks stay with the worker) and the channel."""
    values: dict[str, Any] = {}
    paths: dict[str, str] = {}
    for field in dataclasses.fields(job):
        value = getattr(job, field.name)
        if isinstance(value, Path):
            paths[field.name] = str(value)
        elif not callable(value):
            values[field.name] = value
    path.write_text(json.dumps({"values": values, "paths": paths, "channel": str(channel)}), encoding="utf-8")


def read_job(path: Path) -> tuple[TrainJob, Path]:
    loaded = json.loads(path.read_text(encoding="utf-8"))
    fields: dict[str, Any] = {**loaded["values"], **{name: Path(value) for name, value in loaded["paths"].items()}}
    return TrainJob(**fields), Path(loaded["channel"])


def send(channel: Path, event: dict[str, Any]) -> None:
    """Append one line in one write, so lines of several processes never interleave."""
    fd = os.open(channel, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        os.write(fd, (json.dumps(event) + "\n").encode("utf-8"))
    finally:
        os.close(fd)


def weights_digest(model: Any) -> str:
    """SHA-256 over the model's state dict: each tensor's name, dtype, shape and bytes, in name order."""
    import torch

    model = getattr(model, "module", model)  # a DDP wrapper holds the model as `module`
    hasher = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        flat = tensor.detach().cpu().contiguous().reshape(-1)
        hasher.update(f"{name}:{flat.dtype}:{tuple(tensor.shape)}".encode())
        hasher.update(flat.view(torch.uint8).numpy().tobytes())
    return "sha256:" + hasher.hexdigest()


def result_event(result: TrainResult) -> dict[str, Any]:
    return {
        "type": "result",
        "output_dir": None if result.output_dir is None else str(result.output_dir),
        "metrics": result.metrics,
        "config": result.config,
        "library_versions": result.library_versions,
        "checkpoints": [[step, str(folder), metrics] for step, folder, metrics in result.checkpoints],
        "params": result.params,
        "kl_coefficient": result.kl_coefficient,
        "stopped": result.stopped,
    }


def result_of(event: dict[str, Any]) -> TrainResult:
    return TrainResult(
        output_dir=None if event["output_dir"] is None else Path(event["output_dir"]),
        metrics=event["metrics"],
        config=event["config"],
        library_versions=event["library_versions"],
        checkpoints=[(step, Path(folder), metrics) for step, folder, metrics in event["checkpoints"]],
        params=event["params"],
        kl_coefficient=event["kl_coefficient"],
        stopped=event["stopped"],
    )


def main(job_file: Path) -> int:
    from workers.trainers.dispatch import run

    job, channel = read_job(job_file)
    rank = int(os.environ.get("RANK", "0"))
    if rank == 0:
        job.on_metrics = lambda step, metrics: send(channel, {"type": "metrics", "step": step, "metrics": metrics})
        job.on_checkpoint = lambda step, folder, metrics: send(
            channel, {"type": "checkpoint", "step": step, "folder": str(folder), "metrics": metrics}
        )
    job.on_trained = lambda step, model: send(
        channel, {"type": "trained", "rank": rank, "step": step, "weights": weights_digest(model)}
    )
    try:
        result = run(job)
    except Exception as exc:
        code = exc.code if isinstance(exc, AppError) else "training_failed"
        detail = exc.detail if isinstance(exc, AppError) else f"{type(exc).__name__}: {exc}"
        send(channel, {"type": "error", "rank": rank, "code": code, "detail": detail})
        raise
    if rank == 0:
        send(channel, result_event(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1])))
