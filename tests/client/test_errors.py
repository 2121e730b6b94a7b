"""An error answer becomes `ApiError` with the server's problem, or one made up from an answer that has
none (a proxy's HTML page, an empty body), so that the CLI can always print its one line."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from app.client import ApiError, RegistryClient


def _client(status: int, **answer: object) -> RegistryClient:
    client = RegistryClient("http://registry.test", "token")
    client._http = httpx.Client(
        base_url="http://registry.test",
        transport=httpx.MockTransport(lambda request: httpx.Response(status, **answer)),  # type: ignore[arg-type]
    )
    return client


def test_a_problem_is_carried_as_the_server_wrote_it() -> None:
    problem = {"code": "not_found", "detail": "no criteria x version 1.0.0", "status": 404}
    with _client(404, json=problem) as client, pytest.raises(ApiError) as caught:
        client.get("p", "criteria", "x", "1.0.0")
    assert caught.value.status == 404 and caught.value.code == "not_found" and caught.value.problem == problem


@pytest.mark.parametrize(
    ("answer", "detail"),
    [({"text": "<html>\n  Bad gateway\n</html>"}, "<html> Bad gateway </html>"), ({"content": b""}, "Bad Gateway")],
)
def test_an_answer_without_a_problem_still_says_what_happened(
    answer: dict[str, object], detail: str, tmp_path: Path
) -> None:
    with _client(502, **answer) as client, pytest.raises(ApiError) as caught:
        client.list_projects()
    assert caught.value.status == 502 and caught.value.code == "http_error" and caught.value.problem["detail"] == detail
    with _client(502, **answer) as client, pytest.raises(ApiError):
        client.download_blob("sha256:" + "0" * 64, tmp_path / "blob")
    assert not (tmp_path / "blob.part").exists()
