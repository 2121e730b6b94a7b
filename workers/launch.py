"""Training a run on several devices: `accelerate launch` of `workers.trainers.ranked`, one process per
device, in a process group of its own, with the worker's callbacks fed from rank 0's channel.

The generated accelerate config says `distributed_type: MULTI_GPU` on GPUs and on CPUs alike: on a machine
without CUDA the processes run DDP over gloo, the same code path as on GPUs (`--cpu` would start one
process only). Port 0 lets the rendezvous store take a free port. The group is killed, every process of
it, when the run is cancelled, when its lease is lost, when it outlives its timeout, and when the worker
fails to register what rank 0 reported.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.core.errors import AppError, ValidationFailed
from workers.trainers.environment import library_versions
from workers.trainers.ranked import result_of, write_job
from workers.trainers.spec import TrainJob, TrainResult

log = logging.getLogger("rlhf_registry.worker")

POLL_SECONDS = 0.25
GRACE_SECONDS = 10.0


class RankFailed(AppError):
    """What a training process reported when it failed (its own code and words), or how it ended."""

    code = "training_failed"
    title = "Training failed"

    def __init__(self, detail: str, code: str = "training_failed") -> None:
        super().__init__(detail)
        self.code = code


class LaunchTimedOut(AppError):
    status = 504
    code = "run_timed_out"
    title = "The run took longer than allowed"


def accelerate_config(devices: int) -> str:
    """One machine, `devices` processes; the TRL config decides precision and device (`use_cpu`)."""
    return "\n".join(
        [
            "compute_environment: LOCAL_MACHINE",
            "distributed_type: MULTI_GPU",
            "num_machines: 1",
            "machine_rank: 0",
            f"num_processes: {devices}",
            "main_process_port: 0",
            "rdzv_backend: static",
            "same_network: true",
            "gpu_ids: all",
            "mixed_precision: 'no'",
            "use_cpu: false",
            "",
        ]
    )


def check_devices(devices: int) -> None:
    """A worker with GPUs trains one process per GPU, so it must have as many; without GPUs the processes
    share the CPU."""
    import torch

    if torch.cuda.is_available() and torch.cuda.device_count() < devices:
        raise ValidationFailed(
            f"the run asks for {devices} devices and this worker has {torch.cuda.device_count()} GPUs",
            errors=[{"loc": ["params", "devices"], "msg": "more than this worker's GPUs"}],
        )


class Channel:
    """The JSON lines rank 0 appends, read as they come (a line not yet finished waits for its end)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.offset = 0
        self.partial = b""

    def new_events(self) -> list[dict[str, Any]]:
        with self.path.open("rb") as fh:
            fh.seek(self.offset)
            data = fh.read()
        self.offset += len(data)
        *lines, self.partial = (self.partial + data).split(b"\n")
        return [json.loads(line) for line in lines if line.strip()]


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to every process of the group, SIGKILL to what is left after a grace period."""
    for sig, wait_s in ((signal.SIGTERM, GRACE_SECONDS), (signal.SIGKILL, GRACE_SECONDS)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and group_alive(process):
            time.sleep(0.1)
        if not group_alive(process):
            break
    process.wait()


def group_alive(process: subprocess.Popen[bytes]) -> bool:
    process.poll()  # reaps the launcher itself once it has exited
    try:
        os.killpg(process.pid, 0)
    except ProcessLookupError:
        return False
    return True


def train_on_devices(
    job: TrainJob,
    devices: int,
    workdir: Path,
    timeout_s: float,
    on_log: Callable[[dict[str, Any]], None] = lambda data: None,
) -> TrainResult:
    """Train `job` on `devices` processes and return rank 0's result. Rank 0's metrics and checkpoints go
    to `job.on_metrics` and `job.on_checkpoint` as they come; `job.should_stop()` stops every process (the
    result is then `stopped`). Each process's final weights must agree, or the run fails."""
    check_devices(devices)
    workdir.mkdir(parents=True, exist_ok=True)
    channel = workdir / "channel.jsonl"
    channel.touch()
    write_job(job, channel, workdir / "job.json")
    (workdir / "accelerate.yaml").write_text(accelerate_config(devices), encoding="utf-8")
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(workdir / "accelerate.yaml"),
        "--module", "workers.trainers.ranked", str(workdir / "job.json"),
    ]  # fmt: skip
    with (workdir / "processes.log").open("wb") as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)
    on_log({"message": f"training on {devices} devices", "devices": devices, "process_group": process.pid})
    events = _follow(process, Channel(channel), job, time.monotonic() + timeout_s, timeout_s)
    if events is None:
        return TrainResult(None, {}, {}, library_versions(), params=job.params, stopped=True)
    return _outcome(process, events, devices, workdir, on_log)


def _follow(
    process: subprocess.Popen[bytes], channel: Channel, job: TrainJob, deadline: float, timeout_s: float
) -> list[dict[str, Any]] | None:
    """Hand rank 0's reports to the job's callbacks until the processes end; None when stopped early."""
    seen: list[dict[str, Any]] = []
    try:
        while True:
            ended = process.poll() is not None  # before reading, so no line written before the end is missed
            for event in channel.new_events():
                seen.append(event)
                if event["type"] == "metrics":
                    job.on_metrics(event["step"], event["metrics"])
                elif event["type"] == "checkpoint":
                    job.on_checkpoint(event["step"], Path(event["folder"]), event["metrics"])
            if ended:
                return seen
            if job.should_stop():
                stop_group(process)
                return None
            if time.monotonic() > deadline:
                raise LaunchTimedOut(
                    f"training took longer than {timeout_s:g} s (setting RLHF_REGISTRY_RUN_LAUNCH_TIMEOUT_SECONDS); "
                    "every process was stopped"
                )
            time.sleep(POLL_SECONDS)
    except BaseException:
        stop_group(process)
        raise


def _outcome(
    process: subprocess.Popen[bytes],
    events: list[dict[str, Any]],
    devices: int,
    workdir: Path,
    on_log: Callable[[dict[str, Any]], None],
) -> TrainResult:
    stop_group(process)  # the launcher has ended; a process it left behind goes with it
    errors = [e for e in events if e["type"] == "error"]
    if process.returncode != 0 or errors:
        tail = (workdir / "processes.log").read_text(encoding="utf-8", errors="replace")[-4000:]
        log.error("training on %d devices ended with status %s:\n%s", devices, process.returncode, tail)
        if errors:
            first = min(errors, key=lambda e: e["rank"])
            raise RankFailed(first["detail"], first["code"])
        raise RankFailed(f"the training processes ended with status {process.returncode} (see the worker's log)")
    trained = sorted((e for e in events if e["type"] == "trained"), key=lambda e: e["rank"])
    ranks = [{"rank": e["rank"], "step": e["step"], "weights": e["weights"]} for e in trained]
    on_log({"message": f"{len(ranks)} processes trained", "ranks": ranks})
    if len(ranks) != devices or len({r["weights"] for r in ranks}) != 1:
        raise RankFailed(f"the {devices} processes did not end with the same weights: {ranks}")
    result = next((e for e in events if e["type"] == "result"), None)
    if result is None:
        raise RankFailed("the first process ended without reporting its result")
    return result_of(result)
