"""`ExternalRun`: report training that runs outside the registry (your own TRL script, OpenRLHF, a cluster
job) into it, with the run's token.

    run = ExternalRun.start(client, "chat", inputs={"base_model": {"name": "tiny", "version": "1"}},
                            builder={"id": "https://github.com/org/repo/.github/workflows/train.yml"})
    folders = run.download_inputs(Path("inputs"))          # every file verified by its digest
    ...train from folders["base_model"]...
    run.log_metrics(10, {"loss": 0.52})
    run.register_checkpoint(Path("out/checkpoint-10"), algorithm="dpo", step=10)
    run.finish()

Elsewhere (the training job) the run is opened from its id and token: `ExternalRun(url, project, run_id,
token)`. The token is good for that run only, and dies when the run ends. `app.client.callback` streams a
transformers `Trainer`'s metrics and checkpoints through an `ExternalRun`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import httpx

from app.client.errors import ApiError, raise_for_problem
from app.client.registry import CHUNK, RegistryClient, sha256_file
from app.client.uploads import folder_files

# how a model record's folder files are named among its blobs (`spec.files` paths under `files/`)
FOLDER_PREFIX = "files/"


class ExternalRun:
    """One external run, driven by its token: inputs, metrics, checkpoints and its end."""

    def __init__(self, url: str, project: str, run_id: str, token: str, *, timeout: float = 60.0) -> None:
        self.project = project
        self.run_id = run_id
        self.token = token
        self._http = httpx.Client(
            base_url=f"{url.rstrip('/')}/v1/projects/{project}/runs/{run_id}",
            headers={"Authorization": f"Bearer {token}"},
            timeout=timeout,
        )
        self._inputs: dict[str, Any] | None = None

    @classmethod
    def start(
        cls,
        client: RegistryClient,
        project: str,
        *,
        inputs: dict[str, Any],
        builder: dict[str, Any],
        params: dict[str, Any] | None = None,
        output_name: str | None = None,
    ) -> ExternalRun:
        """Create an external run with an API token (a trainer's) and open it with the run's own token."""
        body: dict[str, Any] = {"kind": "external", "inputs": inputs, "builder": builder, "params": params or {}}
        if output_name is not None:
            body["output_name"] = output_name
        created = client.start_run(project, body, attempts=1)
        return cls(client.base_url, project, str(created["id"]), str(created["token"]))

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ExternalRun:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        raise_for_problem(response)
        return response.json()

    @property
    def inputs(self) -> dict[str, Any]:
        """role: the pinned input record (id, kind, name, version, digest, files, blobs)."""
        if self._inputs is None:
            self._inputs = dict(self._call("GET", "/inputs")["inputs"])
        return self._inputs

    def run(self) -> dict[str, Any]:
        return dict(self._call("GET", "/inputs")["run"])

    def input_parents(self) -> dict[str, str]:
        """role: record id of each input (what every checkpoint of the run names as its parents)."""
        return {role: str(record["id"]) for role, record in self.inputs.items()}

    def download_inputs(self, dest: Path) -> dict[str, Path]:
        """Download every input into `dest/<role>` and return those folders: a model record as its
        folder (`from_pretrained` loads it), any other record as its blobs by path. Each file is checked
        against its digest before it appears under its name."""
        folders: dict[str, Path] = {}
        for role, record in self.inputs.items():
            folder = dest / role
            if record["files"]:
                entries = [(str(f["path"]), str(f["digest"])) for f in record["files"]]
            else:
                entries = [(str(b["path"]), str(b["digest"])) for b in record["blobs"]]
            for relative, digest in entries:
                self._download(digest, folder / _safe_path(relative))
            folders[role] = folder
        return folders

    def _download(self, digest: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        hasher = hashlib.sha256()
        with self._http.stream("GET", f"/inputs/blobs/{digest}", timeout=None) as response:
            raise_for_problem(response)
            with partial.open("wb") as fh:
                for chunk in response.iter_bytes(CHUNK):
                    hasher.update(chunk)
                    fh.write(chunk)
        if "sha256:" + hasher.hexdigest() != digest:
            partial.unlink()
            raise ApiError(0, {"code": "digest_mismatch", "detail": f"downloaded bytes do not hash to {digest}"})
        partial.replace(target)

    def log_metrics(self, step: int, metrics: dict[str, float]) -> int:
        """A `metrics` event (as the registry's own workers post them); returns its sequence number."""
        return int(self._call("POST", "/events", json={"type": "metrics", "data": {"step": step, **metrics}})["seq"])

    def log(self, message: str) -> int:
        return int(self._call("POST", "/events", json={"type": "log", "data": {"message": message}})["seq"])

    def upload_folder(self, folder: Path, skip: Callable[[str], bool] | None = None) -> list[dict[str, Any]]:
        """Upload the files of `folder` (hashed first, verified by the server), but those whose relative
        path `skip` accepts, as `spec.files` entries."""
        files = []
        for relative, file in folder_files(folder):
            if skip is not None and skip(relative):
                continue
            digest = sha256_file(file)
            headers = {"X-Content-SHA256": digest, "Content-Type": "application/octet-stream"}
            self._call("POST", "/blobs", content=_chunks(file), headers=headers, timeout=None)
            files.append({"path": relative, "digest": digest, "size": file.stat().st_size})
        return files

    def register_checkpoint(
        self,
        folder: Path,
        *,
        kind: str = "policy_checkpoint",
        algorithm: str | None = None,
        step: int | None = None,
        metrics: dict[str, Any] | None = None,
        hyperparameters: dict[str, Any] | None = None,
        name: str | None = None,
        spec: dict[str, Any] | None = None,
        skip: Callable[[str], bool] | None = None,
    ) -> dict[str, Any]:
        """Upload `folder` (but the files `skip` accepts) and register it; its parents are the run's
        inputs (the server sets them)."""
        body_spec: dict[str, Any] = {**(spec or {}), "files": self.upload_folder(folder, skip)}
        if metrics is not None:
            body_spec["metrics"] = metrics
        if hyperparameters is not None:
            body_spec["hyperparameters"] = hyperparameters
        if step is not None and kind == "policy_checkpoint":
            body_spec["step"] = step
        body: dict[str, Any] = {"kind": kind, "spec": body_spec}
        if algorithm is not None:
            body["algorithm"] = algorithm
        if name is not None:
            body["name"] = name
        return dict(self._call("POST", "/checkpoints", json=body))

    def finish(self, status: str = "succeeded", error: dict[str, Any] | None = None) -> dict[str, Any]:
        """End the run (`succeeded` or `failed`); the token is refused from then on."""
        return dict(self._call("POST", "/finish", json={"status": status, "error": error}))


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


def _safe_path(relative: str) -> Path:
    """A blob's path as a relative path under its folder: a model's `files/` prefix dropped, and no
    absolute path or `..` (a record's paths are checked at registration; this does not trust that)."""
    path = PurePosixPath(relative.removeprefix(FOLDER_PREFIX))
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise ApiError(0, {"code": "unsafe_path", "detail": f"input file path {relative!r} leaves its folder"})
    return Path(*path.parts)
