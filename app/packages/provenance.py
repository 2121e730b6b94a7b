"""SLSA provenance v1 (https://slsa.dev/spec/v1.0/provenance) for each training run in a package.

A run the registry executed is described from its row: the pinned inputs (record ids and the digests
they had when the run was queued) are the `resolvedDependencies`, its parameters the
`externalParameters`, and its outputs in the package the subjects. A checkpoint registered by hand
(trained elsewhere) is one training run too, declared by its registrant: its parents are the
dependencies, and the build type says that the registry did not execute it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from app.core.digests import hex_of
from app.packages.gather import Closure, run_id_of
from app.records.models import Record
from app.runs.models import Run

BUILD_TYPE_RUN = "https://rlhf-registry.dev/buildtypes/training-run/v1"
BUILD_TYPE_DECLARED = "https://rlhf-registry.dev/buildtypes/declared-training/v1"
BUILDER_WORKER = "https://rlhf-registry.dev/builders/worker/v1"
BUILDER_DECLARED = "https://rlhf-registry.dev/builders/declared-by-registrant/v1"
TRAINED_KINDS = ("reward_checkpoint", "policy_checkpoint")


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


def _library_versions(outputs: list[Record]) -> dict[str, Any]:
    for record in outputs:
        for carrier in (record.spec.get("metadata") or {}, (record.spec.get("metrics") or {}).get("provenance") or {}):
            if isinstance(carrier, dict) and carrier.get("library_versions"):
                return dict(carrier["library_versions"])
    return {}


def _run_statement(closure: Closure, run: Run, outputs: list[Record]) -> dict[str, Any]:
    dependencies: list[dict[str, Any]] = []
    for role, pinned in sorted(run.inputs.items()):
        if isinstance(pinned, dict):
            record = closure.records.get(str(pinned["id"]))
            if record is not None:
                dependencies += record_descriptors(record, closure.project, {"role": role})
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
    return {
        "buildDefinition": {
            "buildType": BUILD_TYPE_RUN,
            "externalParameters": {"kind": run.kind, "params": run.params, "output_name": run.output_name},
            "internalParameters": {
                "library_versions": _library_versions(outputs),
                "attempt": run.attempt,
                "max_attempts": run.max_attempts,
            },
            "resolvedDependencies": dependencies,
        },
        "runDetails": {
            "builder": {"id": BUILDER_WORKER},
            "metadata": _run_metadata(f"run:{run.id}", run.started_at, run.finished_at),
        },
    }


def _declared_statement(closure: Closure, record: Record) -> dict[str, Any]:
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
                "library_versions": _library_versions([record]),
            },
            "resolvedDependencies": dependencies,
        },
        "runDetails": {
            "builder": {"id": BUILDER_DECLARED},
            "metadata": _run_metadata(f"record:{record.id}", None, record.created_at),
        },
    }


def provenance_statements(closure: Closure) -> list[tuple[str, list[dict[str, Any]], dict[str, Any]]]:
    """(archive path, subjects, SLSA predicate) per training run behind the package's checkpoints."""
    by_run: dict[str, list[Record]] = {}
    declared: list[Record] = []
    for kind in TRAINED_KINDS:
        for record in closure.of_kind(kind):
            run_id = run_id_of(record)
            if run_id is not None and run_id in closure.runs:
                by_run.setdefault(run_id, []).append(record)
            else:
                declared.append(record)
    out: list[tuple[str, list[dict[str, Any]], dict[str, Any]]] = []
    for run_id, outputs in sorted(by_run.items()):
        subjects = [d for record in outputs for d in record_descriptors(record, closure.project)]
        out.append((f"provenance/run-{run_id}.json", subjects, _run_statement(closure, closure.runs[run_id], outputs)))
    for record in declared:
        subjects = record_descriptors(record, closure.project)
        out.append((f"provenance/record-{record.id}.json", subjects, _declared_statement(closure, record)))
    return out
