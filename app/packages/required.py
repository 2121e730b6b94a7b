"""The fields a handoff package cannot do without (DESIGN.md: "a required field that is missing fails
the render: an audited package never prints a placeholder"), as each kind declares them
(`KindDefinition.package_fields` and `package_figures`).

Checked over the gathered closure before anything is rendered, so that the error names every missing
field at once, by record and path; the templates render with `StrictUndefined` as a second line."""

from __future__ import annotations

from typing import Any

from app.core.errors import ValidationFailed
from app.kinds.registry import KINDS
from app.packages.gather import Closure
from app.records.models import Record


def value_at(record: Record, path: str) -> Any:
    value: Any = {"spec": record.spec, "derived": record.derived}
    for part in path.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    return isinstance(value, list | dict) and not value


def _label(record: Record) -> str:
    return f"{record.kind} {record.name} v{record.version}"


def missing_fields(closure: Closure) -> list[tuple[Record, str, str]]:
    """(record, path, why) for every required field that holds nothing: the fields and figures each kind
    declares (`package_fields`, `package_figures`)."""
    missing: list[tuple[Record, str, str]] = []
    for record in closure.ordered():
        kind = KINDS[record.kind]
        for path in kind.package_fields:
            if is_missing(value_at(record, path)):
                missing.append((record, path, "required for the handoff package"))
        for figure in kind.package_figures:
            if all(not isinstance(value_at(record, p), int | float) for p in figure.paths):
                missing.append((record, figure.paths[0], f"{figure.what} ({' or '.join(figure.paths)}) is required"))
    for evaluation in closure.parents(closure.deployment, "evaluations"):
        if is_missing(evaluation.spec.get("summary")) and not evaluation.spec.get("evidence_blob"):
            missing.append((evaluation, "spec.summary", "deployment evidence needs a summary or an evidence_blob"))
    return missing


def check_required(closure: Closure) -> None:
    """Raise `validation_failed` naming every missing field (record, then path)."""
    missing = missing_fields(closure)
    if not missing:
        return
    raise ValidationFailed(
        "the handoff package cannot be rendered; missing required field(s): "
        + "; ".join(f"{_label(r)}: {path}" for r, path, _ in missing),
        errors=[
            {"loc": [record.kind, record.name, record.version, *path.split(".")], "msg": why}
            for record, path, why in missing
        ],
        extra={"missing": [{"record": r.id, "field": path} for r, path, _ in missing]},
    )
