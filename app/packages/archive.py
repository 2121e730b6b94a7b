"""The package archive (API.md, handoff package archive): a zip of `handoff.html`, `handoff.pdf`,
`plots/*.png`, `records/<id>.json` (each record as the API returns it), `provenance/*.json` (a DSSE
envelope around a SLSA provenance v1 statement per training run), `signing-key.pem` (the public key, so
that the archive verifies offline), and `manifest.dsse.json`: a DSSE envelope around an in-toto
Statement v1 whose subjects are every other file and every record (`record:<id>`) with its sha256; a
file subject also lists its size in bytes (`annotations.size`, an in-toto ResourceDescriptor field), so
that a verifier can refuse an oversized zip entry before reading it.

The zip is reproducible: entries sorted by name, fixed timestamps and permissions, so the same content
gives the same bytes and the same digest."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Callable, Mapping
from typing import Any

from app.core.digests import hex_of
from app.packages.dsse import sign_statement, statement

MANIFEST = "manifest.dsse.json"
PUBLIC_KEY = "signing-key.pem"
HANDOFF_PREDICATE = "https://rlhf-registry.dev/handoff-package/v1"
FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def record_path(record_id: str) -> str:
    return f"records/{record_id}.json"


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"


def manifest_subjects(files: Mapping[str, bytes], record_digests: Mapping[str, str]) -> list[dict[str, Any]]:
    subjects = [
        {"name": path, "digest": {"sha256": hashlib.sha256(data).hexdigest()}, "annotations": {"size": len(data)}}
        for path, data in files.items()
    ]
    subjects += [
        {"name": f"record:{rid}", "digest": {"sha256": hex_of(digest)}} for rid, digest in record_digests.items()
    ]
    return subjects


def sign_manifest(
    files: Mapping[str, bytes],
    record_digests: Mapping[str, str],
    predicate: dict[str, Any],
    *,
    key_id: str,
    sign: Callable[[bytes], bytes],
) -> bytes:
    """The manifest envelope over `files` (every file of the archive but the manifest itself)."""
    return sign_statement(
        statement(manifest_subjects(files, record_digests), HANDOFF_PREDICATE, predicate), key_id=key_id, sign=sign
    )


def zip_bytes(files: Mapping[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(files):
            info = zipfile.ZipInfo(path, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # unix, whatever the building machine is
            info.external_attr = 0o100644 << 16
            archive.writestr(info, files[path], compresslevel=9)
    return buffer.getvalue()
