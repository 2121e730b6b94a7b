"""The entries of a package zip as the offline verifier reads them: each within a limit fixed before a
byte of it is read, each refusal named.

An entry is refused unread when the manifest does not list it, when it declares more bytes than the
manifest lists for it, or, for a document the verifier parses, more than `MAX_DOCUMENT_BYTES`; it is
refused while being read when it inflates to more than it declares, and a document is refused when its
`parse_cost` is over `MAX_PARSE_COST`. Documents (the manifest, the key, `records/`, `provenance/`) are
handed over one at a time as they are read, so that no more than one is held; every other entry only
passes through its hash."""

from __future__ import annotations

import base64
import binascii
import json
import lzma
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

from app.packages.archive import MANIFEST, PUBLIC_KEY
from app.packages.zip_entries import (
    MAX_DOCUMENT_BYTES,
    MAX_ENTRIES,
    MAX_PARSE_COST,
    EntryProblem,
    EntryRead,
    EntryRefused,
    parse_cost,
    read_entry,
)

# what reading a zip entry through zipfile may raise: a broken stream or CRC, an encrypted entry
# (RuntimeError), an unsupported compression method (NotImplementedError)
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


def is_document(name: str) -> bool:
    """Whether the verifier parses the file (and so holds it in memory)."""
    return name in (MANIFEST, PUBLIC_KEY) or name.startswith(("records/", "provenance/"))


class PackageReader:
    """Reads the file entries of an open package zip; `fail` receives each failure, named."""

    def __init__(self, fp: BinaryIO, archive: zipfile.ZipFile, fail: Callable[[str], None]) -> None:
        self.fp, self.archive, self.fail = fp, archive, fail
        self.reads: dict[str, EntryRead] = {}  # each entry read, without its content
        self.unread: set[str] = set()  # entries refused or unreadable, each already named

    def check_directory(self, max_total_bytes: int) -> bool:
        """Name what is wrong with the central directory as a whole; False when its entries declare more
        than `max_total_bytes` uncompressed in all (then none may be read)."""
        infos = self.archive.infolist()
        declared = sum(info.file_size for info in infos)
        if declared > max_total_bytes:
            self.fail(
                f"archive: its entries declare {declared} bytes uncompressed, over the limit of {max_total_bytes}"
                " (refused unread: a zip bomb?)"
            )
            return False
        if len(infos) > MAX_ENTRIES:
            self.fail(f"archive: its central directory holds {len(infos)} entries, over the limit of {MAX_ENTRIES}")
            return False
        for name, count in sorted(Counter(info.filename for info in infos).items()):
            if count > 1:
                # two entries under one name: tools disagree on which one a reader gets
                self.fail(f"archive: {name} appears more than once")
        return True

    def files(self) -> list[zipfile.ZipInfo]:
        # directory entries are left to the form check
        return [info for info in self.archive.infolist() if not info.is_dir()]

    def document(self, name: str) -> bytes | None:
        """A document entry's content, read within the document limits; None when the archive has no
        such entry or it was refused (the refusal named)."""
        info = next((info for info in self.files() if info.filename == name), None)
        if info is None or name in self.reads or name in self.unread:
            return None
        return self._read(info, MAX_DOCUMENT_BYTES, "the limit for a document the verifier parses")

    def read_listed(
        self, subjects: Mapping[str, str], sizes: Mapping[str, int], take: Callable[[str, bytes], None]
    ) -> None:
        """Read every file entry not read yet, handing each document's content to `take` as it is read;
        refuse by name, unread, those the manifest (`subjects`) does not list and those that declare more
        bytes than it lists for them (`sizes`)."""
        for info in self.files():
            name = info.filename
            if name in self.reads or name in self.unread:
                continue
            if name not in subjects:
                self.fail(f"digest of {name}: the file is not listed in the manifest (refused unread)")
                self.unread.add(name)
                continue
            limit, what = sizes.get(name), "the size the manifest lists for it"
            if is_document(name) and (limit is None or limit > MAX_DOCUMENT_BYTES):
                limit, what = MAX_DOCUMENT_BYTES, "the limit for a document the verifier parses"
            content = self._read(info, limit, what)
            if content is not None:
                take(name, content)

    def _read(self, info: zipfile.ZipInfo, limit: int | None, what: str) -> bytes | None:
        """Read an entry into `reads`; its content when it is a document that may be parsed."""
        name = info.filename
        if limit is not None and info.file_size > limit:
            self.fail(
                f"digest of {name}: the zip entry is refused unread: it declares {info.file_size} bytes,"
                f" more than {limit} ({what})"
            )
            self.unread.add(name)
            return None
        try:
            read = read_entry(self.fp, self.archive, info, keep=is_document(name))
        except EntryRefused as exc:
            self.fail(f"digest of {name}: the zip entry is refused: {exc}")
            self.unread.add(name)
            return None
        except (EntryProblem, *_ENTRY_ERRORS) as exc:
            # a changed byte inside the zip itself (the entry's CRC or compressed stream breaks), an
            # encrypted entry, or a compression method the verifier does not know
            self.fail(f"digest of {name}: the zip entry cannot be read ({exc})")
            self.unread.add(name)
            return None
        if read.content is not None and parse_cost(read.content) > MAX_PARSE_COST:
            self.fail(
                f"digest of {name}: the zip entry is refused: parsing it would take more than the verifier's"
                f" memory budget of {MAX_PARSE_COST} bytes for one document"
            )
            self.unread.add(name)
            return None
        self.reads[name] = EntryRead(read.sha256, None, read.exact, read.same_zlib)
        return read.content


def manifest_sizes(statement: dict[str, Any]) -> dict[str, int]:
    """The sizes the manifest's file subjects list (`annotations.size`, `archive.manifest_subjects`); a
    manifest built before the builder listed sizes lists none."""
    sizes: dict[str, int] = {}
    for subject in statement.get("subject", []):
        annotations = subject.get("annotations") if isinstance(subject, dict) else None
        size = annotations.get("size") if isinstance(annotations, dict) else None
        if isinstance(size, int) and not isinstance(size, bool) and isinstance(subject.get("name"), str):
            sizes[subject["name"]] = size
    return sizes


def statement_too_dense(envelope: bytes) -> str | None:
    """Why an envelope's statement may not be parsed within the verifier's memory budget, if it may not
    (an envelope that cannot be decoded is left to open_envelope to name)."""
    try:
        payload = base64.b64decode(json.loads(envelope)["payload"], validate=True)
    except (ValueError, KeyError, TypeError, RecursionError, binascii.Error):
        return None
    if parse_cost(payload) > MAX_PARSE_COST:
        return f"its statement is too large to parse within the verifier's memory budget of {MAX_PARSE_COST} bytes"
    return None
