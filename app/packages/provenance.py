"""SLSA provenance v1 (https://slsa.dev/spec/v1.0/provenance) for each training run in a package.

A run the registry executed, or an external run it pinned and that reported into it, is described from its
row (an external run's builder is the one its request named, its build type says that the registry did not
execute it, and `internalParameters.executed_by_registry` is false): the pinned inputs (record ids and the digests
they had when the run was queued) are the `resolvedDependencies`, its parameters the
`externalParameters`, and its outputs in the package the subjects. A checkpoint registered by hand
(trained elsewhere) is one training run too, declared by its registrant: its parents are the
dependencies, and the build type says that the registry did not execute it.

Both list the library versions the run trained with (`internalParameters.library_versions`: Python and
the training stack, as `workers.trainers.environment` records them): from the outputs' records, where
the worker writes them (`spec.metadata`, or `spec.metrics.provenance` on final policy checkpoints of
earlier registrations), else from a checkpoint folder's own `training_config.json`, which the worker
writes into every folder it saves; stored records are read as they are, never rewritten."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from app.core.digests import hex_of
from app.kinds.registry import kinds_where
from app.packages.gather import Closure, run_id_of
from app.records.models import Record
from app.runs.models import Run
from app.storage.base import BlobStore

BUILD_TYPE_RUN = "https://rlhf-registry.dev/buildtypes/training-run/v1"
BUILD_TYPE_DECLARED = "https://rlhf-registry.dev/buildtypes/declared-training/v1"
BUILDER_WORKER = "https://rlhf-registry.dev/builders/worker/v1"
BUILDER_DECLARED = "https://rlhf-registry.dev/builders/declared-by-registrant/v1"
# an external run (app.runs.external): pinned and reported here, trained by the builder its request named
BUILD_TYPE_EXTERNAL = "https://rlhf-registry.dev/buildtypes/external-training-run/v1"
# the file the worker writes into every model folder it saves (workers.trainers.model_folders)
FOLDER_PROVENANCE = "files/training_config.json"
# read whole to find the library versions; the worker's file is a few kilobytes
MAX_FOLDER_PROVENANCE_BYTES = 1024 * 1024


def _stamp(value: datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


def _run_metadata(invocation_id: str, started: datetime | None, finished: datetime | None) -> dict[str, str]:
    """SLSA `runDetails.metadata`: a time that is not known is left out (SLSA v1 wants an RFC 3339
    timestamp or no field, never null)."""
    metadata = {"invocationId": invocation_id}
    if started is not None:
        metadata["startedOn"] = _stamp(started)
    if finished is not None:
        metadata["finishedOn"] = _stamp(finished)
    return metadata


def record_descriptors(record: Record, project: str, annotations: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """A record as SLSA resource descriptors: the record itself (its registry digest covers its content
    and its blobs' digests) and each of its blobs by its own sha256."""
    described: list[dict[str, Any]] = [
        {
            "name": f"record:{record.id}",
            "uri": f"rlhf-registry:{project}/{record.kind}/{record.name}/{record.version}",
            "digest": {"sha256": hex_of(record.digest)},
            "annotations": {"kind": record.kind, "name": record.name, "version": record.version, **(annotations or {})},
        }
    ]
    described += [
        {"name": f"record:{record.id}/{blob['path']}", "digest": {"sha256": hex_of(blob["digest"])}}
        for blob in record.blobs
    ]
    return described


def _versions_in(carrier: Any) -> dict[str, str]:
    """`carrier["library_versions"]` when it is a map of names to version strings, else nothing."""
    found = carrier.get("library_versions") if isinstance(carrier, dict) else None
    if isinstance(found, dict) and found and all(isinstance(k, str) and isinstance(v, str) for k, v in found.items()):
        return dict(found)
    return {}


def _folder_versions(record: Record, store: BlobStore) -> dict[str, str]:
    """The library versions in the record's `training_config.json`, if it holds one the store can give."""
    blob = next((b for b in record.blobs if b["path"] == FOLDER_PROVENANCE), None)
    if blob is None or int(blob.get("size") or 0) > MAX_FOLDER_PROVENANCE_BYTES:
        return {}
    try:
        return _versions_in(json.loads(b"".join(store.iter_bytes(str(blob["digest"])))))
    except (FileNotFoundError, ValueError, RecursionError):
        return {}


def library_versions_of(outputs: list[Record], store: BlobStore) -> dict[str, str]:
    """The library versions a run's outputs recorded (see the module's docstring for where)."""
    for record in outputs:
        spec = record.spec
        for carrier in (spec.get("metadata"), (spec.get("metrics") or {}).get("provenance")):
            found = _versions_in(carrier)
            if found:
                return found
    for record in outputs:
        found = _folder_versions(record, store)
        if found:
            return found
    return {}


def _pinned_inputs(inputs: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """A run's inputs by role; a `campaign` run's `policy_run` stands for the checkpoints and the reference
    it pinned, each a record input of its own."""
    found: list[tuple[str, Any]] = []
    for role, pinned in sorted(inputs.items()):
        if isinstance(pinned, dict) and "digest" not in pinned and "checkpoints" in pinned:
            found += [(f"{role}.checkpoints", c) for c in pinned["checkpoints"]]
            found += [(f"{role}.reference", pinned["reference"])] if pinned.get("reference") else []
        else:
            found.append((role, pinned))
    return found


def run_statement(
    project: str, records: Mapping[str, Record], run: Run, outputs: list[Record], store: BlobStore
) -> dict[str, Any]:
    """The SLSA predicate of `run` (which produced `outputs`); `records` are the records at hand by id
    (a package's closure), the inputs among them described with their blobs, the others by their pinned
    digest only."""
    dependencies: list[dict[str, Any]] = []
    for role, pinned in _pinned_inputs(run.inputs):
        if isinstance(pinned, dict):
            record = records.get(str(pinned["id"]))
            if record is not None:
                dependencies += record_descriptors(record, project, {"role": role})
            else:
                dependencies.append(
                    {
                        "name": f"record:{pinned['id']}",
                        "digest": {"sha256": hex_of(str(pinned["digest"]))},
                        "annotations": {"role": role},
                    }
                )
        elif isinstance(pinned, str):
            dependencies.append({"name": role, "digest": {"sha256": hex_of(pinned)}})
    external = run.kind == "external"
    builder = run.params.get("builder") if external else None
    internal: dict[str, Any] = {
        "library_versions": library_versions_of(outputs, store),
        "attempt": run.attempt,
        "max_attempts": run.max_attempts,
    }
    if external:
        internal["executed_by_registry"] = False
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE_EXTERNAL if external else BUILD_TYPE_RUN,
            "externalParameters": {"kind": run.kind, "params": run.params, "output_name": run.output_name},
            "internalParameters": internal,
            "resolvedDependencies": dependencies,
        },
        "runDetails": {
            "builder": dict(builder) if isinstance(builder, dict) else {"id": BUILDER_WORKER},
            "metadata": _run_metadata(f"run:{run.id}", run.started_at, run.finished_at),
        },
    }


def _declared_statement(closure: Closure, record: Record, store: BlobStore) -> dict[str, Any]:
    dependencies: list[dict[str, Any]] = []
    for parent_ref in record.parents:
        parent = closure.records[parent_ref["id"]]
        dependencies += record_descriptors(parent, closure.project, {"role": parent_ref["role"]})
    spec = record.spec
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE_DECLARED,
            "externalParameters": {
                "algorithm": spec.get("algorithm", "reward_model" if record.kind == "reward_checkpoint" else None),
                "hyperparameters": spec.get("hyperparameters") or {},
                "kl_coefficient": spec.get("kl_coefficient"),
                "step": spec.get("step"),
            },
            "internalParameters": {
                "declared_run_id": spec.get("run_id"),
                "library_versions": library_versions_of([record], store),
            },
            "resolvedDependencies": dependencies,
        },
        "runDetails": {
            "builder": {"id": BUILDER_DECLARED},
            "metadata": _run_metadata(f"record:{record.id}", None, record.created_at),
        },
    }


def provenance_statements(closure: Closure, store: BlobStore) -> list[tuple[str, list[dict[str, Any]], dict[str, Any]]]:
    """(archive path, subjects, SLSA predicate) per training run behind the package's checkpoints; `store`
    holds the checkpoints' files, read for library versions their records do not list."""
    by_run: dict[str, list[Record]] = {}
    declared: list[Record] = []
    for kind in kinds_where(trained=True):
        for record in closure.of_kind(kind):
            run_id = run_id_of(record)
            if run_id is not None and run_id in closure.runs:
                by_run.setdefault(run_id, []).append(record)
            else:
                declared.append(record)
    out: list[tuple[str, list[dict[str, Any]], dict[str, Any]]] = []
    for run_id, outputs in sorted(by_run.items()):
        subjects = [d for record in outputs for d in record_descriptors(record, closure.project)]
        predicate = run_statement(closure.project, closure.records, closure.runs[run_id], outputs, store)
        out.append((f"provenance/run-{run_id}.json", subjects, predicate))
    for record in declared:
        subjects = record_descriptors(record, closure.project)
        out.append((f"provenance/record-{record.id}.json", subjects, _declared_statement(closure, record, store)))
    return out
