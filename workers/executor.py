"""Execute one run on this worker: claim it under a lease, download its inputs by digest (verified),
train with TRL (or, for the runs that evaluate, generate responses or judge pairs: workers.evaluation_runs),
register what it produced with lineage, and record the outcome. Checkpoints are registered only once
their folder is complete and uploaded, each in one transaction.

A failed run's error is `{code, detail}`: which step failed and why, in words. Its traceback goes to the
worker's log only: the error is shown by the API and the web pages, which never show a stack trace."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from app.core.errors import AppError
from app.kinds.prompt_set import prompts_of
from app.lineage.service import load_graph
from app.records.models import Record
from app.runs import leases
from app.runs.models import Run
from app.runs.service import add_event, finish, project_name_of
from app.state import AppState
from workers import outputs
from workers.trainers.environment import library_versions
from workers.trainers.model_folders import PROVENANCE_FILE, read_provenance

if TYPE_CHECKING:
    from workers.trainers.spec import TrainResult

log = logging.getLogger("rlhf_registry.worker")


class InputCorrupted(AppError):
    status = 409
    code = "digest_mismatch"
    title = "Input does not match its digest"


class StepFailed(Exception):
    """A run's step failed; carries the step, in words, and the error that ended it."""

    def __init__(self, step: str, cause: Exception) -> None:
        super().__init__(f"{step} failed: {cause}")
        self.step = step
        self.cause = cause


@contextmanager
def during(what: str) -> Iterator[None]:
    """Name the step a failure inside belongs to (the innermost `during` names it)."""
    try:
        yield
    except StepFailed:
        raise
    except Exception as exc:
        raise StepFailed(what, exc) from exc


def failure(exc: Exception) -> dict[str, str]:
    """The run's error: a code and what failed, in words, without a traceback."""
    what, cause = (exc.step, exc.cause) if isinstance(exc, StepFailed) else ("the run", exc)
    code = cause.code if isinstance(cause, AppError) else "training_failed"
    reason = cause.detail if isinstance(cause, AppError) else f"{type(cause).__name__}: {cause}"
    # some libraries quote a subprocess's traceback in their message: keep the words before it
    reason = reason.split("Traceback (most recent call last)")[0].strip() or type(cause).__name__
    return {"code": code, "detail": f"{what} failed: {reason}"[:2000]}


class Heartbeat(threading.Thread):
    """Renews the run's lease every third of its length; notes cancellation and a lost lease."""

    def __init__(self, state: AppState, run_id: str, worker: str) -> None:
        super().__init__(daemon=True, name=f"heartbeat-{run_id[:8]}")
        self.state, self.run_id, self.worker = state, run_id, worker
        self.lease_s = state.settings.run_lease_seconds
        self.stopped = threading.Event()
        self.cancel_requested = False
        self.lost = False

    def run(self) -> None:
        while not self.stopped.wait(self.lease_s / 3):
            try:
                ours, cancel = leases.renew(self.state, self.run_id, self.worker, self.lease_s)
            except Exception:
                log.exception("lease renewal failed")
                continue
            self.lost = not ours
            self.cancel_requested = cancel
            if self.lost:
                return

    def should_stop(self) -> bool:
        return self.cancel_requested or self.lost


def record_event(state: AppState, run_id: str, type_: str, data: dict[str, Any]) -> None:
    """Append one event to the run, in its own transaction (the API streams it at once)."""
    uow = state.unit_of_work(request_id=f"run:{run_id}")
    try:
        run = uow.session.get(Run, run_id, with_for_update=True)
        assert run is not None
        add_event(uow.session, run, type_, data)
        uow.commit()
    finally:
        uow.close()


def download(state: AppState, digest: str, dest: Path) -> None:
    """Copy a blob to `dest`, refusing it unless its bytes hash to `digest`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    hasher = hashlib.sha256()
    with dest.open("wb") as fh:
        for chunk in state.blobs.iter_bytes(digest):
            hasher.update(chunk)
            fh.write(chunk)
    if "sha256:" + hasher.hexdigest() != digest:
        raise InputCorrupted(f"the stored bytes of {digest} do not hash to it; the input was not used")


def download_folder(state: AppState, record: Record, dest: Path) -> Path:
    """A model record's folder under `dest`, each file checked against its digest."""
    for entry in record.spec.get("files") or []:
        download(state, entry["digest"], dest / entry["path"])
    return dest


def _adversarial_prompts(state: AppState, dataset: Record) -> list[str]:
    with state.sessions.read() as session:
        graph, reached = load_graph(session, [dataset.id], "upstream")
        ids = [i for i in reached if graph.nodes[i].kind == "prompt_set"]
        prompt_sets = session.scalars(select(Record).where(Record.id.in_(ids)).order_by(Record.id)).all()
        texts: list[str] = []
        for prompt_set in prompt_sets:
            table = prompts_of(prompt_set, state.blobs)
            texts += [
                t
                for t, s in zip(table["text"].to_pylist(), table["source"].to_pylist(), strict=True)
                if s == "adversarial"
            ]
    return texts


def _inputs(state: AppState, run: Run) -> dict[str, Record]:
    with state.sessions.read() as session:
        return {
            role: session.get(Record, ref["id"])  # type: ignore[misc]
            for role, ref in run.inputs.items()
            if isinstance(ref, dict)
        }


def execute(state: AppState, run_id: str, worker: str) -> None:
    run = leases.claim(state, run_id, worker, state.settings.run_lease_seconds)
    if run is None:
        log.info("run %s is not queued any more; skipped", run_id)
        return
    heartbeat = Heartbeat(state, run_id, worker)
    heartbeat.start()
    try:
        with TemporaryDirectory(prefix=f"run-{run_id[:8]}-") as tmp:
            status = _train_and_register(state, run, Path(tmp), heartbeat)
        _end(state, run_id, worker, status, None)
    except Exception as exc:
        log.exception("run %s failed", run_id)  # the traceback stays in the worker's log
        _end(state, run_id, worker, "failed", failure(exc))
    finally:
        heartbeat.stopped.set()


def _end(state: AppState, run_id: str, worker: str, status: str, error: dict[str, Any] | None) -> None:
    uow = state.unit_of_work(request_id=f"run:{run_id}")
    try:
        run = uow.session.get(Run, run_id, with_for_update=True)
        assert run is not None
        if run.lease_owner != worker or run.status != "running":
            uow.rollback()  # the lease was lost: the reaper decided this run's fate already
            return
        finish(uow.session, run, status, error)
        uow.audit(
            actor=run.created_by,
            action=f"run.{status}",
            target=f"run:{run.id}",
            project=project_name_of(uow.session, run),
            payload={"outputs": run.outputs, "error": error},
        )
        uow.commit()
    finally:
        uow.close()


def _train_and_register(state: AppState, run: Run, tmp: Path, heartbeat: Heartbeat) -> str:
    from workers import evaluation_runs  # imports this module: loaded once a run executes

    if run.kind in evaluation_runs.KINDS:  # nothing is trained: responses generated or pairs judged
        finished = evaluation_runs.execute(state, run, tmp, heartbeat.should_stop)
        if heartbeat.lost:
            return "failed"
        return "succeeded" if finished and not heartbeat.cancel_requested else "cancelled"
    return _train(state, run, tmp, heartbeat)


def _train(state: AppState, run: Run, tmp: Path, heartbeat: Heartbeat) -> str:
    from workers.launch import train_on_devices
    from workers.trainers.dispatch import run as train  # the training stack loads only where runs execute
    from workers.trainers.spec import TrainJob

    with during("downloading the run's inputs"):
        inputs = _inputs(state, run)
        # the training file the server derived: a preference dataset's pairs, or a demonstration set's rows
        dataset = inputs.get("dataset") or inputs.get("demonstrations")
        dataset_path = None
        if dataset is not None:
            dataset_path = tmp / "dataset.parquet"
            download(state, dataset.derived["files"][0]["digest"], dataset_path)
        base = inputs.get("base_model")
        reward = inputs.get("reward_checkpoint")
        outputs_path = None
        if run.kind == "score":
            outputs_path = tmp / "outputs.jsonl"
            download(state, run.inputs["outputs_blob"], outputs_path)
        base_dir = download_folder(state, base, tmp / "base") if base is not None else None
        reward_dir = download_folder(state, reward, tmp / "reward") if reward is not None else None
        adversarial = _adversarial_prompts(state, dataset) if dataset is not None else []

    def on_metrics(at: int, metrics: dict[str, Any]) -> None:
        record_event(state, run.id, "metrics", {"step": at, **metrics})

    def on_checkpoint(at: int, folder: Path, metrics: dict[str, Any]) -> None:
        with during(f"registering the checkpoint of step {at}"):
            _register_policy(state, run, inputs, folder, at, metrics, _folder_provenance(run, folder), f"step-{at}")

    job = TrainJob(
        kind=run.kind,
        params=run.params,
        output_dir=tmp / "output",
        dataset_path=dataset_path,
        base_model_dir=base_dir,
        reward_model_dir=reward_dir,
        adversarial_prompts=adversarial,
        outputs_path=outputs_path,
        on_metrics=on_metrics,
        on_checkpoint=on_checkpoint,
        should_stop=heartbeat.should_stop,
    )
    devices = int(run.params.get("devices", 1))
    with during(f"training ({run.kind})"):
        if devices > 1:
            result = train_on_devices(
                job,
                devices,
                tmp / "launch",
                state.settings.run_launch_timeout_seconds,
                on_log=lambda data: record_event(state, run.id, "log", data),
            )
        else:
            result = train(job)  # in this process: no launch to wait for
    if heartbeat.lost:
        return "failed"
    if result.stopped:
        return "cancelled"  # checkpoints emitted before the stop stay registered; no final output
    with during("registering the run's outputs"):
        _register_outputs(state, run, inputs, result)
    return "cancelled" if heartbeat.cancel_requested else "succeeded"


def _register_outputs(state: AppState, run: Run, inputs: dict[str, Record], result: TrainResult) -> None:
    dataset, base, reward = inputs.get("dataset"), inputs.get("base_model"), inputs.get("reward_checkpoint")
    provenance = {"config": result.config, "library_versions": result.library_versions, "run_id": run.id}
    if run.kind == "reward_model":
        assert dataset is not None and base is not None and result.output_dir is not None
        body = {
            "name": run.output_name,
            "datasets": [{"id": dataset.id}],
            "base_model": {"id": base.id},
            "spec": {
                "hyperparameters": result.params or run.params,
                "run_id": run.id,
                "metrics": result.metrics,
                "metadata": provenance,
            },
        }
        files = outputs.upload_folder(state, result.output_dir)
        outputs.register_output(state, run, "reward_checkpoint", body, files, "final")
    elif run.kind == "score":
        assert reward is not None and result.output_dir is not None
        evidence = outputs.upload_folder(state, result.output_dir)
        body = {
            "name": run.output_name,
            "target": {"id": reward.id},
            "spec": {
                "type": "reward_score",
                "summary": result.metrics,
                "evaluators": [f"run:{run.id}"],
                "evidence_blob": next(i.digest for p, i in evidence if p == "scores.jsonl"),
                "metadata": provenance,
            },
        }
        outputs.register_output(state, run, "evaluation", body, [], "final", cited=[info for _, info in evidence])
    elif result.output_dir is not None:
        step = int(result.metrics.get("step", 0))
        _register_policy(state, run, inputs, result.output_dir, step, result.metrics, provenance, f"step-{step}")


def _folder_provenance(run: Run, folder: Path) -> dict[str, Any]:
    """What a checkpoint's record says of the run that wrote it, taken from the folder's own
    `training_config.json`: every checkpoint of a series carries the run's configuration and library
    versions, not only the final model (which, saved at a checkpoint's step, is that checkpoint)."""
    written = read_provenance(folder) if (folder / PROVENANCE_FILE).exists() else {}
    return {
        "config": written.get("config") or {},
        "library_versions": written.get("library_versions") or library_versions(),
        "run_id": run.id,
    }


def effective_kl(run: Run, folder: Path) -> float | None:
    """The KL coefficient the trainer used: the run's own value, else the TRL default it recorded."""
    value = run.params.get("beta") if run.kind == "dpo" else run.params.get("kl_coefficient")
    if value is None:
        provenance = folder / "training_config.json"
        if provenance.exists():
            config = json.loads(provenance.read_text()).get("config", {})
            value = config.get("beta", config.get("kl_coef"))  # PPOConfig spells it kl_coef
    return None if value is None else float(value)


def _register_policy(
    state: AppState,
    run: Run,
    inputs: dict[str, Record],
    folder: Path,
    step: int,
    metrics: dict[str, Any],
    provenance: dict[str, Any],
    key: str,
) -> None:
    base, dataset, reward = inputs["base_model"], inputs.get("dataset"), inputs.get("reward_checkpoint")
    kl = effective_kl(run, folder)
    body: dict[str, Any] = {
        "name": run.output_name,
        "algorithm": run.kind,
        "reference_model": {"id": base.id},
        "spec": {
            "step": step,
            "kl_coefficient": kl,
            "hyperparameters": run.params,
            "run_id": run.id,
            "metrics": metrics,
            "metadata": provenance,
        },
    }
    if run.kind == "sft":
        body["demonstrations"] = {"id": inputs["demonstrations"].id}
    elif run.kind == "dpo":
        assert dataset is not None
        body["dataset"] = {"id": dataset.id}
    else:
        assert reward is not None
        body["reward_checkpoint"] = {"id": reward.id}
    outputs.register_output(state, run, "policy_checkpoint", body, outputs.upload_folder(state, folder), key)
