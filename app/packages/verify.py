"""Offline verification of a handoff package archive: no database, no network, only the archive and a
public key (the archive's own `signing-key.pem`, or one the auditor pins).

Checks, each named when it fails:
0. form and size, in bounded memory: nothing is read whole. The central directory and the bytes all
   entries declare are capped before anything is read; the manifest comes first, and an entry it does
   not list, or that declares more than it lists, is refused unread; every entry streams through its
   hash, refused once it inflates past what it declares (`package_reader`, `zip_entries`). The archive
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

import json
import zipfile
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from app.core.digests import digest_of, hex_of
from app.core.signing import key_fingerprint, key_id_of, load_public_key
from app.packages.archive import HANDOFF_PREDICATE, MANIFEST, PUBLIC_KEY, record_path
from app.packages.dsse import EnvelopeError, OpenedEnvelope, open_envelope
from app.packages.package_reader import PackageReader, manifest_sizes, statement_too_dense
from app.packages.provenance_check import record_dependencies
from app.packages.zip_entries import (
    EndRecord,
    EntryRead,
    directory_problem,
    read_end_record,
)
from app.packages.zip_form import check_form

MAX_MESSAGE = 2000
# the parents of all records and the record dependencies of all provenance files, which verify keeps
MAX_LINKS = 50_000
MAX_KEPT_TEXT = 256  # of a record's id, digest, kind or parent id (UUIDs and sha256 digests are far shorter)
RECORD_DIGEST_FIELDS = ("kind", "name", "version", "project", "parents", "spec", "blobs", "derived")
# the most uncompressed bytes an archive may declare, and the verifier will read, over all its entries
MAX_TOTAL_BYTES = 4 * 1024**3
_JSON_ERRORS = (ValueError, RecursionError)  # UnicodeDecodeError and rfc8785's errors are ValueErrors


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
        # names and ids in a message come from the archive: a hostile one must not flood the report
        self.failures.append(message if len(message) <= MAX_MESSAGE else f"{message[:MAX_MESSAGE]}... (cut)")


def record_digest(record: dict[str, Any]) -> str:
    """The registry's digest of a record as the API returns it (app.records.service.register)."""
    return digest_of({key: record[key] for key in RECORD_DIGEST_FIELDS})


def _label(record: dict[str, Any]) -> str:
    return f"{record.get('kind')} {record.get('name')} v{record.get('version')} ({record.get('id')})"


def _check_files(reads: Mapping[str, EntryRead], unread: set[str], subjects: dict[str, str], report: Report) -> None:
    for path in sorted(reads):
        if path == MANIFEST:
            continue
        expected = subjects.get(path)
        if expected is None:
            report.fail(f"digest of {path}: the file is not listed in the manifest")
        elif reads[path].sha256 != expected:
            report.fail(f"digest of {path}: sha256 does not match the manifest")
    for name in sorted(subjects):
        if not name.startswith("record:") and name not in reads and name not in unread:
            report.fail(f"missing file {name}: listed in the manifest but not in the archive")
    report.checked.append(f"{len(reads) - 1} file digest(s)")


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
        if len(record[key]) > MAX_KEPT_TEXT:
            return f"its {key} is longer than {MAX_KEPT_TEXT} characters"
    if not isinstance(record["parents"], list):
        return "its parents are not a list"
    for parent in record["parents"]:
        if not isinstance(parent, dict) or not isinstance(parent.get("id"), str):
            return f"a parent without an id: {json.dumps(parent)[:120]}"
        if len(parent["id"]) > MAX_KEPT_TEXT:
            return f"a parent id is longer than {MAX_KEPT_TEXT} characters"
    return None


def _skeleton(record: dict[str, Any]) -> dict[str, Any]:
    """What the lineage and provenance checks use of a checked record: holding no more than this of each
    keeps the verifier's memory to one record's size, not the archive's."""
    kept = {key: record[key] for key in ("id", "digest", "kind")}
    # the name, version and parents' roles and kinds only go into messages
    kept |= {key: str(record[key])[:MAX_KEPT_TEXT] for key in ("name", "version")}
    parents = [
        {"id": parent["id"], **{key: str(parent[key])[:MAX_KEPT_TEXT] for key in ("role", "kind") if key in parent}}
        for parent in record["parents"]
    ]
    return kept | {"parents": parents}


def _check_record(path: str, data: bytes, subjects: dict[str, str], report: Report) -> dict[str, Any] | None:
    """Check one `records/` file; its skeleton, or None when it is not a registry record."""
    try:
        record = json.loads(data)
        problem = _record_problem(record)
        computed = "" if problem else record_digest(record)
    except _JSON_ERRORS as exc:
        record, computed, problem = None, "", f"not JSON the registry would hash ({type(exc).__name__}: {exc})"
    if problem is not None:
        report.fail(f"record {path}: not a registry record: {problem}")
        return None
    if path != f"records/{record['id']}.json":
        report.fail(f"record {path}: holds record {record['id']}")
    if computed != record["digest"]:
        report.fail(f"digest of record {_label(record)}: its content hashes to {computed}, not {record['digest']}")
    listed = subjects.get(f"record:{record['id']}")
    if listed is None:
        report.fail(f"record {_label(record)} is not listed in the manifest")
    elif listed != hex_of(computed):
        report.fail(f"digest of record {_label(record)}: does not match the manifest's record:{record['id']}")
    return _skeleton(record)


class _Documents:
    """What verify keeps of the documents the reader hands over, one at a time: each record's skeleton,
    and the record dependencies each provenance file lists; links (parents and dependencies) are capped
    in all, as what is kept of them grows with the archive."""

    def __init__(self, subjects: dict[str, str], key: Ed25519PublicKey, report: Report) -> None:
        self.subjects, self.key, self.report = subjects, key, report
        self.records: dict[str, dict[str, Any]] = {}
        self.dependencies: list[tuple[str, str, str | None]] = []  # (provenance path, record id, sha256)
        self.links = 0

    def take(self, path: str, data: bytes) -> None:
        if path.startswith("records/"):
            skeleton = _check_record(path, data, self.subjects, self.report)
            if skeleton is not None and self._link(path, len(skeleton["parents"])):
                self.records[skeleton["id"]] = skeleton
        elif path.startswith("provenance/"):
            found = record_dependencies(path, data, self.key, self.report.fail)
            if self._link(path, len(found)):
                self.dependencies += [(path, record_id, listed) for record_id, listed in found]

    def _link(self, path: str, count: int) -> bool:
        self.links += count
        if self.links > MAX_LINKS:
            self.report.fail(f"{path}: the archive's records and provenance name over {MAX_LINKS} links in all")
        return self.links <= MAX_LINKS

    def finish(self, unread: set[str]) -> None:
        """The checks that need every record: each listed record has its file (unless that file was
        refused, and named, already), and each provenance dependency matches its record's digest."""
        for name in sorted(self.subjects):
            record_id = name.removeprefix("record:")
            if name.startswith("record:") and record_id not in self.records and record_path(record_id) not in unread:
                self.report.fail(f"missing record {record_id}: listed in the manifest, no records/ file")
        self.report.checked.append(f"{len(self.records)} record digest(s)")
        for path, record_id, listed in self.dependencies:
            record = self.records.get(record_id)
            if record is not None and hex_of(record["digest"]) != listed:
                self.report.fail(f"provenance {path}: dependency record:{record_id} does not match its record's digest")
        self.report.checked.append("provenance envelopes")


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
    # every path the rules require: deployment -> policy checkpoint -> reward checkpoint / dataset ->
    # batches -> criteria (the kinds that declare `traces_to_criteria`); any record on it that cannot
    # reach criteria is where the lineage breaks, named downstream first
    # imported here, once the archive's documents have been read: the kind modules load pyarrow and
    # SQLAlchemy, which would otherwise add their memory to the peak of the largest document's parse
    from app.kinds.registry import kinds_where, rank_of

    tracing = kinds_where(traces_to_criteria=True)
    for record in sorted(records.values(), key=lambda r: (-rank_of(str(r["kind"])), str(r["id"]))):
        if record["kind"] in tracing and not _reaches_criteria(record["id"], records):
            report.fail(f"lineage incomplete at {_label(record)}: no criteria record is reachable upstream")
    report.checked.append("lineage back to criteria")


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
    manifest: bytes, key: Ed25519PublicKey, report: Report
) -> tuple[dict[str, str], dict[str, int], str] | None:
    """The manifest's subjects, sizes and deployment id, once its signature and statement are checked."""
    too_dense = statement_too_dense(manifest)
    if too_dense is not None:
        report.fail(f"manifest: {too_dense}")
        return None
    try:
        opened: OpenedEnvelope = open_envelope(manifest, key)
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
    return None if subjects is None else (subjects, manifest_sizes(opened.statement), deployment_id)


def _check_archive(
    fp: BinaryIO,
    size: int,
    end: EndRecord,
    archive: zipfile.ZipFile,
    public_key_pem: bytes | None,
    max_total_bytes: int,
    report: Report,
) -> None:
    reader = PackageReader(fp, archive, report.fail)
    if not reader.check_directory(max_total_bytes):
        return
    # the manifest comes first: it says which files the archive may hold, and how large each is
    manifest = reader.document(MANIFEST)
    if manifest is None:
        if MANIFEST not in reader.unread:
            report.fail(f"manifest: the archive holds no {MANIFEST}")
        return
    pem = public_key_pem if public_key_pem is not None else reader.document(PUBLIC_KEY)
    if pem is None:
        report.fail(f"signature: no public key (the archive holds no usable {PUBLIC_KEY}; pass --public-key)")
        return
    try:
        key = load_public_key(pem)
    except ValueError as exc:
        report.fail(f"signature: unusable public key: {exc}")
        return
    report.key_id, report.key_fingerprint = key_id_of(key), key_fingerprint(key)
    report.key_source = "pinned" if public_key_pem is not None else "archive"
    checked = _check_manifest(manifest, key, report)
    if checked is None:
        return
    subjects, sizes, deployment_id = checked
    documents = _Documents(subjects, key, report)
    reader.read_listed(subjects, sizes, documents.take)
    if not reader.unread:  # a refused or unreadable entry is already named; the form check needs them all
        form, failure = check_form(fp, size, end, archive, reader.reads)
        if form is not None:
            report.checked.insert(0, form)
        if failure is not None:
            report.fail(failure)
    _check_files(reader.reads, reader.unread, subjects, report)
    documents.finish(reader.unread)
    _check_lineage(documents.records, deployment_id, report)


def _verify(path: Path, public_key_pem: bytes | None, max_total_bytes: int, report: Report) -> None:
    try:
        size = path.stat().st_size
        if size > max_total_bytes:
            report.fail(f"archive: {path} is {size} bytes, over the limit of {max_total_bytes}")
            return
        fp = path.open("rb")
    except OSError as exc:
        report.fail(f"archive: cannot read {path}: {exc}")
        return
    with fp:
        end = read_end_record(fp, size)
        if end is None:
            report.fail(f"archive: cannot read {path}: no end of central directory record (not a zip file)")
            return
        problem = directory_problem(end)
        if problem is not None:
            report.fail(f"archive: {problem} (refused unread)")
            return
        try:
            archive = zipfile.ZipFile(fp)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
            report.fail(f"archive: cannot read {path}: {exc}")
            return
        with archive:
            _check_archive(fp, size, end, archive, public_key_pem, max_total_bytes, report)


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
