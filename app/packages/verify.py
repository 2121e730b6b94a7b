"""Offline verification of a handoff package archive: no database, no network, only the archive and a
public key (the archive's own `signing-key.pem`, or one the auditor pins).

Checks, each named when it fails:
0. form: the archive is read once, with a cap on the uncompressed bytes it may declare (zip bombs), and
   must be byte for byte the canonical zip of the files it holds (`app.packages.zip_form`);
1. signature: `manifest.dsse.json` is a DSSE envelope whose ed25519 signature over the DSSE v1
   pre-authentication encoding verifies with the key; its statement's predicateType is the handoff
   package predicate, and no subject name is listed twice;
2. digests: every file of the archive is a subject of the manifest with its sha256 (and every file
   subject is present); each `provenance/*.json` is itself a signed DSSE envelope around SLSA provenance;
3. records: each `records/<id>.json` re-hashes, by the registry's rule (sha256 of the RFC 8785 canonical
   JSON of kind, name, version, project, parents, spec, blobs, derived), to its own `digest` and to the
   manifest's `record:<id>` subject, and every record subject has its file;
4. lineage: the manifest's deployment is a `deployment` record of the archive, every parent any record
   names is in the archive, and the deployment reaches a criteria record through its policy checkpoint,
   the reward checkpoint or dataset, and the batches.

Malformed input of any kind becomes a named failure in the report, never an exception."""

from __future__ import annotations

import hashlib
import io
import json
import lzma
import zipfile
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from app.core.digests import digest_of, hex_of
from app.core.signing import key_fingerprint, key_id_of, load_public_key
from app.packages.archive import HANDOFF_PREDICATE, MANIFEST, PUBLIC_KEY
from app.packages.dsse import SLSA_PROVENANCE_V1, EnvelopeError, OpenedEnvelope, open_envelope
from app.packages.zip_form import check_form

RECORD_DIGEST_FIELDS = ("kind", "name", "version", "project", "parents", "spec", "blobs", "derived")
# the most uncompressed bytes an archive may declare, and the verifier will read, over all its entries
MAX_TOTAL_BYTES = 4 * 1024**3
# what reading a zip entry may raise: a broken stream or CRC, an encrypted entry (RuntimeError), an
# unsupported compression method (NotImplementedError)
_ENTRY_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    RuntimeError,
    NotImplementedError,
    ValueError,
)
_JSON_ERRORS = (ValueError, RecursionError)  # UnicodeDecodeError and rfc8785's errors are ValueErrors
_ENCRYPTED = 0x1


@dataclass
class Report:
    checked: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    # the key the signatures were checked against: its registry key id, the sha256 of its DER
    # SubjectPublicKeyInfo, and whether it came from the archive itself or was pinned by the caller
    key_id: str | None = None
    key_fingerprint: str | None = None
    key_source: str | None = None

    @property
    def ok(self) -> bool:
        return not self.failures

    def fail(self, message: str) -> None:
        self.failures.append(message)


def record_digest(record: dict[str, Any]) -> str:
    """The registry's digest of a record as the API returns it (app.records.service.register)."""
    return digest_of({key: record[key] for key in RECORD_DIGEST_FIELDS})


def _label(record: dict[str, Any]) -> str:
    return f"{record.get('kind')} {record.get('name')} v{record.get('version')} ({record.get('id')})"


def _read_entries(
    archive: zipfile.ZipFile, report: Report, max_total_bytes: int
) -> tuple[dict[str, bytes], set[str]] | None:
    """Every readable file entry's content by name (directory entries are left to the form check) and
    the names of the entries that could not be read (each failure named); None when the archive declares
    more than `max_total_bytes` uncompressed (nothing is read then)."""
    infos = archive.infolist()
    declared = sum(info.file_size for info in infos)
    if declared > max_total_bytes:
        report.fail(
            f"archive: its entries declare {declared} bytes uncompressed, over the limit of {max_total_bytes}"
            " (refused unread: a zip bomb?)"
        )
        return None
    for name, count in sorted(Counter(info.filename for info in infos).items()):
        if count > 1:
            # two entries under one name: tools disagree on which one a reader gets
            report.fail(f"archive: {name} appears more than once")
    files: dict[str, bytes] = {}
    unreadable: set[str] = set()
    for info in infos:
        if info.is_dir():
            continue
        if info.flag_bits & _ENCRYPTED:
            report.fail(f"digest of {info.filename}: the zip entry cannot be read (it is encrypted)")
            unreadable.add(info.filename)
            continue
        try:
            with archive.open(info) as member:
                data = member.read(info.file_size + 1)  # never more than the entry declares, checked above
        except _ENTRY_ERRORS as exc:
            # a changed byte inside the zip itself (the entry's CRC or compressed stream breaks), an
            # encrypted entry, or a compression method the verifier does not know
            report.fail(f"digest of {info.filename}: the zip entry cannot be read ({exc})")
            unreadable.add(info.filename)
            continue
        if len(data) != info.file_size:
            report.fail(f"digest of {info.filename}: the zip entry holds {len(data)} bytes, not {info.file_size}")
            unreadable.add(info.filename)
            continue
        files[info.filename] = data
    return files, unreadable


def _check_form(raw: bytes, archive: zipfile.ZipFile, files: dict[str, bytes], report: Report) -> None:
    checked, failure = check_form(raw, archive, files)
    if checked is not None:
        report.checked.append(checked)
    if failure is not None:
        report.fail(failure)


def _check_files(files: dict[str, bytes], unreadable: set[str], subjects: dict[str, str], report: Report) -> None:
    for path in sorted(files):
        if path == MANIFEST:
            continue
        expected = subjects.get(path)
        if expected is None:
            report.fail(f"digest of {path}: the file is not listed in the manifest")
        elif hashlib.sha256(files[path]).hexdigest() != expected:
            report.fail(f"digest of {path}: sha256 does not match the manifest")
    for name in sorted(subjects):
        if not name.startswith("record:") and name not in files and name not in unreadable:
            report.fail(f"missing file {name}: listed in the manifest but not in the archive")
    report.checked.append(f"{len(files) - 1} file digest(s)")


def _record_problem(record: Any) -> str | None:
    """What keeps `record` from being a registry record the checks below can use, if anything."""
    if not isinstance(record, dict):
        return "not a JSON object"
    missing = [key for key in ("id", "digest", *RECORD_DIGEST_FIELDS) if key not in record]
    if missing:
        return f"no {', '.join(missing)}"
    for key in ("id", "digest", "kind"):
        if not isinstance(record[key], str) or not record[key]:
            return f"its {key} is not a non-empty string"
    if not isinstance(record["parents"], list):
        return "its parents are not a list"
    for parent in record["parents"]:
        if not isinstance(parent, dict) or not isinstance(parent.get("id"), str):
            return f"a parent without an id: {json.dumps(parent)[:120]}"
    return None


def _check_records(files: dict[str, bytes], subjects: dict[str, str], report: Report) -> dict[str, dict[str, Any]]:
    records: dict[str, dict[str, Any]] = {}
    for path in sorted(p for p in files if p.startswith("records/")):
        try:
            record = json.loads(files[path])
            problem = _record_problem(record)
            computed = "" if problem else record_digest(record)
        except _JSON_ERRORS as exc:
            record, computed, problem = None, "", f"not JSON the registry would hash ({type(exc).__name__}: {exc})"
        if problem is not None:
            report.fail(f"record {path}: not a registry record: {problem}")
            continue
        if path != f"records/{record['id']}.json":
            report.fail(f"record {path}: holds record {record['id']}")
        if computed != record["digest"]:
            report.fail(f"digest of record {_label(record)}: its content hashes to {computed}, not {record['digest']}")
        listed = subjects.get(f"record:{record['id']}")
        if listed is None:
            report.fail(f"record {_label(record)} is not listed in the manifest")
        elif listed != hex_of(computed):
            report.fail(f"digest of record {_label(record)}: does not match the manifest's record:{record['id']}")
        records[record["id"]] = record
    for name in sorted(subjects):
        if name.startswith("record:") and name.removeprefix("record:") not in records:
            report.fail(f"missing record {name.removeprefix('record:')}: listed in the manifest, no records/ file")
    report.checked.append(f"{len(records)} record digest(s)")
    return records


def _reaches_criteria(start: str, records: dict[str, dict[str, Any]]) -> bool:
    seen, stack = {start}, [start]
    while stack:
        record = records.get(stack.pop())
        if record is None:
            continue
        if record["kind"] == "criteria":
            return True
        for parent in record["parents"]:
            if parent["id"] not in seen:
                seen.add(parent["id"])
                stack.append(parent["id"])
    return False


def _check_lineage(records: dict[str, dict[str, Any]], deployment_id: str, report: Report) -> None:
    for record in sorted(records.values(), key=lambda r: str(r["id"])):
        for parent in record["parents"]:
            if parent["id"] not in records:
                report.fail(
                    f"lineage incomplete at {_label(record)}: its {parent.get('role')} parent {parent.get('kind')} "
                    f"{parent['id']} is not in the archive"
                )
    deployment = records.get(deployment_id)
    if deployment is None:
        report.fail(f"lineage incomplete: the deployment {deployment_id} named by the manifest is not in the archive")
        return
    if deployment["kind"] != "deployment":
        report.fail(f"manifest: its deployment {deployment_id} is {_label(deployment)}, not a deployment record")
    deployments = [r for r in records.values() if r["kind"] == "deployment"]
    # every path the rules require: deployment -> policy checkpoint -> reward checkpoint / dataset ->
    # batches -> criteria; any record on it that cannot reach criteria is where the lineage breaks
    for record in [
        *deployments,
        *(
            r
            for r in records.values()
            if r["kind"] in ("policy_checkpoint", "reward_checkpoint", "preference_dataset", "annotation_batch")
        ),
    ]:
        if not _reaches_criteria(record["id"], records):
            report.fail(f"lineage incomplete at {_label(record)}: no criteria record is reachable upstream")
    report.checked.append("lineage back to criteria")


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


def _check_provenance(
    files: dict[str, bytes], records: dict[str, dict[str, Any]], key: Ed25519PublicKey, report: Report
) -> None:
    for path in sorted(p for p in files if p.startswith("provenance/")):
        try:
            opened = open_envelope(files[path], key)
        except EnvelopeError as exc:
            report.fail(f"provenance {path}: {exc}")
            continue
        if not opened.signature_ok:
            report.fail(f"signature of {path}: does not verify with key {key_id_of(key)}")
        if opened.statement.get("predicateType") != SLSA_PROVENANCE_V1:
            report.fail(f"provenance {path}: predicateType is not {SLSA_PROVENANCE_V1}")
            continue
        try:
            dependencies = _dependencies(opened.statement)
        except ValueError as exc:
            report.fail(f"provenance {path}: not SLSA provenance v1: {exc}")
            continue
        for dep in dependencies:
            name = str(dep.get("name", ""))
            if name.startswith("record:") and "/" not in name:
                record = records.get(name.removeprefix("record:"))
                digest = dep.get("digest")
                listed = digest.get("sha256") if isinstance(digest, dict) else None
                if record is not None and hex_of(record["digest"]) != listed:
                    report.fail(f"provenance {path}: dependency {name} does not match its record's digest")
    report.checked.append("provenance envelopes")


def _manifest_subjects(statement: dict[str, Any], report: Report) -> dict[str, str] | None:
    """The manifest's subjects by name, or None (failures named) when they are malformed or listed twice."""
    subjects = statement.get("subject")
    if not isinstance(subjects, list):
        report.fail("manifest: the statement's subject is not a list")
        return None
    pairs: list[tuple[str, str]] = []
    for subject in subjects:
        digest = subject.get("digest") if isinstance(subject, dict) else None
        if (
            not isinstance(subject, dict)
            or not isinstance(subject.get("name"), str)
            or not isinstance(digest, dict)
            or not isinstance(digest.get("sha256"), str)
        ):
            report.fail(f"manifest: a subject without a name and a sha256 digest: {json.dumps(subject)[:120]}")
            return None
        pairs.append((subject["name"], digest["sha256"]))
    twice = sorted(name for name, count in Counter(name for name, _ in pairs).items() if count > 1)
    for name in twice:
        # in-toto tools may disagree on which of the two digests counts
        report.fail(f"manifest: subject {name} is listed more than once")
    return None if twice else dict(pairs)


def _check_manifest(
    files: dict[str, bytes], key: Ed25519PublicKey, report: Report
) -> tuple[dict[str, str], str] | None:
    """The manifest's subjects and deployment id, once its signature and statement are checked."""
    try:
        opened: OpenedEnvelope = open_envelope(files[MANIFEST], key)
    except EnvelopeError as exc:
        report.fail(f"manifest: {exc}")
        return None
    if opened.signature_ok:
        report.checked.append(f"signature by key {key_id_of(key)}")
    else:
        signers = ", ".join(opened.keyids) or "no key id"
        report.fail(f"signature: {MANIFEST} does not verify with key {key_id_of(key)} (signed by {signers})")
    predicate_type = opened.statement.get("predicateType")
    if predicate_type != HANDOFF_PREDICATE:
        report.fail(f"manifest: predicateType is {json.dumps(predicate_type)[:120]}, not {HANDOFF_PREDICATE}")
    subjects = _manifest_subjects(opened.statement, report)
    predicate = opened.statement.get("predicate")
    deployment = predicate.get("deployment") if isinstance(predicate, dict) else None
    deployment_id = deployment.get("id") if isinstance(deployment, dict) else None
    if not isinstance(deployment_id, str):
        report.fail("manifest: the statement's predicate names no deployment id")
        return None
    return None if subjects is None else (subjects, deployment_id)


def _verify(path: Path, public_key_pem: bytes | None, max_total_bytes: int, report: Report) -> None:
    try:
        size = path.stat().st_size
        if size > max_total_bytes:
            report.fail(f"archive: {path} is {size} bytes, over the limit of {max_total_bytes}")
            return
        raw = path.read_bytes()  # read once: every check below is of these bytes
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        report.fail(f"archive: cannot read {path}: {exc}")
        return
    with archive:
        read = _read_entries(archive, report, max_total_bytes)
        if read is None:
            return
        files, unreadable = read
        if not unreadable:  # an unreadable entry is already named; its absence would only blur the form check
            _check_form(raw, archive, files, report)
    if MANIFEST not in files:
        report.fail(f"manifest: the archive holds no {MANIFEST}")
        return
    pem = public_key_pem if public_key_pem is not None else files.get(PUBLIC_KEY)
    if pem is None:
        report.fail(f"signature: no public key (the archive holds no {PUBLIC_KEY}; pass --public-key)")
        return
    try:
        key = load_public_key(pem)
    except ValueError as exc:
        report.fail(f"signature: unusable public key: {exc}")
        return
    report.key_id, report.key_fingerprint = key_id_of(key), key_fingerprint(key)
    report.key_source = "pinned" if public_key_pem is not None else "archive"
    manifest = _check_manifest(files, key, report)
    if manifest is None:
        return
    subjects, deployment_id = manifest
    _check_files(files, unreadable, subjects, report)
    records = _check_records(files, subjects, report)
    _check_provenance(files, records, key, report)
    _check_lineage(records, deployment_id, report)


def verify_archive(
    path: Path, public_key_pem: bytes | None = None, *, max_total_bytes: int = MAX_TOTAL_BYTES
) -> Report:
    """Check an archive; `public_key_pem` pins the expected key (else the archive's own key is used,
    which proves integrity but not who signed: pin the registry's published key for that, or compare
    the report's key_id and key_fingerprint with GET /v1/signing-key)."""
    report = Report()
    try:
        _verify(path, public_key_pem, max_total_bytes, report)
    except Exception as exc:
        # fail closed, and named, on any malformed input the checks above did not foresee
        report.fail(f"archive: malformed input ({type(exc).__name__}: {exc})")
    return report
