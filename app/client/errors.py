"""What a call to the registry can fail with: `ApiError` carries the RFC 9457 problem the server answered."""

from __future__ import annotations

from typing import Any

import httpx


class ApiError(Exception):
    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        self.code = str(problem.get("code", "unknown"))
        super().__init__(f"{status} {self.code}: {problem.get('detail', '')}")


def problem_of(response: httpx.Response) -> dict[str, Any]:
    """The problem+json body of an error answer, or one made up from its text when it has none
    (a proxy's HTML page, an empty body)."""
    try:
        problem = response.json()
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        text = " ".join(response.text.split())[:500] or response.reason_phrase
        problem = {"code": "http_error", "detail": text}
    return problem


def raise_for_problem(response: httpx.Response) -> None:
    """Raise `ApiError` for an answer of 400 or above; read a streamed answer first."""
    if response.status_code >= 400:
        response.read()
        raise ApiError(response.status_code, problem_of(response))
