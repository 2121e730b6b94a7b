"""The canonical form of a handoff package zip, and what sets an archive apart from it.

Python's zipfile reads only the central directory; other tools (bsdtar, Java's ZipInputStream) walk the
local entries, so any byte outside the builder's layout (`archive.zip_bytes`: entries sorted by name,
fixed timestamps and permissions, deflate, no comment, no directory entries, nothing before, between or
after the entries) could show them a file the verifier never saw. The verifier therefore requires the
archive to be byte for byte that layout (APPNOTE.TXT, PKWARE's zip specification, sections 4.3.7,
4.3.12 and 4.3.16 for the three records packed here)."""

from __future__ import annotations

import struct
import zipfile
import zlib
from itertools import pairwise

from app.packages.archive import FIXED_TIME, zip_bytes

_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zipfile's structFileHeader
_CENTRAL_HEADER = struct.Struct("<4s4B4HL2L5H2L")  # zipfile's structCentralDir
_END_RECORD = struct.Struct("<4s4H2LH")  # zipfile's structEndArchive
_UNIX_FILE_0644 = 0o100644 << 16
_UTF8_NAME = 0x800


def canonical_layout(entries: list[tuple[str, bytes, bytes]]) -> bytes:
    """The builder's zip layout (`zip_bytes`: entries in the order given, FIXED_TIME, unix 0644, deflate,
    no extra fields, comments or data descriptors) around given (name, content, deflate stream) entries.
    `zip_bytes` gives the same bytes with the streams this machine's zlib makes; this is for a verifier
    whose zlib (zlib-ng, say) compresses differently from the builder's."""
    dt = FIXED_TIME
    dosdate = (dt[0] - 1980) << 9 | dt[1] << 5 | dt[2]
    dostime = dt[3] << 11 | dt[4] << 5 | (dt[5] // 2)
    body, central = bytearray(), bytearray()
    for name, content, stream in entries:
        try:
            encoded, flags = name.encode("ascii"), 0
        except UnicodeEncodeError:
            encoded, flags = name.encode(), _UTF8_NAME
        offset = len(body)
        common = (flags, zipfile.ZIP_DEFLATED, dostime, dosdate, zlib.crc32(content), len(stream), len(content))
        # local header: version 20 to extract, no extra field; central: made by unix (3), no comment
        body += _LOCAL_HEADER.pack(b"PK\x03\x04", 20, 0, *common, len(encoded), 0) + encoded + stream
        central += _CENTRAL_HEADER.pack(
            b"PK\x01\x02", 20, 3, 20, 0, *common, len(encoded), 0, 0, 0, 0, _UNIX_FILE_0644, offset
        )
        central += encoded
    end = _END_RECORD.pack(b"PK\x05\x06", 0, 0, len(entries), len(entries), len(central), len(body), 0)
    return bytes(body + central + end)


def _data_start(raw: bytes, info: zipfile.ZipInfo) -> int | None:
    """Where the entry's compressed data begins, after its local header; None without a local header."""
    header = raw[info.header_offset : info.header_offset + _LOCAL_HEADER.size]
    if len(header) != _LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
        return None
    name_length, extra_length = struct.unpack("<HH", header[-4:])
    return int(info.header_offset + _LOCAL_HEADER.size + name_length + extra_length)


def _deflate_streams(raw: bytes, archive: zipfile.ZipFile, files: dict[str, bytes]) -> list[tuple[str, bytes, bytes]]:
    """(name, content, the archive's own deflate stream) per file, in name order; raises ValueError
    when an entry's stream is not exactly one deflate stream of its content."""
    entries = []
    for name in sorted(files):
        info = archive.getinfo(name)
        begin = _data_start(raw, info)
        if begin is None:
            raise ValueError(f"no local header for {name}")
        stream = raw[begin : begin + info.compress_size]
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        try:
            content = inflater.decompress(stream, len(files[name]) + 1)
        except zlib.error as exc:
            raise ValueError(f"{name}: {exc}") from None
        if content != files[name] or not inflater.eof or inflater.unused_data or inflater.unconsumed_tail:
            raise ValueError(f"{name}: its stream is not exactly a deflate stream of its content")
        entries.append((name, files[name], stream))
    return entries


def _local_entry_end(raw: bytes, info: zipfile.ZipInfo) -> int:
    begin = _data_start(raw, info)
    return info.header_offset if begin is None else begin + info.compress_size


def _form_differences(raw: bytes, archive: zipfile.ZipFile, files: dict[str, bytes]) -> list[str]:
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
        gap = after.header_offset - _local_entry_end(raw, before)
        if gap > 0:
            found.append(
                f"{gap} byte(s) between entries {before.filename} and {after.filename} that the central"
                " directory does not list (a hidden local entry?)"
            )
    if ordered:
        last_end = _local_entry_end(raw, ordered[-1])
        central = raw.find(b"PK\x01\x02", last_end)
        if central > last_end:
            found.append(
                f"{central - last_end} byte(s) after the last entry that the central directory does not list"
                " (a hidden local entry?)"
            )
    end = raw.rfind(b"PK\x05\x06")
    if end >= 0 and end + _END_RECORD.size <= len(raw):
        comment_length = _END_RECORD.unpack(raw[end : end + _END_RECORD.size])[-1]
        trailing = len(raw) - (end + _END_RECORD.size + comment_length)
        if trailing > 0:
            found.append(f"{trailing} byte(s) after the end of the zip (trailing data or a hidden entry)")
    return found


def _first_difference(one: bytes, other: bytes) -> int:
    common, step = min(len(one), len(other)), 1 << 16
    for start in range(0, common, step):
        stop = min(start + step, common)
        if one[start:stop] != other[start:stop]:
            return next(i for i in range(start, stop) if one[i] != other[i])
    return common


def check_form(raw: bytes, archive: zipfile.ZipFile, files: dict[str, bytes]) -> tuple[str | None, str | None]:
    """(what was checked, None) when `raw` is the canonical zip of `files`, else (None, the failure)."""
    expected = zip_bytes(files)
    if raw == expected:
        return "canonical zip form", None
    try:
        if canonical_layout(_deflate_streams(raw, archive, files)) == raw:
            # the same layout; only this machine's zlib would have compressed differently
            return "canonical zip form (deflate streams from another zlib)", None
    except ValueError:
        pass
    found = _form_differences(raw, archive, files)
    if not found:
        at = _first_difference(raw, expected)
        found.append(
            f"{len(raw)} bytes that differ from the {len(expected)}-byte canonical zip of its files from offset {at}"
        )
    return None, f"archive is not in canonical form: {'; '.join(found)}"
