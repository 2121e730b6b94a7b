"""Reading a package zip in bounded memory, whatever its headers declare.

Nothing here reads a whole entry or a whole archive: an entry's bytes pass in chunks through its sha256
(and, for a document the verifier must parse, into a buffer no larger than `MAX_DOCUMENT_BYTES`). A
deflated entry is inflated here from its raw stream rather than through `zipfile`, because `zipfile`
silently truncates an entry at the size its header declares: counting the inflated bytes is what tells
a zip bomb that lies in its header from an honest entry. The zip records are those of APPNOTE.TXT,
PKWARE's zip specification (4.3.7 local file header, 4.3.16 end of central directory record)."""

from __future__ import annotations

import hashlib
import struct
import zipfile
import zlib
from dataclasses import dataclass
from typing import BinaryIO

CHUNK = 1 << 16
# an archive's central directory is read whole by zipfile: cap what it may declare before it is parsed
MAX_ENTRIES = 10_000
MAX_CENTRAL_DIRECTORY_BYTES = 2 * 1024**2
# a JSON or PEM document the verifier parses (the manifest, records, provenance, the key) is held in
# memory, one at a time: each is capped, and so is what parsing it may take (`parse_cost`)
MAX_DOCUMENT_BYTES = 4 * 1024**2
MAX_PARSE_COST = 64 * 1024**2

END_RECORD = struct.Struct("<4s4H2LH")  # zipfile's structEndArchive
LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zipfile's structFileHeader
_ZIP64_LOCATOR = b"PK\x06\x07"
_ENCRYPTED = 0x1


class EntryProblem(ValueError):
    """Why an entry's content could not be read."""


class EntryRefused(EntryProblem):
    """An entry whose content is larger than it may be: refused before, or while, it was read."""


@dataclass(frozen=True)
class EndRecord:
    """The end of central directory record: where it is and what it declares."""

    offset: int
    entries: int
    directory_size: int
    directory_offset: int
    comment_length: int


@dataclass(frozen=True)
class EntryRead:
    """An entry as read: its sha256 (hex), its content when it was kept, and, for a deflated entry read
    from its raw stream, whether that stream is exactly one deflate stream of the content (`exact`) and
    whether this machine's zlib at level 9 makes the same stream (`same_zlib`)."""

    sha256: str
    content: bytes | None
    exact: bool
    same_zlib: bool


def read_at(fp: BinaryIO, offset: int, length: int) -> bytes:
    fp.seek(offset)
    return fp.read(length)


def read_end_record(fp: BinaryIO, size: int) -> EndRecord | None:
    """The last end of central directory record within the window where a zip reader looks for it
    (the record plus the longest zip comment), or None when there is none."""
    window = min(size, END_RECORD.size + 0xFFFF)
    tail = read_at(fp, size - window, window)
    at = tail.rfind(b"PK\x05\x06")
    if at < 0 or at + END_RECORD.size > len(tail):
        return None
    fields = END_RECORD.unpack(tail[at : at + END_RECORD.size])
    offset = size - window + at
    # a zip64 locator right before the record means zipfile would take its counts from zip64 records
    if at >= 20 and tail[at - 20 : at - 16] == _ZIP64_LOCATOR:
        return EndRecord(offset, 0xFFFF, 0xFFFFFFFF, fields[6], fields[7])
    return EndRecord(offset, fields[4], fields[5], fields[6], fields[7])


def directory_problem(end: EndRecord) -> str | None:
    """What makes the central directory too large to parse in bounded memory, if anything."""
    if end.entries == 0xFFFF or end.directory_size == 0xFFFFFFFF or end.directory_offset == 0xFFFFFFFF:
        return "it is a zip64 archive (a handoff package never is)"
    if end.entries > MAX_ENTRIES:
        return f"its central directory declares {end.entries} entries, over the limit of {MAX_ENTRIES}"
    if end.directory_size > MAX_CENTRAL_DIRECTORY_BYTES:
        return (
            f"its central directory declares {end.directory_size} bytes, over the limit of"
            f" {MAX_CENTRAL_DIRECTORY_BYTES}"
        )
    return None


def parse_cost(data: bytes) -> int:
    """An upper estimate of the memory, in bytes, that parsing and hashing `data` as JSON may take at
    its peak: the bytes, the text decoded (up to four bytes a character), the strings parsed from it and
    their RFC 8785 encoding, about 230 bytes for each object or array CPython builds and 64 for each
    other value, however short their text. Each `}`, `]`, `,` and `:` is counted, even in strings, so the
    estimate errs high; a container is built only once it is closed (an unclosed one fails the parse,
    which frees what it built)."""
    containers = data.count(b"}") + data.count(b"]")
    values = data.count(b",") + data.count(b":")
    return 12 * len(data) + 232 * containers + 64 * values


def _data_start(fp: BinaryIO, info: zipfile.ZipInfo) -> int:
    header = read_at(fp, info.header_offset, LOCAL_HEADER.size)
    if len(header) != LOCAL_HEADER.size or header[:4] != b"PK\x03\x04":
        raise EntryProblem("bad magic number for its local file header")
    name_length, extra_length = struct.unpack("<HH", header[-4:])
    name = read_at(fp, info.header_offset + LOCAL_HEADER.size, name_length)
    if name != info.orig_filename.encode("ascii" if name.isascii() else "utf-8"):
        raise EntryProblem("its file name in the central directory and in its local header differ")
    return int(info.header_offset + LOCAL_HEADER.size + name_length + extra_length)


class _SameStream:
    """Whether a stream equals what this machine's zlib makes of its content, compared as both flow:
    only the bytes one side has produced and the other not yet are buffered, and a difference ends it."""

    def __init__(self) -> None:
        self.compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        self.theirs = bytearray()
        self.ours = bytearray()
        self.same = True

    def feed(self, raw: bytes, content: bytes) -> None:
        if self.same:
            self._match(raw, self.compressor.compress(content))

    def finish(self) -> bool:
        if self.same:
            self._match(b"", self.compressor.flush())
        return self.same and not self.theirs and not self.ours

    def _match(self, raw: bytes, ours: bytes) -> None:
        self.theirs += raw
        self.ours += ours
        common = min(len(self.theirs), len(self.ours))
        if self.theirs[:common] != self.ours[:common]:
            self.same = False
            self.theirs.clear()
            self.ours.clear()
            return
        del self.theirs[:common]
        del self.ours[:common]


def _inflate(fp: BinaryIO, info: zipfile.ZipInfo, keep: bool) -> EntryRead:
    """Inflate a deflated entry from its raw stream, stopping once it yields a byte more than declared."""
    start, left = _data_start(fp, info), info.compress_size
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    digest, crc, produced = hashlib.sha256(), 0, 0
    kept, same = bytearray(), _SameStream()
    fp.seek(start)
    while left > 0 and not inflater.eof:
        raw = fp.read(min(CHUNK, left))
        if not raw:
            raise EntryProblem("the archive ends inside its compressed data")
        left -= len(raw)
        same.feed(raw, b"")
        data = raw
        while not inflater.eof:
            try:
                out = inflater.decompress(data, CHUNK)
            except zlib.error as exc:
                raise EntryProblem(f"its deflate stream is broken ({exc})") from None
            data = inflater.unconsumed_tail
            produced += len(out)
            if produced > info.file_size:
                raise EntryRefused(
                    f"it inflates to more than the {info.file_size} bytes its header declares"
                    " (a zip bomb?): reading stopped there"
                )
            digest.update(out)
            crc = zlib.crc32(out, crc)
            same.feed(b"", out)
            if keep:
                kept += out
            if not data and len(out) < CHUNK:
                break  # all input consumed and no output left pending
    if not inflater.eof:
        raise EntryProblem("its deflate stream ends before its end of stream marker")
    if produced != info.file_size:
        raise EntryProblem(f"it holds {produced} bytes, not the {info.file_size} its header declares")
    if crc != info.CRC:
        raise EntryProblem("bad CRC-32")
    exact = left == 0 and not inflater.unused_data
    return EntryRead(digest.hexdigest(), bytes(kept) if keep else None, exact, exact and same.finish())


def _through_zipfile(archive: zipfile.ZipFile, info: zipfile.ZipInfo, keep: bool) -> EntryRead:
    """Any entry but a plain deflated one (stored, another method, encrypted), through zipfile in chunks:
    zipfile refuses what it cannot read and stops at the declared size; such an entry is never canonical."""
    digest, produced, kept = hashlib.sha256(), 0, bytearray()
    with archive.open(info) as member:
        while chunk := member.read(CHUNK):
            produced += len(chunk)
            digest.update(chunk)
            if keep:
                kept += chunk
    if produced != info.file_size:
        raise EntryProblem(f"it holds {produced} bytes, not the {info.file_size} its header declares")
    return EntryRead(digest.hexdigest(), bytes(kept) if keep else None, False, False)


def read_entry(fp: BinaryIO, archive: zipfile.ZipFile, info: zipfile.ZipInfo, *, keep: bool) -> EntryRead:
    """Stream an entry through its sha256, keeping its content only when asked (the caller has capped
    its declared size); raises EntryProblem, or what zipfile raises for an entry it cannot read."""
    if info.flag_bits & _ENCRYPTED:
        raise EntryProblem("it is encrypted")
    if info.compress_type == zipfile.ZIP_DEFLATED:
        return _inflate(fp, info, keep)
    return _through_zipfile(archive, info, keep)
