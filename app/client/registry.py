"""`RegistryClient`: the registry's REST API over httpx, one method per route the CLI and tools use."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from app.client.errors import ApiError, raise_for_problem

CHUNK = 1024 * 1024
# answers of a proxy or a server that did not reach the registry's transaction: safe to repeat with the key
RETRIED_STATUSES = frozenset({502, 503, 504})
DEFAULT_URL = "http://127.0.0.1:8000"


def sha256_file(path: Path, progress: Callable[[int], None] | None = None) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
            if progress:
                progress(len(chunk))
    return "sha256:" + digest.hexdigest()


class RegistryClient:
    def __init__(self, base_url: str | None = None, token: str | None = None, *, timeout: float = 60.0) -> None:
        base_url = base_url or os.environ.get("RLHF_REGISTRY_URL", DEFAULT_URL)
        token = token or os.environ.get("RLHF_REGISTRY_TOKEN", "")
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url,
            headers={"Authorization": f"Bearer {token}"} if token else {},
            timeout=timeout,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        raise_for_problem(response)
        if response.headers.get("content-type", "").startswith("application/json"):
            return response.json()
        return response.text

    def me(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/v1/me")
        return result

    def create_token(
        self, *, label: str = "", expires_in_days: int | None = None, principal: str | None = None
    ) -> dict[str, Any]:
        """A new token (its secret under `token`, shown this once); for another principal: global admin."""
        body: dict[str, Any] = {"label": label}
        if expires_in_days is not None:
            body["expires_in_days"] = expires_in_days
        if principal is not None:
            body["principal"] = principal
        result: dict[str, Any] = self._call("POST", "/v1/tokens", json=body)
        return result

    def list_tokens(self, *, everyone: bool = False, principal: str | None = None) -> list[dict[str, Any]]:
        """The caller's tokens, or (a global admin) everyone's or one principal's; never their secrets."""
        params: dict[str, Any] = {"all": "true"} if everyone else {}
        if principal is not None:
            params["principal"] = principal
        items: list[dict[str, Any]] = self._call("GET", "/v1/tokens", params=params)["items"]
        return items

    def revoke_token(self, token_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/v1/tokens/{quote(token_id, safe='')}/revoke")
        return result

    def create_project(self, name: str, description: str = "") -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "/v1/projects", json={"name": name, "description": description})
        return result

    def set_member(self, project: str, principal: str, role: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("PUT", f"/v1/projects/{project}/members/{principal}", json={"role": role})
        return result

    def register(self, project: str, collection: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/v1/projects/{project}/{collection}", json=body)
        return result

    def get(self, project: str, collection: str, name: str, version: str = "latest") -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/v1/projects/{project}/{collection}/{name}/{version}")
        return result

    def get_record(self, record_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/v1/records/{record_id}")
        return result

    def iter_records(
        self, project: str, collection: str, *, name: str | None = None, page_size: int = 100
    ) -> Iterator[dict[str, Any]]:
        """Every record of a collection (of one series with `name`), one page at a time."""
        params = {"name": name} if name else {}
        return self._pages(f"/v1/projects/{project}/{collection}", params, page_size)

    def list_projects(self) -> list[dict[str, Any]]:
        """The projects the token may see."""
        return list(self._call("GET", "/v1/projects")["items"])

    def iter_runs(self, project: str, *, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Every run of a project, one page at a time."""
        return self._pages(f"/v1/projects/{project}/runs", {}, page_size)

    def _pages(self, path: str, params: dict[str, Any], page_size: int) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            query: dict[str, Any] = {**params, "limit": page_size}
            if cursor:
                query["cursor"] = cursor
            page = self._call("GET", path, params=query)
            yield from page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return

    def criteria_diff(self, project: str, name: str, from_version: str, to_version: str = "latest") -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "GET",
            f"/v1/projects/{project}/criteria/{name}/diff",
            params={"from": from_version, "to": to_version},
        )
        return result

    def upload_file(self, path: Path, progress: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Hash the file, then stream it with X-Content-SHA256 so the server verifies what it stored."""
        digest = sha256_file(path)

        def body() -> Iterator[bytes]:
            with path.open("rb") as fh:
                while chunk := fh.read(CHUNK):
                    if progress:
                        progress(len(chunk))
                    yield chunk

        result: dict[str, Any] = self._call(
            "POST",
            "/v1/blobs",
            content=body(),
            headers={"X-Content-SHA256": digest, "Content-Type": "application/octet-stream"},
            timeout=None,
        )
        return result

    def download_blob(self, digest: str, dest: Path, progress: Callable[[int], None] | None = None) -> None:
        """Stream a blob to `dest`, verifying its digest before the file appears under its name."""
        tmp = dest.with_name(dest.name + ".part")
        hasher = hashlib.sha256()
        with self._http.stream("GET", f"/v1/blobs/{digest}", follow_redirects=True, timeout=None) as response:
            raise_for_problem(response)
            with tmp.open("wb") as fh:
                for chunk in response.iter_bytes(CHUNK):
                    hasher.update(chunk)
                    fh.write(chunk)
                    if progress:
                        progress(len(chunk))
        if "sha256:" + hasher.hexdigest() != digest:
            tmp.unlink()
            raise ApiError(0, {"code": "digest_mismatch", "detail": f"downloaded bytes do not hash to {digest}"})
        tmp.replace(dest)

    def lineage(self, record_id: str, direction: str = "upstream", fmt: str = "json") -> Any:
        return self._call("GET", f"/v1/records/{record_id}/lineage", params={"direction": direction, "format": fmt})

    def decide(self, project: str, name: str, version: str, decision: str, note: str = "") -> dict[str, Any]:
        """`decision` is "approve" or "reject"."""
        path = f"/v1/projects/{project}/deployments/{name}/{version}/{decision}"
        result: dict[str, Any] = self._call("POST", path, json={"note": note})
        return result

    def revoke(self, record_id: str, reason: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/v1/records/{record_id}/revoke", json={"reason": reason})
        return result

    def events(self, record_id: str) -> list[dict[str, Any]]:
        return list(self._call("GET", f"/v1/records/{record_id}/events")["items"])

    def start_run(self, project: str, body: dict[str, Any], *, attempts: int = 4) -> dict[str, Any]:
        """Submit a run, retrying lost connections and 502-504 answers under one `Idempotency-Key`, so
        that a retry returns the run the first attempt created instead of starting a second one."""
        headers = {"Idempotency-Key": f"cli-{uuid.uuid4()}"}
        path = f"/v1/projects/{project}/runs"
        for attempt in range(1, attempts + 1):
            try:
                result: dict[str, Any] = self._call("POST", path, json=body, headers=headers)
                return result
            except httpx.TransportError:
                if attempt == attempts:
                    raise
            except ApiError as exc:
                if exc.status not in RETRIED_STATUSES or attempt == attempts:
                    raise
            time.sleep(2 ** (attempt - 1))
        raise AssertionError("unreachable")

    def run(self, project: str, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/v1/projects/{project}/runs/{run_id}")
        return result

    def run_events(self, project: str, run_id: str, after: int = 0) -> list[dict[str, Any]]:
        page = self._call("GET", f"/v1/projects/{project}/runs/{run_id}/events", params={"after": after})
        return list(page["items"])

    def cancel_run(self, project: str, run_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/v1/projects/{project}/runs/{run_id}/cancel")
        return result

    def run_checkpoints(self, project: str, run_id: str) -> dict[str, Any]:
        """A policy run's checkpoint series: figures per checkpoint and their reward-hacking flags."""
        result: dict[str, Any] = self._call("GET", f"/v1/projects/{project}/runs/{run_id}/checkpoints")
        return result

    def candidate(self, project: str, series: str, *, human_only: bool = False) -> dict[str, Any]:
        """The deployment candidate of a policy-checkpoint series, from its latest campaign evaluation."""
        path = f"/v1/projects/{project}/policy-checkpoints/{series}/candidate"
        result: dict[str, Any] = self._call("GET", path, params={"human_only": str(human_only).lower()})
        return result

    def audit(self, **params: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/v1/audit", params=params)
        return result

    def audit_verify(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/v1/audit/verify")
        return result

    def iter_audit(self, *, page_size: int = 1000, **params: Any) -> Iterator[dict[str, Any]]:
        """Every audit event the token may see, in index order, one page at a time."""
        return self._pages("/v1/audit", params, page_size)

    def signing_key(self) -> dict[str, Any]:
        """`{key_id, algorithm, public_key_pem}`: the key that signs checkpoints and packages."""
        result: dict[str, Any] = self._call("GET", "/v1/signing-key")
        return result

    def audit_checkpoint(self) -> dict[str, Any]:
        """The latest signed checkpoint `{origin, tree_size, root_hash, key_id, signature}`."""
        result: dict[str, Any] = self._call("GET", "/v1/audit/checkpoint")
        return result

    def audit_inclusion_proof(self, index: int, tree_size: int | None = None) -> dict[str, Any]:
        params = {"index": index} if tree_size is None else {"index": index, "tree_size": tree_size}
        result: dict[str, Any] = self._call("GET", "/v1/audit/proofs/inclusion", params=params)
        return result

    def audit_consistency_proof(self, first: int, second: int | None = None) -> dict[str, Any]:
        params = {"from": first} if second is None else {"from": first, "to": second}
        result: dict[str, Any] = self._call("GET", "/v1/audit/proofs/consistency", params=params)
        return result

    def build_package(self, project: str, deployment: dict[str, Any], name: str | None = None) -> dict[str, Any]:
        """Build (or get, when nothing changed) the handoff package of an approved deployment."""
        body: dict[str, Any] = {"deployment": deployment, **({"name": name} if name else {})}
        result: dict[str, Any] = self._call("POST", f"/v1/projects/{project}/handoff-packages", json=body, timeout=None)
        return result

    def download_package(
        self, project: str, name: str, version: str, dest: Path, progress: Callable[[int], None] | None = None
    ) -> str:
        """Stream a package archive to `dest`; returns its digest, checked against the server's
        `X-Content-SHA256` before the file appears under its name."""
        tmp = dest.with_name(dest.name + ".part")
        hasher = hashlib.sha256()
        path = f"/v1/projects/{project}/handoff-packages/{name}/{version}/download"
        with self._http.stream("GET", path, timeout=None) as response:
            raise_for_problem(response)
            expected = response.headers.get("x-content-sha256")
            with tmp.open("wb") as fh:
                for chunk in response.iter_bytes(CHUNK):
                    hasher.update(chunk)
                    fh.write(chunk)
                    if progress:
                        progress(len(chunk))
        digest = "sha256:" + hasher.hexdigest()
        if expected is not None and digest != expected:
            tmp.unlink()
            raise ApiError(
                0, {"code": "digest_mismatch", "detail": f"downloaded bytes hash to {digest}, not {expected}"}
            )
        tmp.replace(dest)
        return digest

    def export_tasks(self, project: str, name: str, version: str, fmt: str, dest: Path) -> None:
        """Stream an evaluation campaign's blinded tasks in `fmt` (jsonl, label-studio, argilla) to
        `dest`; the file appears under its name only once complete."""
        tmp = dest.with_name(dest.name + ".part")
        path = f"/v1/projects/{project}/evaluation-campaigns/{name}/{version}/tasks"
        with self._http.stream("GET", path, params={"format": fmt}, timeout=None) as response:
            raise_for_problem(response)
            with tmp.open("wb") as fh:
                for chunk in response.iter_bytes(CHUNK):
                    fh.write(chunk)
        tmp.replace(dest)
