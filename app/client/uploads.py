"""Large uploads and model folders for the Python client.

`upload_large` sends one file through a multipart session (`/v1/blobs/uploads`): it hashes the file,
starts the session or resumes this principal's unfinished one for the same digest, sends only the parts
the store does not hold yet (straight to S3 through their presigned URLs, or to the API on the
filesystem store), streaming each part from the file one chunk at a time, and completes. Interrupted,
it is simply run again.

`push_folder` registers a model folder as a record: every file (relative POSIX paths, sorted, `.git`
skipped) is hashed, skipped if the registry already holds it (`HEAD /v1/blobs/{digest}`), otherwise
uploaded (one `POST /v1/blobs` below the multipart threshold, a multipart session above), and the
folder is registered with `spec.files = [{path, digest, size}]`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx

from app.client.errors import ApiError, problem_of
from app.client.registry import RegistryClient, sha256_file
from app.core.digests import model_signing_order

MiB = 1024 * 1024
CHUNK = MiB
MULTIPART_THRESHOLD = 64 * MiB
"""Files from this size up go through a multipart session; `RLHF_REGISTRY_MULTIPART_THRESHOLD`
(bytes) overrides it."""
THRESHOLD_ENV = "RLHF_REGISTRY_MULTIPART_THRESHOLD"
PART_ATTEMPTS = 3

Outcome = Literal["skipped", "uploaded", "resumed"]
"""`skipped`: the registry held the file already; `resumed`: some of its parts were stored already."""


@dataclass(frozen=True)
class UploadResult:
    digest: str
    size: int
    sent: int
    """Bytes this call sent; less than `size` when parts were already stored, 0 when the blob was."""
    stored_before: bool = False
    """The registry held the blob before this call."""


@dataclass(frozen=True)
class FolderFile:
    path: str
    digest: str
    size: int
    outcome: Outcome


class PushProgress(Protocol):
    def hashed(self, nbytes: int) -> None: ...

    def transferred(self, nbytes: int) -> None:
        """Bytes sent, or found already stored (so that a bar over all bytes reaches its end)."""
        ...

    def file_done(self, file: FolderFile) -> None: ...


def multipart_threshold() -> int:
    value = os.environ.get(THRESHOLD_ENV)
    return int(value) if value else MULTIPART_THRESHOLD


def _checked(response: httpx.Response) -> Any:
    if response.status_code >= 400:
        raise ApiError(response.status_code, problem_of(response))
    return response.json() if response.content else None


def _file_range(path: Path, offset: int, size: int, progress: Callable[[int], None] | None) -> Iterator[bytes]:
    with path.open("rb") as fh:
        fh.seek(offset)
        remaining = size
        while remaining:
            chunk = fh.read(min(CHUNK, remaining))
            if not chunk:
                raise OSError(f"{path} shrank while it was being uploaded")
            remaining -= len(chunk)
            yield chunk
            if progress:
                progress(len(chunk))


def _put_part(
    client: RegistryClient,
    store: httpx.Client,
    session: dict[str, Any],
    part: dict[str, Any],
    path: Path,
    progress: Callable[[int], None] | None,
) -> None:
    offset = (part["number"] - 1) * session["part_size"]
    headers = {"Content-Length": str(part["size"]), "Content-Type": "application/octet-stream"}
    for attempt in range(1, PART_ATTEMPTS + 1):
        counted = 0

        def count(nbytes: int) -> None:
            nonlocal counted
            counted += nbytes
            if progress:
                progress(nbytes)

        content = _file_range(path, offset, part["size"], count)
        try:
            if part["url"] is not None:
                # Straight to the store: the presigned URL carries its own authorisation.
                response = store.put(part["url"], content=content, headers=headers)
                if response.status_code >= 300:
                    raise ApiError(response.status_code, {"code": "store_error", "detail": response.text[:500]})
                return
            url = f"/v1/blobs/uploads/{session['upload_id']}/parts/{part['number']}"
            _checked(client._http.put(url, content=content, headers=headers, timeout=None))
            return
        except httpx.TransportError:
            if attempt == PART_ATTEMPTS:
                raise
            if progress:  # the part is sent again from its start
                progress(-counted)


def upload_large(
    client: RegistryClient,
    path: Path,
    progress: Callable[[int], None] | None = None,
    *,
    digest: str | None = None,
    hash_progress: Callable[[int], None] | None = None,
    part_size: int | None = None,
    concurrency: int = 4,
) -> UploadResult:
    """Upload `path` through a multipart session, resuming one left unfinished; `progress` gets the
    bytes sent or found already stored, `hash_progress` the bytes hashed (skipped if `digest` is given)."""
    size = path.stat().st_size
    digest = digest or sha256_file(path, hash_progress)
    body: dict[str, Any] = {"digest": digest, "size": size}
    if part_size is not None:
        body["part_size"] = part_size
    session = _checked(client._http.post("/v1/blobs/uploads", json=body))
    if session.get("complete"):
        if progress:
            progress(size)
        return UploadResult(digest, size, 0, stored_before=True)
    missing = [part for part in session["parts"] if not part["uploaded"]]
    if progress:
        progress(size - sum(part["size"] for part in missing))
    stop = threading.Event()  # after a failure (or Ctrl-C) no further part starts; parts in flight finish

    def send(part: dict[str, Any]) -> None:
        if not stop.is_set():
            _put_part(client, store, session, part, path, progress)

    with httpx.Client(timeout=httpx.Timeout(60.0, write=None)) as store:
        pool = ThreadPoolExecutor(max_workers=max(1, concurrency))
        try:
            for future in as_completed([pool.submit(send, part) for part in missing]):
                future.result()
        finally:
            stop.set()
            pool.shutdown(wait=True, cancel_futures=True)
    result = _checked(client._http.post(f"/v1/blobs/uploads/{session['upload_id']}/complete", timeout=None))
    return UploadResult(result["digest"], result["size"], sum(part["size"] for part in missing))


def upload_small(
    client: RegistryClient, path: Path, digest: str, progress: Callable[[int], None] | None = None
) -> UploadResult:
    """One streamed `POST /v1/blobs`, verified by the server against `digest`."""
    size = path.stat().st_size
    headers = {"X-Content-SHA256": digest, "Content-Type": "application/octet-stream"}
    content = _file_range(path, 0, size, progress)
    result = _checked(client._http.post("/v1/blobs", content=content, headers=headers, timeout=None))
    return UploadResult(result["digest"], result["size"], size)


def folder_files(folder: Path) -> list[tuple[str, Path]]:
    """(relative POSIX path, file) for every file under `folder` but `.git`, in the order of an OpenSSF
    model-signing manifest (`app.core.digests.model_signing_order`)."""
    found: list[tuple[str, Path]] = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [name for name in dirs if name != ".git"]
        for name in files:
            if name != ".git":
                file = Path(root, name)
                found.append((file.relative_to(folder).as_posix(), file))
    return sorted(found, key=lambda entry: model_signing_order(entry[0]))


def upload_folder(
    client: RegistryClient,
    folder: Path,
    progress: PushProgress | None = None,
    *,
    threshold: int | None = None,
    part_size: int | None = None,
) -> list[FolderFile]:
    """Make sure the registry holds every file of `folder`; what each file needed, in path order."""
    threshold = multipart_threshold() if threshold is None else threshold
    hashed = progress.hashed if progress else None
    sent = progress.transferred if progress else None
    results: list[FolderFile] = []
    for relative, file in folder_files(folder):
        size = file.stat().st_size
        digest = sha256_file(file, hashed)
        head = client._http.head(f"/v1/blobs/{digest}")
        if head.status_code == 200:
            outcome: Outcome = "skipped"
            if sent:
                sent(size)
        elif head.status_code != 404:
            _checked(head)
            raise ApiError(head.status_code, {"code": "unknown", "detail": f"HEAD /v1/blobs/{digest}"})
        elif size < threshold:
            upload_small(client, file, digest, sent)
            outcome = "uploaded"
        else:
            result = upload_large(client, file, sent, digest=digest, part_size=part_size)
            outcome = "skipped" if result.stored_before else "resumed" if result.sent < size else "uploaded"
        entry = FolderFile(relative, digest, size, outcome)
        if progress:
            progress.file_done(entry)
        results.append(entry)
    return results


def push_folder(
    client: RegistryClient,
    project: str,
    collection: str,
    folder: Path,
    body_extra: dict[str, Any] | None = None,
    progress: PushProgress | None = None,
    *,
    threshold: int | None = None,
    part_size: int | None = None,
) -> dict[str, Any]:
    """Upload what `folder` holds that the registry does not, then register it in `collection`."""
    files = upload_folder(client, folder, progress, threshold=threshold, part_size=part_size)
    extra = dict(body_extra or {})
    spec = {**extra.get("spec", {}), "files": [{"path": f.path, "digest": f.digest, "size": f.size} for f in files]}
    return client.register(project, collection, {**extra, "spec": spec})
