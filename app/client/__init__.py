"""A Python client for the registry's REST API (httpx), used by the CLI and by other tools.

`from app.client import RegistryClient, ApiError`; large uploads and model folders are in
`app.client.uploads`."""

from app.client.errors import ApiError, problem_of
from app.client.registry import CHUNK, RETRIED_STATUSES, RegistryClient, sha256_file

__all__ = ["CHUNK", "RETRIED_STATUSES", "ApiError", "RegistryClient", "problem_of", "sha256_file"]
