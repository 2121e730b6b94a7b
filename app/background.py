"""The deployment's periodic duties and the election that gives them to one process.

Every API process and every Celery worker campaigns with `campaign(state)` on the same lock
(`app.core.election`): whichever holds it runs all of the duties below, the others stand by, so each
duty runs in exactly one process of the deployment at a time, an API process or a worker alike. A
deployment with workers but no API process up keeps reaping lost runs, re-sending queued ones and
integrating audit events."""

from __future__ import annotations

from app.audit.sequencer import Sequencer
from app.blobs.sweep import BlobSweeper
from app.core.election import Election, Loop, election_lock
from app.runs.outbox import Outbox
from app.runs.reaper import Reaper
from app.state import AppState


def duties(state: AppState) -> list[Loop]:
    """Fresh threads for every periodic duty: the run lease reaper, the run outbox, the audit sequencer
    and (unless switched off) the blob sweep."""
    settings = state.settings
    loops: list[Loop] = [
        Reaper(state),
        Outbox(state),
        Sequencer(state.sessions, merge_delay_seconds=settings.audit_merge_delay_seconds),
    ]
    if settings.blob_gc_interval_seconds > 0:
        loops.append(BlobSweeper(state))
    return loops


def campaign(state: AppState) -> Election:
    """Start campaigning for the duties of the deployment `state` belongs to; `stop()` the election
    to stop them (and release the lock) when the process shuts down."""
    election = Election(election_lock(state.sessions.engine, state.settings.database_url), lambda: duties(state))
    election.start()
    return election
