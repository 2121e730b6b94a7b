"""The offline verifier's check of one `provenance/*.json` file: a DSSE envelope, signed with the
package's key, around an in-toto Statement v1 whose predicate is SLSA provenance v1
(https://slsa.dev/spec/v1.0/provenance). What ties it to the records, the digests of the records it
names as resolved dependencies, is handed back, to be compared once every record is read."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from app.core.signing import key_id_of
from app.packages.dsse import SLSA_PROVENANCE_V1, EnvelopeError, open_envelope
from app.packages.package_reader import statement_too_dense


def _dependencies(statement: dict[str, Any]) -> list[dict[str, Any]]:
    """The SLSA predicate's resolvedDependencies; raises ValueError naming what is missing."""
    predicate = statement.get("predicate")
    if not isinstance(predicate, dict):
        raise ValueError("no predicate object")
    definition = predicate.get("buildDefinition")
    if not isinstance(definition, dict):
        raise ValueError("no buildDefinition object in the predicate")
    dependencies = definition.get("resolvedDependencies", [])
    if not isinstance(dependencies, list) or not all(isinstance(dep, dict) for dep in dependencies):
        raise ValueError("buildDefinition.resolvedDependencies is not a list of objects")
    return dependencies


def record_dependencies(
    path: str, data: bytes, key: Ed25519PublicKey, fail: Callable[[str], None]
) -> list[tuple[str, str | None]]:
    """Check the provenance file `path` (its content `data`), naming each failure through `fail`; the
    records it depends on, as (record id, the sha256 it lists for it)."""
    too_dense = statement_too_dense(data)
    if too_dense is not None:
        fail(f"provenance {path}: {too_dense}")
        return []
    try:
        opened = open_envelope(data, key)
    except EnvelopeError as exc:
        fail(f"provenance {path}: {exc}")
        return []
    if not opened.signature_ok:
        fail(f"signature of {path}: does not verify with key {key_id_of(key)}")
    if opened.statement.get("predicateType") != SLSA_PROVENANCE_V1:
        fail(f"provenance {path}: predicateType is not {SLSA_PROVENANCE_V1}")
        return []
    try:
        dependencies = _dependencies(opened.statement)
    except ValueError as exc:
        fail(f"provenance {path}: not SLSA provenance v1: {exc}")
        return []
    found: list[tuple[str, str | None]] = []
    for dep in dependencies:
        name = str(dep.get("name", ""))
        if name.startswith("record:") and "/" not in name:
            digest = dep.get("digest")
            listed = digest.get("sha256") if isinstance(digest, dict) else None
            found.append((name.removeprefix("record:"), listed if isinstance(listed, str) else None))
    return found
