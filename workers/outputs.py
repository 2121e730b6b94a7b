"""What a run registers: its output folders become blobs and records, with lineage to its inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import select

from app.access.models import Principal, Project
from app.blobs import service as blobs_service
from app.kinds.registry import KINDS
from app.records import service as records_service
from app.runs.models import Run
from app.runs.service import add_event
from app.state import AppState
from app.storage.base import CHUNK, BlobInfo


def upload_folder(state: AppState, folder: Path) -> list[tuple[str, BlobInfo]]:
    """Every file under `folder` (relative POSIX path, sorted) stored as a blob."""
    stored = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        writer = state.blobs.writer()
        try:
            with path.open("rb") as fh:
                while chunk := fh.read(CHUNK):
                    writer.write(chunk)
            info = writer.commit()
        except BaseException:
            writer.abort()
            raise
        stored.append((path.relative_to(folder).as_posix(), info))
    return stored


def register_output(
    state: AppState,
    run: Run,
    collection_kind: str,
    body: dict[str, Any],
    files: list[tuple[str, BlobInfo]],
    key: str,
    *,
    cited: list[BlobInfo] | None = None,
) -> str:
    """Register one output in one transaction with the run's bookkeeping. `key` names the output within
    the run (`final`, `step-50`): a retried run finds it in `run.outputs_keys` and does not register twice.
    `files` become the record's `spec.files`; `cited` are other blobs the body names (an evaluation's
    evidence): both are recorded as uploaded by the run's creator, whose right to read them the record
    needs."""
    uow = state.unit_of_work(request_id=f"run:{run.id}")
    try:
        session = uow.session
        current = session.execute(select(Run).where(Run.id == run.id).with_for_update()).scalar_one()
        done = dict((current.config or {}).get("output_keys", {}))
        if key in done:
            uow.rollback()
            return str(done[key])
        principal = session.execute(select(Principal).where(Principal.name == run.created_by)).scalar_one()
        for info in [*(info for _, info in files), *(cited or [])]:
            blobs_service.record_upload(uow, principal, info)
        if files:
            body.setdefault("spec", {})["files"] = [{"path": p, "digest": i.digest, "size": i.size} for p, i in files]
        project_name = session.execute(select(Project.name).where(Project.id == run.project_id)).scalar_one()
        registration = records_service.register(
            uow,
            project_id=run.project_id,
            project_name=project_name,
            actor=run.created_by,
            kind=KINDS[collection_kind],
            body=body,
            store=state.blobs,
        )
        record_id = registration.record.id
        current.outputs = [*current.outputs, record_id]
        current.config = {**(current.config or {}), "output_keys": {**done, key: record_id}}
        add_event(session, current, "log", {"registered": record_id, "kind": collection_kind, "key": key})
        uow.commit()
        return record_id
    finally:
        uow.close()
