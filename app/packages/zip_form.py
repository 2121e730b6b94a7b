"""The canonical form of a handoff package zip, and what sets an archive apart from it.

Python's zipfile reads only the central directory; other tools (bsdtar, Java's ZipInputStream) walk the
local entries, so any byte outside the builder's layout (`archive.zip_bytes`: entries sorted by name,
fixed timestamps and permissions, deflate, no comment, no directory entries, nothing before, between or
after the entries) could show them a file the verifier never saw. The verifier therefore requires the
archive to be byte for byte that layout (APPNOTE.TXT, PKWARE's zip specification, sections 4.3.7,
4.3.12 and 4.3.16 for the three records packed here). The check walks the archive file region by
region, so that it holds no more of it in memory than its central directory: every header must be the
canonical one, and every entry's data exactly one deflate stream of its content (`zip_entries`)."""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Mapping
from itertools import pairwise
from typing import BinaryIO

from app.packages.archive import FIXED_TIME
from app.packages.zip_entries import END_RECORD, LOCAL_HEADER, EndRecord, EntryRead, read_at

_CENTRAL_HEADER = struct.Struct("<4s4B4HL2L5H2L")  # zipfile's structCentralDir
_UNIX_FILE_0644 = 0o100644 << 16
_UTF8_NAME = 0x800
_DOSDATE = (FIXED_TIME[0] - 1980) << 9 | FIXED_TIME[1] << 5 | FIXED_TIME[2]
_DOSTIME = FIXED_TIME[3] << 11 | FIXED_TIME[4] << 5 | (FIXED_TIME[5] // 2)


def _encoded(name: str) -> tuple[bytes, int]:
    try:
        return name.encode("ascii"), 0
    except UnicodeEncodeError:
        return name.encode(), _UTF8_NAME


def _local_header(name: str, crc: int, compressed: int, size: int) -> bytes:
    """Version 20 to extract, deflate, FIXED_TIME, no extra field."""
    encoded, flags = _encoded(name)
    common = (flags, zipfile.ZIP_DEFLATED, _DOSTIME, _DOSDATE, crc, compressed, size)
    return LOCAL_HEADER.pack(b"PK\x03\x04", 20, 0, *common, len(encoded), 0) + encoded


def _central_header(name: str, crc: int, compressed: int, size: int, offset: int) -> bytes:
    """Made by unix (3), version 20, no extra field or comment, unix 0644."""
    encoded, flags = _encoded(name)
    common = (flags, zipfile.ZIP_DEFLATED, _DOSTIME, _DOSDATE, crc, compressed, size)
    fields = (len(encoded), 0, 0, 0, 0, _UNIX_FILE_0644, offset)
    return _CENTRAL_HEADER.pack(b"PK\x01\x02", 20, 3, 20, 0, *common, *fields) + encoded


def _end_record(entries: int, directory_size: int, directory_offset: int) -> bytes:
    return END_RECORD.pack(b"PK\x05\x06", 0, 0, entries, entries, directory_size, directory_offset, 0)


def canonical_layout(entries: list[tuple[str, bytes, bytes]]) -> bytes:
    """The builder's zip layout (`zip_bytes`: entries in the order given, FIXED_TIME, unix 0644, deflate,
    no extra fields, comments or data descriptors) around given (name, content, deflate stream) entries.
    `zip_bytes` gives the same bytes with the streams this machine's zlib makes; a verifier whose zlib
    (zlib-ng, say) compresses differently accepts any stream that inflates exactly to the content."""
    body, central = bytearray(), bytearray()
    for name, content, stream in entries:
        crc = zlib.crc32(content)
        central += _central_header(name, crc, len(stream), len(content), len(body))
        body += _local_header(name, crc, len(stream), len(content)) + stream
    return bytes(body + central + _end_record(len(entries), len(central), len(body)))


def _first_difference(one: bytes, other: bytes) -> int:
    return next((i for i, (a, b) in enumerate(zip(one, other, strict=False)) if a != b), min(len(one), len(other)))


def _canonical_walk(
    fp: BinaryIO, size: int, archive: zipfile.ZipFile, reads: Mapping[str, EntryRead]
) -> tuple[int | None, bool]:
    """(the first offset at which the archive leaves the canonical layout of its files, or None; whether
    every stream is the one this machine's zlib makes), comparing every header byte for byte."""
    offset, same_zlib, central = 0, True, bytearray()
    for name in sorted(reads):
        info, read = archive.getinfo(name), reads[name]
        local = _local_header(name, info.CRC, info.compress_size, info.file_size)
        actual = read_at(fp, offset, len(local))
        if actual != local:
            return offset + _first_difference(actual, local), False
        if not read.exact:
            return offset + len(local), False
        same_zlib = same_zlib and read.same_zlib
        central += _central_header(name, info.CRC, info.compress_size, info.file_size, offset)
        offset += len(local) + info.compress_size
    tail = bytes(central) + _end_record(len(reads), len(central), offset)
    actual = read_at(fp, offset, len(tail) + 1)
    if actual != tail:
        return offset + _first_difference(actual, tail), False
    return None, same_zlib


def _data_start(fp: BinaryIO, info: zipfile.ZipInfo) -> int | None:
    """Where the entry's compressed data begins, after its local header; None without a local header."""
    header = read_at(fp, info.header_offset, LOCAL_HEADER.size)
    if len(header) != LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
        return None
    name_length, extra_length = struct.unpack("<HH", header[-4:])
    return int(info.header_offset + LOCAL_HEADER.size + name_length + extra_length)


def _local_entry_end(fp: BinaryIO, info: zipfile.ZipInfo) -> int:
    begin = _data_start(fp, info)
    return info.header_offset if begin is None else begin + info.compress_size


def _form_differences(fp: BinaryIO, size: int, end: EndRecord, archive: zipfile.ZipFile, files: list[str]) -> list[str]:
    """What sets the archive apart from the canonical zip of its files, as far as it can be named."""
    infos = archive.infolist()
    found: list[str] = []
    first = min((info.header_offset for info in infos), default=0)
    if first > 0:
        found.append(f"{first} byte(s) before the first zip entry")
    for info in infos:
        if info.is_dir():
            found.append(f"directory entry {info.filename} (declaring {info.file_size} byte(s) of data)")
    if archive.comment:
        found.append(f"a zip comment of {len(archive.comment)} byte(s)")
    if [info.filename for info in infos if not info.is_dir()] != sorted(files):
        found.append("its entries are not its files sorted by name, each once")
    for info in infos:
        if info.is_dir():
            continue
        odd = [
            what
            for what, bad in (
                ("not deflated", info.compress_type != zipfile.ZIP_DEFLATED),
                (f"timestamp {info.date_time}", info.date_time != FIXED_TIME),
                ("attributes", info.external_attr != _UNIX_FILE_0644 or info.create_system != 3),
                ("an extra field", bool(info.extra)),
                ("an entry comment", bool(info.comment)),
                ("flags", bool(info.flag_bits & ~_UTF8_NAME)),
            )
            if bad
        ]
        if odd:
            found.append(f"entry {info.filename} has {', '.join(odd)}")
    ordered = sorted(infos, key=lambda info: info.header_offset)
    for before, after in pairwise(ordered):
        gap = after.header_offset - _local_entry_end(fp, before)
        if gap > 0:
            found.append(
                f"{gap} byte(s) between entries {before.filename} and {after.filename} that the central"
                " directory does not list (a hidden local entry?)"
            )
    if ordered:
        last_end = _local_entry_end(fp, ordered[-1])
        if end.directory_offset > last_end:
            found.append(
                f"{end.directory_offset - last_end} byte(s) after the last entry that the central directory"
                " does not list (a hidden local entry?)"
            )
    trailing = size - (end.offset + END_RECORD.size + end.comment_length)
    if trailing > 0:
        found.append(f"{trailing} byte(s) after the end of the zip (trailing data or a hidden entry)")
    return found


def check_form(
    fp: BinaryIO, size: int, end: EndRecord, archive: zipfile.ZipFile, reads: Mapping[str, EntryRead]
) -> tuple[str | None, str | None]:
    """(what was checked, None) when the archive file `fp` of `size` bytes is the canonical zip of the
    files read (`reads`, by name, as `zip_entries.read_entry` read them), else (None, the failure)."""
    at, same_zlib = _canonical_walk(fp, size, archive, reads)
    if at is None:
        # with other streams, the same layout: only this machine's zlib would have compressed differently
        return ("canonical zip form" if same_zlib else "canonical zip form (deflate streams from another zlib)"), None
    found = _form_differences(fp, size, end, archive, sorted(reads))
    if not found:
        found.append(f"{size} bytes that differ from the canonical zip of its files from offset {at}")
    return None, f"archive is not in canonical form: {'; '.join(found)}"
