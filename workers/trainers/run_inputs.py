"""What every trainer does first: check the params, prepare the process, and insist on its inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.core.errors import ValidationFailed
from workers.trainers.environment import go_offline, library_versions, seed_everything
from workers.trainers.param_names import DEFAULT_SEED
from workers.trainers.spec import TrainJob, validate_params


def start(job: TrainJob) -> dict[str, Any]:
    """The run's checked params; the process offline and seeded."""
    params = validate_params(job.kind, job.params)
    go_offline()
    seed_everything(int(params.get("seed", DEFAULT_SEED)))
    return params


def required_folder(path: Path | None, role: str, kind: str) -> Path:
    if path is None or not path.is_dir():
        raise ValidationFailed(
            f"a {kind} run needs inputs.{role} as a model folder", errors=[{"loc": ["inputs", role], "msg": "required"}]
        )
    return path


def provenance(kind: str, params: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """What every output of a run carries: its kind, params, effective configuration and library versions."""
    return {"kind": kind, "params": params, "config": config, "library_versions": library_versions()}
