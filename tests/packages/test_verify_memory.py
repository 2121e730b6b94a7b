"""`rlhf-registry verify` in bounded memory: every entry streams through its hash, whatever sizes the
archive declares or really holds; an entry larger than the manifest lists, or than it declares, or one
the manifest does not list, is refused by name. Peaks are those of a `verify` process of its own."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.packages.archive import MANIFEST, manifest_subjects, zip_bytes
from app.packages.dsse import sign_statement
from app.packages.verify import verify_archive
from app.packages.zip_entries import MAX_DOCUMENT_BYTES, MAX_ENTRIES
from app.packages.zip_form import canonical_layout
from app.state import AppState
from tests.packages.conftest import Built

# verify is offline: which stack built the package does not matter, so one is enough
pytestmark = pytest.mark.parametrize("stack", ["sqlite-fs"], indirect=True)

MiB = 1024**2
PEAK_LIMIT = 200 * MiB
BOMB_MIB = 3993  # 3.9 GiB of zeros, in a deflate stream of about 4 MiB
STREAMED_MIB = 1024  # enough to show that an entry the manifest lists streams through, however large
REPO = Path(__file__).resolve().parents[2]
Files = dict[str, bytes]

# run in a process of its own, so that the children of earlier tests do not count in its peak
_MEASURE = """
import json, resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True, timeout=240)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024  # Linux reports KiB
print(json.dumps({"code": done.returncode, "output": done.stdout + done.stderr, "peak": peak}))
"""


def _verify_measured(path: Path, public_key: Path) -> tuple[int, str, int]:
    """Exit code, output and peak resident memory (bytes) of `rlhf-registry verify` in a process of its own."""
    cli = [sys.executable, "-m", "app.cli", "verify", str(path), "--public-key", str(public_key)]
    measured = subprocess.run(
        [sys.executable, "-c", _MEASURE, *cli],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        env={**os.environ, "COLUMNS": "250"},
        check=True,
    )
    result = json.loads(measured.stdout)
    return int(result["code"]), str(result["output"]), int(result["peak"])


def _zeros(mib: int) -> bytes:
    """A raw deflate stream of `mib` MiB of zeros. A full flush resets the compressor, so every MiB after
    the first compresses to the same bytes: the stream is one compressed MiB repeated."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    one = compressor.compress(bytes(MiB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    assert compressor.compress(bytes(MiB)) + compressor.flush(zlib.Z_FULL_FLUSH) == one
    return one * mib + compressor.flush()


def _zeros_facts(mib: int) -> tuple[int, str]:
    """The CRC-32 and sha256 of `mib` MiB of zeros."""
    crc, digest, chunk = 0, hashlib.sha256(), bytes(MiB)
    for _ in range(mib):
        crc = zlib.crc32(chunk, crc)
        digest.update(chunk)
    return crc, digest.hexdigest()


@pytest.fixture
def public_key(built: Built, stack: AppState, tmp_path: Path) -> Path:
    path = tmp_path / "registry.pem"
    path.write_text(stack.signing_key.public_key_pem())
    return path


def _statement(files: Files) -> dict[str, Any]:
    return dict(json.loads(base64.b64decode(json.loads(files[MANIFEST])["payload"])))


def _resign(stack: AppState, files: Files, subjects: dict[str, dict[str, Any]]) -> None:
    """Sign a manifest over `files` as they now are (record subjects kept), with `subjects` by name in
    place of the ones computed from the files."""
    statement = _statement(files)
    computed = manifest_subjects({p: d for p, d in files.items() if p != MANIFEST}, {})
    statement["subject"] = [
        *(subjects.get(s["name"], s) for s in computed),
        *(s for s in statement["subject"] if s["name"].startswith("record:")),
    ]
    key = stack.signing_key
    files[MANIFEST] = sign_statement(statement, key_id=key.key_id, sign=key.sign)


def _with_entry(files: Files, name: str, stream: bytes, crc: int, size: int) -> bytes:
    """The canonical zip of `files` whose entry `name` is the raw deflate `stream`, its headers declaring
    `crc` and `size` (whatever the stream really inflates to)."""
    entries = []
    for path in sorted(files):
        if path == name:
            entries.append((path, b"", stream))
        else:
            compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
            entries.append((path, files[path], compressor.compress(files[path]) + compressor.flush()))
    raw = bytearray(canonical_layout(entries))
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as archive:
        infos = archive.infolist()
    central = struct.unpack("<L", raw[-6:-2])[0]
    for info in infos:
        if info.filename == name:
            struct.pack_into("<L", raw, info.header_offset + 14, crc)
            struct.pack_into("<L", raw, info.header_offset + 22, size)
            struct.pack_into("<L", raw, central + 16, crc)
            struct.pack_into("<L", raw, central + 24, size)
        central += 46 + len(info.filename.encode())
    return bytes(raw)


def _write(tmp_path: Path, raw: bytes) -> Path:
    path = tmp_path / "package.zip"
    path.write_bytes(raw)
    return path


def test_the_manifest_lists_every_file_size(built: Built) -> None:
    files = built.files()
    listed = {s["name"]: s for s in _statement(files)["subject"]}
    for path, data in files.items():
        if path != MANIFEST:
            assert listed[path]["annotations"] == {"size": len(data)}


def test_a_good_package_verifies_within_the_limit(built: Built, tmp_path: Path, public_key: Path) -> None:
    code, output, peak = _verify_measured(_write(tmp_path, built.archive), public_key)
    assert code == 0, output
    assert "canonical zip form" in output and "lineage back to criteria" in output
    assert peak < PEAK_LIMIT, peak


def test_a_declared_huge_entry_is_refused_unread(built: Built, tmp_path: Path, public_key: Path) -> None:
    raw = _with_entry(built.files(), "handoff.pdf", _zeros(BOMB_MIB), 0, BOMB_MIB * MiB)
    assert len(raw) < 8 * MiB
    code, output, peak = _verify_measured(_write(tmp_path, raw), public_key)
    assert code == 1, output
    listed = len(built.files()["handoff.pdf"])
    expected = f"digest of handoff.pdf: the zip entry is refused unread: it declares {BOMB_MIB * MiB} bytes, more"
    assert f"{expected} than {listed} (the size the manifest lists for it)" in output, output
    assert peak < PEAK_LIMIT, peak


def test_an_entry_lying_about_its_size_is_refused(built: Built, tmp_path: Path, public_key: Path) -> None:
    files = built.files()
    declared = len(files["handoff.pdf"])  # what the manifest lists; the stream inflates to 3.9 GiB
    raw = _with_entry(files, "handoff.pdf", _zeros(BOMB_MIB), zlib.crc32(bytes(declared)), declared)
    code, output, peak = _verify_measured(_write(tmp_path, raw), public_key)
    assert code == 1, output
    assert f"digest of handoff.pdf: the zip entry is refused: it inflates to more than the {declared} bytes" in output
    assert "Traceback" not in output and "MemoryError" not in output
    assert peak < PEAK_LIMIT, peak


def test_a_huge_entry_the_manifest_lists_streams_through(
    built: Built, stack: AppState, tmp_path: Path, public_key: Path
) -> None:
    stream, (crc, digest) = _zeros(STREAMED_MIB), _zeros_facts(STREAMED_MIB)
    files = built.files()
    size = STREAMED_MIB * MiB
    _resign(
        stack,
        files,
        {"handoff.pdf": {"name": "handoff.pdf", "digest": {"sha256": digest}, "annotations": {"size": size}}},
    )
    code, output, peak = _verify_measured(
        _write(tmp_path, _with_entry(files, "handoff.pdf", stream, crc, size)), public_key
    )
    assert code == 0, output  # the signed manifest vouches for 1 GiB of zeros: every byte was hashed
    assert peak < PEAK_LIMIT, peak


def _refusals(path: Path, public_key: Path) -> list[str]:
    report = verify_archive(path, public_key.read_bytes())
    assert not report.ok
    return report.failures


def test_an_unlisted_entry_is_refused_by_name(built: Built, tmp_path: Path, public_key: Path) -> None:
    files = built.files() | {"zz-smuggled.bin": bytes(MiB)}
    failures = _refusals(_write(tmp_path, zip_bytes(files)), public_key)
    assert "digest of zz-smuggled.bin: the file is not listed in the manifest (refused unread)" in failures


def test_an_entry_larger_than_the_manifest_lists_is_refused(built: Built, tmp_path: Path, public_key: Path) -> None:
    files = built.files()
    listed = len(files["handoff.html"])
    files["handoff.html"] += b"<!-- more -->"
    failures = _refusals(_write(tmp_path, zip_bytes(files)), public_key)
    expected = f"it declares {listed + 13} bytes, more than {listed} (the size the manifest lists for it)"
    assert f"digest of handoff.html: the zip entry is refused unread: {expected}" in failures


CAPPED: dict[str, tuple[Callable[[Files], None], str]] = {
    "document over the cap": (
        lambda files: files.__setitem__(_a_record(files), b" " * (MAX_DOCUMENT_BYTES + 1)),
        f"more than {MAX_DOCUMENT_BYTES} (the limit for a document the verifier parses)",
    ),
    "document too dense to parse": (
        lambda files: files.__setitem__(_a_record(files), b"[" + b"{}," * (MiB // 3) + b"{}]"),
        "the verifier's memory budget of",
    ),
}


def _a_record(files: Files) -> str:
    return next(p for p in sorted(files) if p.startswith("records/"))


@pytest.mark.parametrize("case", list(CAPPED))
def test_a_document_over_its_limits_is_refused(
    built: Built, stack: AppState, tmp_path: Path, public_key: Path, case: str
) -> None:
    change, expected = CAPPED[case]
    files = built.files()
    change(files)
    _resign(stack, files, {})  # the manifest lists the document as it now is
    code, output, peak = _verify_measured(_write(tmp_path, zip_bytes(files)), public_key)
    assert code == 1 and f"digest of {_a_record(files)}: the zip entry is refused" in output, output
    assert expected in output, output
    assert peak < PEAK_LIMIT, peak


def test_a_central_directory_over_the_cap_is_refused_unread(built: Built, tmp_path: Path, public_key: Path) -> None:
    raw = bytearray(built.archive)
    struct.pack_into("<HH", raw, len(raw) - 14, MAX_ENTRIES + 1, MAX_ENTRIES + 1)
    failures = _refusals(_write(tmp_path, bytes(raw)), public_key)
    assert failures == [
        f"archive: its central directory declares {MAX_ENTRIES + 1} entries, over the limit of {MAX_ENTRIES}"
        " (refused unread)"
    ]


def test_the_largest_document_verify_parses_stays_within_the_limit(
    built: Built, stack: AppState, tmp_path: Path, public_key: Path
) -> None:
    files = built.files()
    path = _a_record(files)
    record = json.loads(files[path])
    # one character beyond the BMP makes Python hold the whole string at four bytes a character
    record["spec"] = {"text": "\U0001f600" + "a" * (MAX_DOCUMENT_BYTES - 4 * 1024 - len(files[path]))}
    files[path] = json.dumps(record, ensure_ascii=False).encode()
    assert MAX_DOCUMENT_BYTES - 8 * 1024 < len(files[path]) <= MAX_DOCUMENT_BYTES
    _resign(stack, files, {})
    code, output, peak = _verify_measured(_write(tmp_path, zip_bytes(files)), public_key)
    assert code == 1 and f"digest of record {record['kind']} {record['name']}" in output, output  # parsed, then hashed
    assert "refused" not in output, output
    assert peak < PEAK_LIMIT, peak
